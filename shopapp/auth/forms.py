"""Account forms (Flask-WTF, CSRF included)."""

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, Field, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, ValidationError

from shopapp.forms import ShopForm
from shopapp.services import passwords
from shopapp.services.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

NEW_PASSWORD_HELP = _l(
    "At least %(count)d characters. A few unrelated words make a strong password that is easy to remember; very "
    "common passwords are refused.",
    count=MIN_PASSWORD_LENGTH,
)


def new_password_rules(form: Any, field: Field) -> None:
    """The shop's password rules (NIST SP 800-63B), worded for the field; the email, when the form has one, is
    treated as an easy guess too."""
    email = getattr(getattr(form, "email", None), "data", None)
    try:
        passwords.check_new_password(field.data or "", email=email)
    except passwords.PasswordRejected as error:
        raise ValidationError(str(error)) from None


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


# RFC 5321 section 4.5.3.1.1: a local part ("name" in name@example.com) is at most 64 octets; servers may refuse
# longer ones, so an account with one could never receive its receipts.
MAX_LOCAL_PART_OCTETS = 64


def local_part_length(form: Any, field: Field) -> None:
    """Refuse an address whose part before the last "@" is over 64 octets (UTF-8), naming the limit."""
    local = (field.data or "").rpartition("@")[0]
    excess = len(local.encode()) - MAX_LOCAL_PART_OCTETS
    if excess > 0:
        raise ValidationError(
            _(
                "The part before the @ may be at most %(limit)d characters (%(excess)d too many).",
                limit=MAX_LOCAL_PART_OCTETS,
                excess=excess,
            )
        )


class SignupForm(ShopForm):
    """New account: email and a password typed twice."""

    email = EmailField(
        _l("Email"),
        filters=[_strip],
        validators=[DataRequired(), local_part_length, Email(check_deliverability=False), Length(max=254)],
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(message=_l("Please choose a password.")), new_password_rules],
        description=NEW_PASSWORD_HELP,
    )
    confirm = PasswordField(
        _l("Repeat password"), validators=[DataRequired(), EqualTo("password", message=_l("Passwords must match."))]
    )
    submit = SubmitField(_l("Create account"))


class LoginForm(ShopForm):
    """Email and password, with an optional remember-me cookie."""

    email = EmailField(_l("Email"), filters=[_strip], validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    remember = BooleanField(_l("Keep me signed in"))
    submit = SubmitField(_l("Log in"))


class LogoutForm(ShopForm):
    """Log-out is a POST with a CSRF token."""

    submit = SubmitField(_l("Log out"))


class ChangePasswordForm(ShopForm):
    """The current password, and a new one typed twice."""

    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(message=_l("Please choose a new password.")), new_password_rules],
        description=_l(
            "At least %(count)d characters. A few unrelated words make a strong password that is easy to remember; "
            "very common passwords are refused. Your other signed-in devices will be logged out.",
            count=MIN_PASSWORD_LENGTH,
        ),
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("Passwords must match."))],
    )
    submit = SubmitField(_l("Change password"))


class ForgotPasswordForm(ShopForm):
    """The address to send a reset link to."""

    email = EmailField(_l("Email"), filters=[_strip], validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Send me a reset link"))


class ResetPasswordForm(ShopForm):
    """A new password, typed twice, from a reset link."""

    password = PasswordField(
        _l("New password"),
        validators=[InputRequired(message=_l("Please choose a new password.")), new_password_rules],
        description=_l(
            "At least %(count)d characters. A few unrelated words make a strong password that is easy to remember; "
            "very common passwords are refused. Every device signed in to your account will be logged out.",
            count=MIN_PASSWORD_LENGTH,
        ),
    )
    confirm = PasswordField(
        _l("Repeat new password"), validators=[DataRequired(), EqualTo("password", message=_l("Passwords must match."))]
    )
    submit = SubmitField(_l("Set new password"))


class TwoFactorCodeForm(ShopForm):
    """A six-digit code from the authenticator app, or a recovery code."""

    code = StringField(
        _l("Code from your authenticator app"),
        filters=[_strip],
        validators=[DataRequired(message=_l("Enter the code your app shows.")), Length(max=32)],
        description=_l("Six digits, or one of your recovery codes (like 1a2b3c-4d5e6f)."),
        render_kw={"inputmode": "text", "autocapitalize": "off", "spellcheck": "false"},
    )
    submit = SubmitField(_l("Continue"))


class TwoFactorSetupForm(ShopForm):
    """Start enrolment (a POST with CSRF, so a link cannot replace a pending secret)."""

    submit = SubmitField(_l("Set up two-factor log-in"))


class DeleteAccountForm(ShopForm):
    """Deleting the account: the password again, so an unlocked screen is not enough."""

    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    submit = SubmitField(_l("Delete my account"))
