"""Response headers that every page carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, Response, abort, request

View = TypeVar("View", bound=Callable[..., object])

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

    @app.before_request
    def refuse_oversize_body() -> None:
        # Flask enforces the cap only when a view reads the body; checking the declared length here makes a
        # view that redirects or denies first answer 413 too. Chunked bodies are still cut off while read.
        view = app.view_functions.get(request.endpoint or "")
        setting = getattr(view, "body_limit_setting", None)
        if setting:
            request.max_content_length = app.config[setting]
        limit = request.max_content_length
        if limit is not None and (request.content_length or 0) > limit:
            abort(413)

    @app.before_request
    def refuse_nul_characters() -> None:
        # No field of this shop can hold a NUL, and PostgreSQL refuses one in any query (a 500 otherwise).
        view = app.view_functions.get(request.endpoint or "")
        values = list(request.args.values())
        if not getattr(view, "body_limit_setting", None):  # such views (the webhook) read the raw body themselves
            values += list(request.form.values())
        if any("\x00" in value for value in values):
            abort(400)

    @app.after_request
    def set_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
