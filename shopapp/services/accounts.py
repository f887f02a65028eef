"""Accounts: sign-up, authentication, passwords and staff."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_login import UserMixin
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


class SignedInUser(UserMixin):
    """The logged-in user as a request sees it: four values read as one plain row.

    Flask-Login loads the user on every logged-in request; a tracked ORM User (identity map, instance
    state, every column) cost twice this. Services that change an account load the row themselves.
    """

    __slots__ = ("email", "id", "is_staff", "session_token")

    def __init__(self, id: int, email: str, is_staff: bool, session_token: str) -> None:
        self.id, self.email, self.is_staff, self.session_token = id, email, is_staff, session_token

    def get_id(self) -> str:
        """The value Flask-Login stores in the session cookie."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<SignedInUser {self.id} {self.email}>"


# Built once: every logged-in request runs it. Table columns: no ORM execution layer for a plain row.
_users = User.__table__.c
_USER_BY_TOKEN = select(_users.id, _users.email, _users.is_staff, _users.session_token).where(
    _users.session_token == bindparam("token")
)


def load_user_by_session_token(token: str) -> SignedInUser | None:
    """The user whose current session token this is (Flask-Login's user loader)."""
    if not token:
        return None
    row = db.session.execute(_USER_BY_TOKEN, {"token": token}).first()
    return SignedInUser(*row) if row is not None else None


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


def end_all_sessions(user_id: int) -> None:
    """Rotate the user's session token so every existing session and remember-me cookie stops working."""
    with write_transaction() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.session_token = new_session_token()


def change_password(user_id: int, current_password: str, new_password: str) -> SignedInUser:
    """Change the password after checking the current one; other sessions end. Returns the user with the
    new session token, for the session that made the change to continue."""
    if len(current_password) > MAX_PASSWORD_LENGTH:  # never hash an attacker-sized string
        raise AccountError("The current password is not correct.")
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountError("This account no longer exists.")
    try:
        _argon2()[0].verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError):
        raise AccountError("The current password is not correct.") from None
    check_password_rules(new_password)
    with write_transaction():
        user.password_hash = hash_password(new_password)
        user.session_token = new_session_token()
    return SignedInUser(user.id, user.email, user.is_staff, user.session_token)


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
