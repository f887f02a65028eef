"""The per-account log-in limit and the "known device" cookie that exempts an account's own browsers from it.

Why: the per-address limit (LOGIN_RATE_LIMIT) does not stop guessing spread over many client addresses, so
failed log-ins are also counted per account (LOGIN_ACCOUNT_RATE_LIMIT). Counting per account alone would
let a stranger lock the owner out by failing on purpose; so a browser that has logged in to that account
before carries a signed cookie naming the account, and its attempts skip the per-account count (they still
count per address). This follows OWASP's "device cookies" scheme; docs/SECURITY.md states the trade-off.

Issue 26, finding 7:
- The cookie names the account AND its current password (a digest of the password hash's fingerprint): a
  password change or reset ends every exemption earned before it (27 of 27 guesses got through with an old one).
- Attempts are counted BEFORE the password is checked (reserve_attempt, an atomic hit in the limiter's
  storage), so N simultaneous guesses cannot all pass the check before any is counted (60 at once used to get
  41 checked against a limit of 20). A successful log-in gives the account's budget back (release_attempts),
  so the owner's own log-ins never count.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from werkzeug.wrappers import Response

from shopapp.extensions import limiter
from shopapp.services.accounts import normalize_email, password_fingerprint

COOKIE_NAME = "known_device"
# A year: long enough that an owner's usual browsers stay exempt, bounded so a stolen cookie ages out.
COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
# Accounts remembered per browser (a shared family computer): the newest ones are kept.
MAX_ACCOUNTS_PER_COOKIE = 5
_SALT = "shop-known-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _account_tag(email: str, password_fingerprint: str) -> str:
    """A short keyed digest of the account's email and current password fingerprint: the cookie names accounts
    without showing them, and stops naming one once its password changes."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    material = f"{normalize_email(email)}\0{password_fingerprint}".encode()
    return hmac.new(key, material, hashlib.sha256).hexdigest()[:24]


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
    """True if this browser logged in to the submitted account with its current password before (a valid
    signed cookie names the account and that password)."""
    email = request.form.get("email", "")
    if not email or not _known_tags():
        return False
    fingerprint = password_fingerprint(email)
    return fingerprint is not None and _account_tag(email, fingerprint) in _known_tags()


def _account_limit() -> RateLimitItem:
    return parse(str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]))


def reserve_attempt() -> int | None:
    """Count this log-in attempt against the submitted account before its password is checked.

    None when it may go on (counted, or exempt: a known device, or limits off); else the seconds until the
    account's budget has room again (the caller answers 429). The hit is the storage's own atomic
    test-and-increment (a Lua script on Redis), so simultaneous guesses cannot all pass before one counts.
    """
    if not limiter.enabled or not current_app.config.get("RATELIMIT_ENABLED", True) or is_known_device():
        return None
    item, key = _account_limit(), submitted_account()
    if limiter.limiter.hit(item, key):
        return None
    reset_at = limiter.limiter.get_window_stats(item, key).reset_time
    return max(1, int(reset_at - time.time()))


def release_attempts() -> None:
    """After a successful log-in: the account's count starts again (the owner's log-ins never use it up)."""
    if limiter.enabled and current_app.config.get("RATELIMIT_ENABLED", True):
        limiter.limiter.clear(_account_limit(), submitted_account())


def remember_device(response: Response, email: str) -> Response:
    """After a successful log-in (or a password change or reset in this browser): add the account, with its
    current password, to this browser's signed known-device cookie."""
    fingerprint = password_fingerprint(email) or ""
    tags = [tag for tag in _known_tags() if tag != _account_tag(email, fingerprint)]
    tags = [*tags, _account_tag(email, fingerprint)][-MAX_ACCOUNTS_PER_COOKIE:]
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
