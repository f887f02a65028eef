"""Account views: validate a form, call one service, redirect or render."""

from __future__ import annotations

import logging
import math
import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from shopapp.auth import bp, known_devices, two_factor
from shopapp.auth.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    LogoutForm,
    ResetPasswordForm,
    SignupForm,
)
from shopapp.extensions import limiter, login_manager
from shopapp.security import safe_redirect_target
from shopapp.services import accounts

log = logging.getLogger("shopapp.auth")

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please log in to continue.")
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(token: str) -> accounts.SignedInUser | None:
    """Flask-Login's loader: the session stores the user's current session token."""
    return accounts.load_user_by_session_token(token)


def safe_next(target: str | None) -> str | None:
    """Return `target` only if it is a path on this site (the one check: security.safe_redirect_target)."""
    return safe_redirect_target(target)


def _start_session(user: accounts.User | accounts.SignedInUser, remember: bool) -> None:
    # A fresh session at log-in: nothing from before (e.g. a planted value) survives.
    session.clear()
    login_user(user, remember=remember)


def _signup_limit() -> str:
    return str(current_app.config["SIGNUP_RATE_LIMIT"])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"])
def signup() -> Response | tuple[str, int] | str:
    """Create an account and log in."""
    if current_user.is_authenticated:
        return redirect(url_for("shop.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data or "", form.password.data or "", locale=str(get_locale()))
        except accounts.EmailTaken as error:
            form.email.errors = [*form.email.errors, str(error)]
            return render_template("auth/signup.html", form=form), 409
        except accounts.AccountError as error:
            form.email.errors = [*form.email.errors, str(error)]
        else:
            _start_session(user, remember=False)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(safe_next(request.args.get("next")) or url_for("shop.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Response | tuple[str, int] | str:
    """Log in with email and password. Attempts are limited per address (above) and per account, counted
    before the password is checked; the account's own known browsers are exempt (known_devices)."""
    if current_user.is_authenticated:
        return redirect(url_for("shop.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        wait = known_devices.reserve_attempt()
        if wait is not None:
            raise TooManyRequests(retry_after=wait)
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None and user.totp_secret is not None:
            return two_factor.start_second_step(user, bool(form.remember.data), request.args.get("next"))
        if user is not None:
            known_devices.release_attempts()
            if user.locale != str(get_locale()):
                accounts.set_locale(user.id, str(get_locale()))  # the language of this shopper's emails
            _start_session(user, remember=bool(form.remember.data))
            flash(_("You are logged in."), "success")
            response = redirect(safe_next(request.args.get("next")) or url_for("shop.index"))
            return known_devices.remember_device(response, user.email)
        log.warning("Failed log-in attempt from %s", request.remote_addr)
        error = _("Invalid email or password.")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Log out: end this session and invalidate the old cookies (and remember-me) everywhere."""
    form = LogoutForm()
    if not form.validate_on_submit():
        flash(_("Your session expired; please try logging out again."), "warning")
        return redirect(url_for("shop.index"))
    accounts.end_all_sessions(current_user.id)
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("shop.index"))


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@login_required
def change_password() -> Response | tuple[str, int] | str:
    """Change the password; every other session (and remember-me cookie) stops working, this one continues."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.change_password(
                current_user.id, form.current_password.data or "", form.new_password.data or ""
            )
        except accounts.AccountError as error:
            log.warning("Password change refused for user %s: wrong current password or bad new one", current_user.id)
            form.current_password.errors = [*form.current_password.errors, str(error)]
        else:
            # The token rotated, so this browser needs a fresh session (and remember-me cookie, if it had one).
            had_remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
            _start_session(user, remember=had_remember)
            flash(_("Your password was changed. Other devices have been logged out."), "success")
            # Every known-device exemption ended with the old password; this browser earns its own again.
            return known_devices.remember_device(redirect(url_for("shop.index")), user.email)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


# ---------------------------------------------------------------------------------------------
# Password reset (issue 15)


def _reset_limit() -> str:
    return str(current_app.config["RESET_RATE_LIMIT"])


def _reset_per_email_limit() -> str:
    return str(current_app.config["RESET_PER_EMAIL_RATE_LIMIT"])


def _reset_email_key() -> str:
    # Counted per normalised address, whether or not it has an account, so a 429 reveals nothing.
    return "reset-email:" + accounts.normalize_email(request.form.get("email", ""))


FORGOT_ANSWER = _l(
    "If an account uses {email}, a link to choose a new password is on its way. It works once, for an hour. "
    "Nothing arrived? Check the spam folder, or ask again in a few minutes."
)


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
@limiter.limit(_reset_per_email_limit, methods=["POST"], key_func=_reset_email_key)
def forgot_password() -> Response | tuple[str, int] | str:
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        accounts.request_password_reset(email)
        flash(str(FORGOT_ANSWER).format(email=email), "info")
        return redirect(url_for("auth.forgot_password"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
def reset_password(token: str) -> Response | tuple[str, int] | str:
    """Choose a new password from an emailed link; on success this browser is logged in, every other
    session is ended, and the link stops working."""
    if len(token) > 512:
        return render_template("auth/reset.html", form=None, invalid=accounts.RESET_LINK_INVALID), 404
    try:
        accounts.user_for_reset_token(token)
    except accounts.AccountError as error:
        return render_template("auth/reset.html", form=None, invalid=str(error)), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(token, form.password.data or "")
        except accounts.AccountError as error:
            form.password.errors = [*form.password.errors, str(error)]
        else:
            _start_session(user, remember=False)
            flash(_("Your new password is set and you are logged in. Other devices have been logged out."), "success")
            return known_devices.remember_device(redirect(url_for("shop.index")), user.email)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, invalid=None), status


# A 429 on these forms keeps the page and what was typed (never the passwords), and says when to retry.
_LIMITED_FORMS: dict[str, tuple[type[FlaskForm], str]] = {
    "auth.signup": (SignupForm, "auth/signup.html"),
    "auth.login": (LoginForm, "auth/login.html"),
    "auth.forgot_password": (ForgotPasswordForm, "auth/forgot.html"),
    "auth.reset_password": (ResetPasswordForm, "auth/reset.html"),
    "auth.change_password": (ChangePasswordForm, "auth/password.html"),
}


def _retry_after_seconds(error: TooManyRequests) -> int:
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int):
        return retry_after  # the per-account limit (known_devices.reserve_attempt)
    limit = limiter.current_limit
    if limit is None:
        return 60
    return max(1, int(limit.reset_at - time.time()))


@bp.errorhandler(429)
def too_many_attempts(error: TooManyRequests) -> tuple[str, int, dict[str, str]] | TooManyRequests:
    """The form again, with the shopper's input and when to try again; Flask-Limiter adds Retry-After."""
    entry = _LIMITED_FORMS.get(request.endpoint or "")
    if entry is None:
        return error
    form_class, template = entry
    form = form_class()
    seconds = _retry_after_seconds(error)
    if seconds < 90:
        message = _("Too many attempts in a short time. Please try again in %(count)d seconds.", count=seconds)
    else:
        minutes = math.ceil(seconds / 60)
        message = _("Too many attempts in a short time. Please try again in %(count)d minutes.", count=minutes)
    log.warning("Rate limit hit by %s: %s %s", request.remote_addr, request.method, request.path)
    extra: dict[str, str | None] = {"error": message} if template == "auth/login.html" else {"limited": message}
    if template == "auth/reset.html":
        extra["invalid"] = None
    return render_template(template, form=form, **extra), 429, {"Retry-After": str(seconds)}
