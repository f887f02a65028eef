"""Error pages in the site layout; never a traceback."""

from __future__ import annotations

import logging

import redis.exceptions
from flask import Flask, current_app, g, render_template, request, session
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from limits.errors import StorageError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from shopapp import error_reports
from shopapp.database import RETRY_AFTER_SECONDS, is_unavailable
from shopapp.security import NulCharacter
from shopapp.services import brand as brand_service

log = logging.getLogger("shopapp.errors")

# What the limits library's Redis storage raises when Redis is down or does not answer in time.
RATE_LIMIT_STORAGE_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, StorageError)

MESSAGES = {
    400: (_l("Bad request"), _l("Something in that request was not right. Please go back and try again.")),
    403: (_l("Not allowed"), _l("You do not have access to this page.")),
    404: (_l("Not found"), _l("We could not find that page.")),
    405: (_l("Method not allowed"), _l("That page cannot be used this way.")),
    413: (_l("Too large"), _l("That request was too large.")),
    429: (_l("Slow down"), _l("Too many attempts in a short time. Please wait a minute and try again.")),
    500: (_l("Something went wrong"), _l("An unexpected error happened on our side. Please try again shortly.")),
    503: (_l("Busy"), _l("We are very busy right now. Please try again in a moment.")),
}
NUL_MESSAGE = _l(
    "A field contains an invisible NUL character (often from pasted text), which no field may hold. "
    "Remove it and send the form again."
)


def render_error(status: int, detail: str | None = None) -> tuple[str, int]:
    """The error page for `status`, with an optional more specific message."""
    title, message = MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    return render_template("errors/error.html", status=status, title=str(title), message=detail or str(message)), status


def render_busy_page() -> Response:
    """The 503 "busy, try again" page with Retry-After, rendered without touching the database.

    render_template would run Flask-Login's context processor, which loads the signed-in user from the
    very database that is unavailable (and a failing error handler is a bare 500): so the template is
    rendered straight from the Jinja environment, as seen by a visitor.
    """
    title, message = (str(text) for text in MESSAGES[503])
    html = current_app.jinja_env.get_template("errors/error.html").render(
        status=503,
        title=title,
        message=message,
        current_user=AnonymousUserMixin(),
        # The brand this process last read (no query: the database is what is unavailable).
        brand=(last := brand_service.last_known_brand()),
        shop_name=last.shop_name,
        footer_pages=list(brand_service.PageSlug),
        payments_local_mode=bool(current_app.config.get("STRIPE_API_BASE")),
        request=request,
        session=session,
        g=g,
        config=current_app.config,
    )
    return Response(html, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}, mimetype="text/html")


def init_error_handlers(app: Flask) -> None:
    """Register the handlers for HTTP errors, CSRF failures and unexpected exceptions."""

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        log.warning("CSRF failure on %s %s: %s", request.method, request.path, error.description)
        return render_error(
            400, "Your form expired or was not sent from this site. Please reload the page and try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        status = error.code or 500
        if status in (401, 403):
            log.warning("Authorization failure: %s %s", request.method, request.path)
        elif status == 429:
            log.warning("Rate limit hit by %s: %s %s", request.remote_addr, request.method, request.path)
        elif status == 413:
            log.warning("Oversize body refused: %s %s (%s bytes)", request.method, request.path, request.content_length)
            # A view may say what its limit means to the person (e.g. the picture upload's size).
            view = current_app.view_functions.get(request.endpoint or "")
            too_large = getattr(view, "too_large_message", None)
            if too_large:
                return render_error(status, too_large(current_app.config))
        elif isinstance(error, NulCharacter):
            return render_error(status, str(NUL_MESSAGE))
        return render_error(status)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[str, int] | Response:
        if isinstance(error, HTTPException):
            return http_error(error)
        if is_unavailable(error):
            # An outage, not a bug: one line without the traceback, and the shopper is asked to retry.
            log.error("Database unavailable on %s %s: %s", request.method, request.path, type(error).__name__)
            return render_busy_page()
        if isinstance(error, RATE_LIMIT_STORAGE_DOWN):
            # Redis (the rate limits' storage) is unreachable and the in-memory fallback is off: the limited
            # form cannot be checked, so it is refused as an outage to retry, never let through unlimited.
            log.error("Rate-limit storage unavailable on %s %s: %s", request.method, request.path, error)
            return render_busy_page()
        log.exception("Unhandled error on %s %s", request.method, request.path)
        # This handler answers every unexpected error, so Flask never signals it: report it here.
        error_reports.capture(error)
        return render_error(InternalServerError.code)
