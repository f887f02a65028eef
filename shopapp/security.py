"""Response headers that every page carries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import Flask, Request, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

View = TypeVar("View", bound=Callable[..., object])

# Werkzeug parses a body into request.form only for these types.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self' https: http:; "
    "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)


# Characters that browsers drop or reinterpret inside a URL (WHATWG URL standard: leading C0 controls and
# spaces are stripped, tabs and newlines anywhere are removed, "\\" counts as "/"), so "ht\ttp://x",
# "java\nscript:" and "/\\x" reach another site. No same-site path of this shop contains one.
_URL_TRICK_CHARS = re.compile(r"[\x00-\x20\x7f\\\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff]")

# Decoding rounds: "%252F%252F" needs two to show "//"; more nesting than this is refused outright.
_DECODE_ROUNDS = 3


def is_same_site_path(target: str) -> bool:
    """True if a browser sent to `target` stays on this site: a path starting with one "/", nothing else.

    Refuses schemes ("https:x", "javascript:"), hosts and protocol-relative forms ("//x", "/\\x",
    "\\/x"), any whitespace or control character (browsers delete tabs and newlines inside a scheme),
    and any of those hidden behind percent-encoding ("%2F%2Fx", "/%5Cx"). Deliberately stricter than
    Flask-Admin's is_safe_url, which rewrites the URL before judging it and so judges a different URL
    from the one the browser follows.
    """
    candidate = target
    for decoding_round in range(_DECODE_ROUNDS + 1):
        # Raw text is checked whole (a tab or "\\" anywhere is refused). Decoded forms only for what a
        # browser could read as a scheme or host: the part before the query, so "?q=a%20b" stays allowed.
        checked = candidate if decoding_round == 0 else re.split(r"[?#]", candidate, maxsplit=1)[0]
        if not checked.startswith("/") or checked.startswith("//") or _URL_TRICK_CHARS.search(checked):
            return False
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return False
        decoded = unquote(candidate)
        if decoded == candidate:
            return True
        candidate = decoded
    return False  # still encoded after several rounds: nobody writes a real link like that


def safe_redirect_target(target: str | None, fallback: str | None = None) -> str | None:
    """`target` if it is a same-site path (see is_same_site_path), else `fallback` (None by default).

    The one check for every redirect target taken from a request: log-in's `next`, Flask-Admin's `url`.
    """
    if target and is_same_site_path(target):
        return target
    return fallback


def body_limit(setting: str) -> Callable[[View], View]:
    """Give one view its own request-body cap (the name of a byte-count setting) instead of MAX_CONTENT_LENGTH."""

    def mark(view: View) -> View:
        view.body_limit_setting = setting  # type: ignore[attr-defined]
        return view

    return mark


ENDPOINT_ENVIRON_KEY = "shop.endpoint"


class ShopRequest(Request):
    """Flask's request, whose body cap is the matched view's own (body_limit) from the start.

    The cap must hold before ANY body parsing: CSRFProtect reads the form in its before_request hook, which
    runs before the view and before refuse_bad_input below, so a cap raised there came too late and every
    picture over the global 64 KiB was refused with 413 (issue 26, finding 5).
    """

    @property
    def max_content_length(self) -> int | None:  # type: ignore[override]
        """The view's body_limit setting when it declares one, else MAX_CONTENT_LENGTH (Flask's default)."""
        if self._max_content_length is None and self.url_rule is not None and current_app:
            view = current_app.view_functions.get(self.url_rule.endpoint)
            setting = getattr(view, "body_limit_setting", None)
            if setting:
                return int(current_app.config[setting])
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


class SigningOnceSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its signing serializer built once per set of keys, not per request.

    Flask builds a new URLSafeTimedSerializer on every request (open and save), a sixth of opening a shopper's
    session cookie and 2% of a logged-in page (py-spy, docs/PERFORMANCE.md round 7). The serializer holds only
    the keys, salt and settings (each signature makes its own signer), so one is shared by all requests; it is
    keyed by SECRET_KEY and SECRET_KEY_FALLBACKS, so a rotated key takes effect as in Flask.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's serializer for the app's current keys (None without a SECRET_KEY, as Flask)."""
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is not None:  # the newest key set only: an old one is never used again
                self._serializers = {keys: serializer}
        return serializer


class NulCharacter(BadRequest):
    """A NUL character in a query or form value: no field of the shop holds one (PostgreSQL refuses it in any
    query). shopapp.errors answers it with a message saying so, not a bare "bad request"."""


def init_security(app: Flask) -> None:
    """Refuse oversize bodies up front; add CSP, framing, sniffing and referrer headers (and HSTS when Secure)."""
    app.request_class = ShopRequest
    app.session_interface = SigningOnceSessionInterface()

    # One hook for both checks (each hook call costs Flask a coroutine check and the proxies a lookup).
    @app.before_request
    def refuse_bad_input() -> None:
        # For telemetry's per-endpoint metrics (Flask forgets the request once it ends); set here rather than
        # in a hook of its own, which would cost every request another hook call.
        request.environ[ENDPOINT_ENVIRON_KEY] = request.endpoint
        view = app.view_functions.get(request.endpoint or "")
        own_limit = getattr(view, "body_limit_setting", None)
        # Flask enforces the cap only when a view reads the body; checking the declared length here makes a
        # view that redirects or denies first answer 413 too. Chunked bodies are still cut off while read.
        # (The view's own cap is ShopRequest's, in force before any hook parses the body.)
        limit = request.max_content_length
        if limit is not None and (request.content_length or 0) > limit:
            abort(413)
        # No field of this shop can hold a NUL, and PostgreSQL refuses one in any query (a 500 otherwise).
        # Views with their own cap (the webhook) read the raw body themselves and check it there.
        if request.query_string and any("\x00" in value for value in request.args.values()):
            raise NulCharacter()
        if not own_limit and request.mimetype in _FORM_TYPES and any("\x00" in v for v in request.form.values()):
            raise NulCharacter()

    headers_for_every_page = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if app.config.get("SESSION_COOKIE_SECURE"):
        headers_for_every_page.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    app.wsgi_app = SecurityHeaders(app.wsgi_app, headers_for_every_page)  # type: ignore[method-assign]
    trust_proxies(app)


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXY_HOPS proxies, take the client's address and scheme from X-Forwarded-For/-Proto
    (Werkzeug's ProxyFix), so rate limits and logs see each client rather than the proxy.

    ProxyFix reads X-Forwarded-For from the right: with one trusted hop it takes the address HAProxy appended,
    and whatever a client wrote into the header itself is ignored. Host is not taken from the proxy: every
    absolute URL comes from SHOP_BASE_URL (services/links.py).
    """
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


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
