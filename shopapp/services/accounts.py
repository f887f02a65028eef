"""Accounts: sign-up, authentication, passwords and staff."""

from __future__ import annotations

import unicodedata
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from confusable_homoglyphs import confusables
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from shopapp.database import PlainRead
from shopapp.extensions import db
from shopapp.models import User
from shopapp.models.user import new_session_token
from shopapp.services import outbox, passwords
from shopapp.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from shopapp.services.tx import write_transaction

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH"]


@cache
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    # Verifying against this when the email is unknown keeps both failure paths equally slow.
    return hasher, hasher.hash("not-a-real-password")


def _argon2() -> tuple[PasswordHasher, str]:
    config = current_app.config
    return _hasher_for(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_KIB"])


def password_hasher() -> PasswordHasher:
    """The configured argon2id hasher (also for two-factor recovery codes)."""
    return _argon2()[0]


class AccountError(ValueError):
    """A user-facing reason an account operation was refused."""


class EmailTaken(AccountError):
    """Another account already has this (normalised) address."""


def normalize_email(email: str) -> str:
    """The one stored and compared form of an address: email-validator's `normalized` form (local part in
    Unicode NFC, domain lower-cased and IDNA-normalised to its Unicode form), with the local part lower-cased.

    RFC 5321 lets a server treat the local part's case as significant, but no mail provider a shopper
    uses does, and "Zoë@" and "zoë@" typed by one person must not make two accounts; so uniqueness is
    case-insensitive (str.lower, not casefold, which would also fold "ß" into "ss": a different mailbox).
    Text email-validator refuses (only possible for rows stored before validation) is NFC + lower-cased.
    The same function is applied by migration 0005_accounts_mail to existing rows.
    """
    text = unicodedata.normalize("NFC", email.strip())
    try:
        normalized = validate_email(
            text, check_deliverability=False, globally_deliverable=False, test_environment=True
        ).normalized
    except EmailNotValidError:
        return text.lower()
    local, _, domain = normalized.rpartition("@")
    return f"{local.lower()}@{domain}"


LOOKALIKE_MIXED = _l(
    "This address mixes letters of different alphabets (for example a Cyrillic \u201c\u0430\u201d among Latin "
    "letters), so it looks like a different address. Please type it in one alphabet."
)
LOOKALIKE_WIDTH = _l(
    "This address contains full-width or other compatibility characters that look like ordinary ones. "
    "Please type it with ordinary letters and digits."
)


def check_not_lookalike(normalized: str) -> None:
    """Refuse (AccountError) a new address built to look like another one, so "the same" address cannot make
    a second account (issue 26, finding 7):

    - compatibility characters (full-width letters such as U+FF41, ligatures): NFKC would fold them;
    - a local part or domain label mixing scripts with confusable letters (Unicode TS #39's mixed-script
      confusables, via confusable_homoglyphs): "ann@example.com" typed with a Cyrillic U+0430 for the "a".
    A label written wholly in one script ("иван@пример.рф", "zoë@...") is accepted: that is
    how people write their own addresses. Applied at sign-up only; existing accounts are left alone.
    """
    if unicodedata.normalize("NFKC", normalized) != normalized:
        raise AccountError(str(LOOKALIKE_WIDTH))
    local, _, domain = normalized.rpartition("@")
    if any(confusables.is_dangerous(part) for part in [local, *domain.split(".")] if part):
        raise AccountError(str(LOOKALIKE_MIXED))


def check_password_rules(password: str, email: str | None = None) -> None:
    """Raise AccountError unless the password may be chosen (see passwords.check_new_password)."""
    try:
        passwords.check_new_password(password, email=email)
    except passwords.PasswordRejected as error:
        raise AccountError(str(error)) from None


def hash_password(password: str) -> str:
    """Argon2id hash of the password."""
    return _argon2()[0].hash(password)


def find_user_by_email(email: str) -> User | None:
    """The user with this email (case-insensitive), if any."""
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


class SignedInUser(UserMixin):
    """The logged-in user as a request sees it: five values read as one plain row.

    Flask-Login loads the user on every logged-in request; a tracked ORM User (identity map, instance
    state, every column) cost twice this. Services that change an account load the row themselves.
    """

    __slots__ = ("email", "id", "is_staff", "session_token", "two_factor_enabled")

    def __init__(
        self, id: int, email: str, is_staff: bool, session_token: str, two_factor_enabled: bool | None = None
    ) -> None:
        self.id, self.email, self.is_staff, self.session_token = id, email, is_staff, session_token
        # None: not read with the row (the staff pages' two-factor gate then asks the database).
        self.two_factor_enabled = two_factor_enabled

    def get_id(self) -> str:
        """The value Flask-Login stores in the session cookie."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<SignedInUser {self.id} {self.email}>"


# Every logged-in request runs it: a plain read (database.PlainRead), built once.
_users = User.__table__.c
_USER_BY_TOKEN = PlainRead(
    select(_users.id, _users.email, _users.is_staff, _users.session_token, _users.totp_secret.is_not(None)).where(
        _users.session_token == bindparam("token")
    )
)


def load_user_by_session_token(token: str) -> SignedInUser | None:
    """The user whose current session token this is (Flask-Login's user loader)."""
    if not token:
        return None
    row = _USER_BY_TOKEN.first(token=token)
    return SignedInUser(*row) if row is not None else None


EMAIL_TAKEN = _l("An account with this email already exists. Log in, or use \u201cForgot password?\u201d.")


def create_user(
    email: str, password: str, *, is_staff: bool = False, welcome: bool = True, locale: str | None = None
) -> User:
    """Create an account and queue its welcome email in the same transaction.

    Raises AccountError for a refused password, EmailTaken when the normalised address has an account --
    also when a simultaneous sign-up wins the race: the unique constraint answers (an IntegrityError on
    SQLite and PostgreSQL alike), not a 500.
    """
    normalized = normalize_email(email)
    check_not_lookalike(normalized)
    check_password_rules(password, normalized)
    password_hash = hash_password(password)  # before the write lock: Argon2 takes tens of milliseconds
    try:
        with write_transaction() as session:
            if session.scalar(select(User.id).where(User.email == normalized)) is not None:
                raise EmailTaken(str(EMAIL_TAKEN))
            user = User(email=normalized, password_hash=password_hash, is_staff=is_staff, locale=locale)
            session.add(user)
            session.flush()
            if welcome:
                outbox.enqueue_welcome(user)
    except IntegrityError as error:
        if find_user_by_email(normalized) is not None:
            raise EmailTaken(str(EMAIL_TAKEN)) from error
        raise
    return user


def set_locale(user_id: int, language: str) -> None:
    """Remember the shopper's language (one of config LANGUAGES) for the emails sent to them."""
    with write_transaction() as session:
        user = session.get(User, user_id)
        if user is not None and user.locale != language:
            user.locale = language


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


def password_fingerprint(email: str) -> str | None:
    """A digest of the account's current password hash (passwords.fingerprint), or None for an unknown address.

    What the known-device cookie is bound to: it changes with every password change or reset, so a cookie
    earned with the old password stops exempting its browser from the per-account log-in limit.
    """
    password_hash = db.session.scalar(select(User.password_hash).where(User.email == normalize_email(email)))
    return passwords.fingerprint(password_hash) if password_hash else None


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
        raise AccountError(_("The current password is not correct."))
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountError(_("This account no longer exists."))
    try:
        _argon2()[0].verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError):
        raise AccountError(_("The current password is not correct.")) from None
    check_password_rules(new_password, user.email)
    with write_transaction():
        user.password_hash = hash_password(new_password)
        user.session_token = new_session_token()
        outbox.enqueue_password_changed(user)
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
            check_password_rules(password, user.email)
            user.password_hash = hash_password(password)
            user.session_token = new_session_token()
    return user, False


# ---------------------------------------------------------------------------------------------
# Password reset


RESET_LINK_INVALID = _l(
    "This reset link has expired or was already used. Ask for a new one below; it works for an hour."
)


def request_password_reset(email: str) -> None:
    """Queue a reset link for the account with this address, or, when there is none, a message saying so.

    The same work either way (one read, one outbox row, one commit; the mail goes out from the sender process,
    never from the request), so neither the page nor its timing tells whether the address has an account
    (issue 26, finding 4). Addresses email-validator refuses queue nothing: no mail could reach them.
    """
    normalized = normalize_email(email)
    with write_transaction() as session:
        user = session.scalar(select(User).where(User.email == normalized))
        if user is not None:
            outbox.enqueue_password_reset(user)
        elif "@" in normalized:
            outbox.enqueue_reset_without_account(session, normalized)


def user_for_reset_token(token: str) -> User:
    """The account a reset link is for; AccountError(RESET_LINK_INVALID) when the link is expired (an hour),
    tampered with, or stale because the password changed since it was made (which includes using it)."""
    try:
        user_id, fingerprint = passwords.read_reset_token(token)
    except passwords.ResetTokenInvalid:
        raise AccountError(str(RESET_LINK_INVALID)) from None
    user = db.session.get(User, user_id)
    if user is None or not passwords.token_matches(fingerprint, user.password_hash):
        raise AccountError(str(RESET_LINK_INVALID))
    return user


def reset_password(token: str, new_password: str) -> SignedInUser:
    """Set a new password from a reset link: the link stops working, every other session ends, and a
    "password changed" notice is queued. Returns the signed-in user for the browser that used the link."""
    user = user_for_reset_token(token)
    check_password_rules(new_password, user.email)
    new_hash = hash_password(new_password)
    with write_transaction() as session:
        # Compare-and-set on the old hash: two submits of one link cannot both succeed.
        fresh = session.get(User, user.id, populate_existing=True, with_for_update=True)
        if fresh is None or fresh.password_hash != user.password_hash:
            raise AccountError(str(RESET_LINK_INVALID))
        fresh.password_hash = new_hash
        fresh.session_token = new_session_token()
        outbox.enqueue_password_changed(fresh)
    return SignedInUser(fresh.id, fresh.email, fresh.is_staff, fresh.session_token)
