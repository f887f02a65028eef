"""Languages (Flask-Babel): which one a request is answered in, and the switch that changes it.

Order of choice for a shopper's page: the footer switch's cookie (`language`), else the browser's
Accept-Language (best match among config LANGUAGES), else the default (BABEL_DEFAULT_LOCALE). Staff pages
(`/admin`) stay English: the admin is the owner's tool, and Flask-Admin's own strings would otherwise come out
half translated. Emails are composed outside any request in the shopper's saved language (`User.locale`, set at
sign-up and by the switch while logged in): services/mail.py wraps each in `force_locale`.

Catalogs: shopapp/translations/<lang>/LC_MESSAGES/messages.po, extracted with babel.cfg by
`scripts/i18n.sh` (pybabel extract/update/compile). The compiled .mo files are committed too, so a fresh
clone (and CI) runs without a build step; tests/test_i18n.py fails when a .po has an untranslated or fuzzy
entry, or when its .mo is stale.
"""

from __future__ import annotations

import functools

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale, refresh
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Response

from shopapp.extensions import babel
from shopapp.models import OrderStatus

LANGUAGE_COOKIE = "language"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600  # a year: a shopper's choice is remembered across visits

# Each language named in itself, for the footer switch.
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}


def languages() -> tuple[str, ...]:
    """The configured languages, the default first."""
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    """The language of this request (see the module docstring); the default outside a request."""
    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if request.path.startswith("/admin"):
        return "en"
    offered = languages()
    chosen = request.cookies.get(LANGUAGE_COOKIE)  # parsed already: the session cookie is read from the same
    if chosen in offered:
        return str(chosen)
    default = str(current_app.config["BABEL_DEFAULT_LOCALE"])
    return _best_match(request.environ.get("HTTP_ACCEPT_LANGUAGE", ""), offered, default)


@functools.lru_cache(maxsize=256)
def _best_match(accept_language: str, offered: tuple[str, ...], default: str) -> str:
    # A pure function of the Accept-Language header, so each distinct header is parsed and matched once per
    # process, not once per request (browsers send a few dozen; the cache is bounded). Werkzeug's parser, as
    # `request.accept_languages` uses.
    return parse_accept_header(accept_language, LanguageAccept).best_match(offered, default) or default


def status_label(value: str | None) -> str:
    """An order history line's status in the request's language ("paid" -> "Bezahlt"); other text as is."""
    known = {status.value: status for status in OrderStatus}
    return known[value].label if value in known else (value or "").replace("_", " ")


def checkout_locale(language: str) -> str:
    """Stripe Checkout's `locale` for one of our languages (Stripe's values include "en" and "de" as is)."""
    return language.split("_", 1)[0]


def remember(response: Response, language: str) -> Response:
    """Set the switch's cookie on `response` (Lax: sent on the shopper's own navigation, not cross-site posts)."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_MAX_AGE,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
    )
    return response


def init_i18n(app: Flask) -> None:
    """Bind Flask-Babel with the selector; every shopper page varies with the cookie and Accept-Language."""
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["language_names"] = LANGUAGE_NAMES
    app.jinja_env.globals["current_language"] = lambda: str(get_locale())
    app.jinja_env.globals["event_label"] = status_label

    # Flask-Babel caches the locale on `g`, which lives as long as the app context: each request chooses
    # afresh (a context shared by several requests, as a test's or a worker's, would keep the first one's).
    @app.before_request
    def choose_language_afresh() -> None:
        if "_flask_babel" in g:  # only when an earlier request in this context chose one
            refresh()

    @app.teardown_request
    def forget_language(_error: BaseException | None) -> None:
        if "_flask_babel" in g:
            refresh()

    @app.after_request
    def vary_by_language(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.vary.update(("Accept-Language", "Cookie"))  # one header update, not two
        return response
