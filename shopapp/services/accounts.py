"""Accounts: sign-up, authentication, passwords and staff."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import bindparam, select

from shopapp.extensions import db
from shopapp.models import User
from shopapp.models.user import new_session_token
from shopapp.services.tx import write_transaction

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256



@cache
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    # Verifying against this when the email is unknown keeps both failure paths equally slow.
    return hasher, hasher.hash("not-a-real-password")


def _argon2() -> tuple[PasswordHasher, str]:
    config = current_app.config
    return _hasher_for(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_KIB"])


class AccountError(ValueError):
    """A user-facing reason an account operation was refused."""


def normalize_email(email: str) -> str:
    """Trim and lower-case an email so uniqueness is case-insensitive."""
    return email.strip().lower()


def check_password_rules(password: str) -> None:
    """Raise AccountError unless the password has an acceptable length."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")


def hash_password(password: str) -> str:
    """Argon2id hash of the password."""
    return _argon2()[0].hash(password)


def find_user_by_email(email: str) -> User | None:
    """The user with this email (case-insensitive), if any."""
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


# Built once: every logged-in request runs it.
_USER_BY_TOKEN = select(User).where(User.session_token == bindparam("token"))


def load_user_by_session_token(token: str) -> User | None:
    """The user whose current session token this is (Flask-Login's user loader)."""
    if not token:
        return None
    return db.session.scalar(_USER_BY_TOKEN, {"token": token})


def create_user(email: str, password: str, *, is_staff: bool = False) -> User:
    """Create an account; AccountError if the email is taken or the password too short or long."""
    check_password_rules(password)
    normalized = normalize_email(email)
    with write_transaction() as session:
        if session.scalar(select(User.id).where(User.email == normalized)) is not None:
            raise AccountError("An account with this email already exists.")
        user = User(email=normalized, password_hash=hash_password(password), is_staff=is_staff)
        session.add(user)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user if email and password match, else None (same cost for unknown emails)."""
    user = find_user_by_email(email)
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    hasher, dummy_hash = _argon2()
    try:
        hasher.verify(user.password_hash if user else dummy_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        with write_transaction():
            user.password_hash = hash_password(password)
    return user


def end_all_sessions(user: User) -> None:
    """Rotate the user's session token so every existing session and remember-me cookie stops working."""
    with write_transaction():
        user.session_token = new_session_token()


def change_password(user: User, current_password: str, new_password: str) -> None:
    """Change the password after checking the current one; other sessions end."""
    if len(current_password) > MAX_PASSWORD_LENGTH:  # never hash an attacker-sized string
        raise AccountError("The current password is not correct.")
    try:
        _argon2()[0].verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError):
        raise AccountError("The current password is not correct.") from None
    check_password_rules(new_password)
    with write_transaction():
        user.password_hash = hash_password(new_password)
        user.session_token = new_session_token()


def create_or_promote_staff(email: str, password: str | None) -> tuple[User, bool]:
    """Make `email` a staff account, creating it when new; returns (user, created)."""
    user = find_user_by_email(email)
    if user is None:
        if not password:
            raise AccountError("A password is needed to create a new account.")
        return create_user(email, password, is_staff=True), True
    with write_transaction():
        user.is_staff = True
        if password:
            check_password_rules(password)
            user.password_hash = hash_password(password)
            user.session_token = new_session_token()
    return user, False
