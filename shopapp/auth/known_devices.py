"""The per-account log-in limit and the "known device" cookie that exempts an account's own browsers from it.

Why: the per-address limit (LOGIN_RATE_LIMIT) does not stop guessing spread over many client addresses, so
failed log-ins are also counted per account (LOGIN_ACCOUNT_RATE_LIMIT). Counting per account alone would
let a stranger lock the owner out by failing on purpose; so a browser that has logged in to that account
before carries a signed cookie naming the account, and its attempts skip the per-account count (they still
count per address). This follows OWASP's "device cookies" scheme; docs/SECURITY.md states the trade-off.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from shopapp.services.accounts import normalize_email

COOKIE_NAME = "known_device"
# A year: long enough that an owner's usual browsers stay exempt, bounded so a stolen cookie ages out.
COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
# Accounts remembered per browser (a shared family computer): the newest ones are kept.
MAX_ACCOUNTS_PER_COOKIE = 5
_SALT = "shop-known-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _account_tag(email: str) -> str:
    """A short keyed digest of the account's email: the cookie names accounts without showing them."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, normalize_email(email).encode(), hashlib.sha256).hexdigest()[:24]


def _known_tags() -> list[str]:
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return []
    try:
        tags = _serializer().loads(raw, max_age=COOKIE_MAX_AGE_SECONDS)
    except BadSignature:
        return []
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def submitted_account() -> str:
    """The rate-limit key of the account named in the log-in form (normalised email)."""
    return "login-account:" + normalize_email(request.form.get("email", ""))[:254]


def is_known_device() -> bool:
    """True if this browser logged in to the submitted account before (a valid signed cookie names it)."""
    email = request.form.get("email", "")
    return bool(email) and _account_tag(email) in _known_tags()


def failed_attempt(response: Response) -> bool:
    """Deduct from the per-account limit only when the log-in failed (the form answers 400)."""
    return response.status_code == 400


def remember_device(response: Response, email: str) -> Response:
    """After a successful log-in: add the account to this browser's signed known-device cookie."""
    tags = [tag for tag in _known_tags() if tag != _account_tag(email)]
    tags = [*tags, _account_tag(email)][-MAX_ACCOUNTS_PER_COOKIE:]
    response.set_cookie(
        COOKIE_NAME,
        _serializer().dumps(tags),
        max_age=COOKIE_MAX_AGE_SECONDS,
        httponly=True,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        samesite="Lax",
        path="/account/",
    )
    return response
