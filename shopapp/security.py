"""Response headers that every page carries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, abort, request

View = TypeVar("View", bound=Callable[..., object])

# Werkzeug parses a body into request.form only for these types.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self' https: http:; "
    "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)


def body_limit(setting: str) -> Callable[[View], View]:
    """Give one view its own request-body cap (the name of a byte-count setting) instead of MAX_CONTENT_LENGTH."""

    def mark(view: View) -> View:
        view.body_limit_setting = setting  # type: ignore[attr-defined]
        return view

    return mark


def init_security(app: Flask) -> None:
    """Refuse oversize bodies up front; add CSP, framing, sniffing and referrer headers (and HSTS when Secure)."""

    # One hook for both checks (each hook call costs Flask a coroutine check and the proxies a lookup).
    @app.before_request
    def refuse_bad_input() -> None:
        view = app.view_functions.get(request.endpoint or "")
        own_limit = getattr(view, "body_limit_setting", None)
        # Flask enforces the cap only when a view reads the body; checking the declared length here makes a
        # view that redirects or denies first answer 413 too. Chunked bodies are still cut off while read.
        if own_limit:
            request.max_content_length = app.config[own_limit]
        limit = request.max_content_length
        if limit is not None and (request.content_length or 0) > limit:
            abort(413)
        # No field of this shop can hold a NUL, and PostgreSQL refuses one in any query (a 500 otherwise).
        # Views with their own cap (the webhook) read the raw body themselves and check it there.
        if request.query_string and any("\x00" in value for value in request.args.values()):
            abort(400)
        if not own_limit and request.mimetype in _FORM_TYPES and any("\x00" in v for v in request.form.values()):
            abort(400)

    headers_for_every_page = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if app.config.get("SESSION_COOKIE_SECURE"):
        headers_for_every_page.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    app.wsgi_app = SecurityHeaders(app.wsgi_app, headers_for_every_page)  # type: ignore[method-assign]


class SecurityHeaders:
    """WSGI middleware: adds each header to every response that does not set it itself.

    Middleware rather than an after_request hook: it also covers responses Flask builds outside the
    hooks, and appending to the WSGI header list costs a fraction of Werkzeug's case-insensitive
    Headers lookups and validation (about 10 us a request as a hook).
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], headers: list[tuple[str, str]]) -> None:
        self.wsgi_app = wsgi_app
        self.headers = [(name.lower(), (name, value)) for name, value in headers]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Run the app, adding the missing headers as it starts its response."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(header for lower, header in self.headers if lower not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
