"""Shop accounts: shoppers and staff."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow


def new_session_token() -> str:
    """A fresh random token; rotating it signs the user out everywhere."""
    return secrets.token_urlsafe(24)


class User(UserMixin, Base):
    """A person with a login. `email` is stored normalised (trimmed, lower-case), so uniqueness is case-insensitive."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Flask-Login identifies the user by this token, not the id: rotating it ends every
    # existing session and remember-me cookie (log-out, password change).
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Two-factor log-in (RFC 6238 TOTP, services/two_factor.py): the base32 secret once enrolment is
    # confirmed (a pending one lives in the session until the first code proves the app has it).
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The last accepted code's time step: a code is accepted once, so one overheard is useless afterwards.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Set when the shopper deleted the account (services/data_rights.py): the row stays for the orders' books.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The shopper's language (one of config LANGUAGES), for the emails sent to them; None = the shop's default.
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)

    @property
    def two_factor_enabled(self) -> bool:
        """True once a TOTP app is enrolled."""
        return self.totp_secret is not None

    def get_id(self) -> str:
        """The value Flask-Login stores in the session cookie."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    def __str__(self) -> str:
        return self.email


class RecoveryCode(Base):
    """A one-time two-factor recovery code, stored as an argon2 hash (like a password); used once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
