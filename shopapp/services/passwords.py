"""Password rules (NIST SP 800-63B section 5.1.1.2) and signed, single-use password reset tokens."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from functools import cache

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_PASSWORD_LENGTH = 8
# SP 800-63B asks verifiers to allow at least 64 characters; the issue asks for at least 128.
MAX_PASSWORD_LENGTH = 256
# zxcvbn only scores this many leading characters (its own default), which keeps the check cheap.
_ZXCVBN_MAX_LENGTH = 72


class PasswordRejected(ValueError):
    """A user-facing reason a new password was refused."""


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn's ranked list of the 30,000 most common passwords (from leaked password corpora).
    return frozenset(FREQUENCY_LISTS["passwords"])


def _visible(password: str) -> str:
    """The password without spaces, separators, control and format (invisible) characters."""
    return "".join(ch for ch in password if unicodedata.category(ch)[0] not in ("Z", "C"))


def check_new_password(password: str, *, email: str | None = None) -> None:
    """Raise PasswordRejected unless `password` may be chosen as a new password.

    Rules from NIST SP 800-63B 5.1.1.2: at least 8 characters, up to 256 (no composition rules), and not a
    commonly used password (zxcvbn's 30,000-entry list, or zxcvbn's lowest score: e.g. "aaaaaaaa",
    "abcdefgh" or the account's own email). A password of only spaces or invisible characters is refused too.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(
            _("Please choose a password of at least %(count)d characters.", count=MIN_PASSWORD_LENGTH)
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(
            _("That password is too long for us: please keep it to %(count)d characters.", count=MAX_PASSWORD_LENGTH)
        )
    if not _visible(password):
        raise PasswordRejected(_("A password made only of spaces or invisible characters is too easy to guess."))
    if password.lower() in _common_passwords():
        raise PasswordRejected(
            _("That password is one of the most common ones, so it is easy to guess. Please pick another.")
        )
    user_inputs = [email, email.split("@")[0]] if email else []
    if zxcvbn(password[:_ZXCVBN_MAX_LENGTH], user_inputs=user_inputs)["score"] == 0:
        raise PasswordRejected(_("That password follows a pattern that is easy to guess. Please pick another."))


# ---------------------------------------------------------------------------------------------
# Reset tokens. A token names the user and a fingerprint of the password hash at the time it was made.
# Argon2 hashes are salted, so ANY password change (including the reset itself) changes the hash and
# every earlier link stops working: single use without storing the token.

_SALT = "password-reset"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash (never the hash itself) that changes with every password change."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def make_reset_token(user_id: int, password_hash: str) -> str:
    """A URL-safe, signed, timestamped token for the reset link."""
    return str(_serializer().dumps({"u": user_id, "p": fingerprint(password_hash)}))


class ResetTokenInvalid(ValueError):
    """The reset link is expired, already used, or not one of ours."""


def read_reset_token(token: str) -> tuple[int, str]:
    """(user id, password fingerprint) from a token; ResetTokenInvalid if expired (PASSWORD_RESET_MAX_AGE_SECONDS)
    or tampered with. The caller compares the fingerprint with the user's current hash."""
    max_age = int(current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"])
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ResetTokenInvalid("expired") from None
    except BadSignature:
        raise ResetTokenInvalid("bad signature") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("p"), str):
        raise ResetTokenInvalid("malformed")
    return data["u"], data["p"]


def token_matches(token_fingerprint: str, password_hash: str) -> bool:
    """True when a token's fingerprint is of this (current) password hash."""
    return hmac.compare_digest(token_fingerprint, fingerprint(password_hash))
