"""Two-factor log-in: TOTP (RFC 6238, pyotp) with one-time recovery codes.

- Enrolment: a new secret is shown as a QR code (segno) and as text; it is stored on the account only once
  the first code from the app proves the app holds it, and ten recovery codes are shown once.
- A code is accepted at most once: the time step of the last accepted code is stored and a code of that
  step or an earlier one is refused (an overheard code is useless), with one step of clock drift allowed.
- Recovery codes are stored as argon2 hashes (like passwords) and each works once.
- Rate limits on code attempts live in the views (Flask-Limiter); this module decides and records.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from shopapp.extensions import db
from shopapp.models import RecoveryCode, User
from shopapp.models.base import utcnow
from shopapp.services import accounts
from shopapp.services.tx import write_transaction

ISSUER = "Tidy Shop"
RECOVERY_CODES = 10
DIGITS = 6
STEP_SECONDS = 30  # RFC 6238's default, what every authenticator app uses


class TwoFactorError(ValueError):
    """A refused code or enrolment (the message is for the person)."""


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text and as a QR code (an SVG data URI)."""

    secret: str
    uri: str
    qr_data_uri: str


def new_enrolment(email: str, issuer: str = ISSUER) -> Enrolment:
    """A fresh secret for email (nothing stored yet): otpauth:// URI and its QR code."""
    return enrolment_for(pyotp.random_base32(), email, issuer)


def enrolment_for(secret: str, email: str, issuer: str = ISSUER) -> Enrolment:
    """The otpauth:// URI and QR code of a given secret (the enrolment page shown again)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    return Enrolment(secret, uri, segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def _step_of(secret: str, code: str, now: float) -> int | None:
    """The time step (one before, now, or one after) whose code this is, else None."""
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _clean(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-").lower()


def confirm_enrolment(user_id: int, secret: str, code: str, now: float | None = None) -> list[str]:
    """Store secret on the account if code is its current code; returns the recovery codes (shown once).

    Raises TwoFactorError when the code does not match (the app was set up from another secret, or the
    phone's clock is off by more than 30 s).
    """
    code = _clean(code)
    step = _step_of(secret, code, time.time() if now is None else now) if len(code) == DIGITS else None
    if step is None:
        raise TwoFactorError("That code does not match. Check the app's entry for this shop and try the newest code.")
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    hashes = [accounts.hash_password(c) for c in codes]
    with write_transaction() as session:
        user = session.get(User, user_id)
        if user is None:
            raise TwoFactorError("This account no longer exists.")
        user.totp_secret = secret
        user.totp_last_step = step
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        session.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in hashes)
    return codes


def disable(user_id: int) -> None:
    """Turn two-factor off for the account and forget its recovery codes."""
    with write_transaction() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.totp_secret = None
            user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def is_enabled(user_id: int) -> bool:
    """True when the account has a confirmed TOTP secret."""
    return db.session.scalar(select(User.totp_secret.is_not(None)).where(User.id == user_id)) is True


def verify(user_id: int, code: str, now: float | None = None) -> bool:
    """True if code is a fresh TOTP code or an unused recovery code of the account; it is then used up.

    TOTP: accepted only for a time step after the last accepted one (a compare-and-set, so two requests
    racing with one code cannot both pass). Recovery code: its row is marked used the same way.
    """
    code = _clean(code)
    secret, last_step = db.session.execute(
        select(User.totp_secret, User.totp_last_step).where(User.id == user_id)
    ).one_or_none() or (None, None)
    if secret is None:
        return False
    if len(code) == DIGITS and code.isdigit():
        step = _step_of(secret, code, time.time() if now is None else now)
        if step is None or (last_step is not None and step <= last_step):
            return False
        with write_transaction() as session:
            won = session.execute(
                update(User)
                .where(User.id == user_id, (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
                .values(totp_last_step=step)
            ).rowcount  # type: ignore[attr-defined]
        return bool(won)
    return _use_recovery_code(user_id, code)


def _use_recovery_code(user_id: int, code: str) -> bool:
    if len(code) > 32:
        return False
    rows = db.session.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    hasher = accounts.password_hasher()
    for row_id, code_hash in rows:
        try:
            hasher.verify(code_hash, f"{code[:6]}-{code[6:]}")  # as issued: "abc123-def456"
        except (VerificationError, InvalidHashError):
            continue
        with write_transaction() as session:
            won = session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row_id, RecoveryCode.used_at.is_(None))
                .values(used_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
        return bool(won)
    return False


def recovery_codes_left(user_id: int) -> int:
    """Unused recovery codes of the account."""
    return len(
        db.session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        ).all()
    )
