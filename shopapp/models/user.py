"""Shop accounts: shoppers and staff."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Integer, String
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

    def get_id(self) -> str:
        """The value Flask-Login stores in the session cookie."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    def __str__(self) -> str:
        return self.email
