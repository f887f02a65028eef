"""Two-factor views: the second log-in step, enrolment from the account page, and the fresh-code check
before money goes back or a staff right changes (services/two_factor.py decides)."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from shopapp.auth import bp, known_devices
from shopapp.auth.forms import TwoFactorCodeForm, TwoFactorSetupForm
from shopapp.extensions import limiter
from shopapp.security import safe_redirect_target
from shopapp.services import accounts, two_factor

log = logging.getLogger("shopapp.auth")

PENDING = "tf_pending"  # {"token": session token, "remember": bool, "next": path}: password checked, code due
ENROL_SECRET = "tf_enrol_secret"  # the secret shown on the enrolment page, until its first code confirms it
VERIFIED_AT = "tf_verified_at"  # epoch seconds of this session's last accepted code
# Staff POSTs that send money back or change who is staff: a code is asked again when the last one is old.
FRESH_CODE_ENDPOINTS = frozenset({"orders.refund_view", "users.edit_view"})


def _code_limit() -> str:
    return str(current_app.config["TWO_FACTOR_RATE_LIMIT"])


def _code_key() -> str:
    """Code attempts are counted per account (the pending log-in's, or the signed-in one's)."""
    pending = session.get(PENDING) or {}
    if pending.get("token"):
        return f"2fa:{pending['token']}"
    if current_user.is_authenticated:
        return f"2fa:user:{current_user.id}"
    return f"2fa:addr:{request.remote_addr}"


def start_second_step(user: accounts.User, remember: bool, next_path: str | None) -> Response:
    """The password was right and the account has two-factor on: ask for a code before logging in."""
    session.clear()
    session[PENDING] = {"token": user.session_token, "remember": remember, "next": next_path}
    return redirect(url_for("auth.two_factor_login"))


@bp.route("/two-factor/login", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_code_key)
def two_factor_login() -> Response | tuple[str, int] | str:
    """The log-in's second step: a TOTP code or a recovery code."""
    pending = session.get(PENDING) or {}
    user = accounts.load_user_by_session_token(pending["token"]) if pending.get("token") else None
    if user is None:
        session.pop(PENDING, None)
        flash(_("Please log in again."), "info")
        return redirect(url_for("auth.login"))
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        if two_factor.verify(user.id, form.code.data or ""):
            session.clear()
            login_user(user, remember=bool(pending["remember"]))
            session[VERIFIED_AT] = time.time()
            flash(_("You are logged in."), "success")
            response = redirect(safe_redirect_target(pending.get("next")) or url_for("shop.index"))
            return known_devices.remember_device(response, user.email)
        log.warning("Failed two-factor code for user %s from %s", user.id, request.remote_addr)
        form.code.errors = [*form.code.errors, "That code is not right, or was already used."]
    status = 400 if request.method == "POST" else 200
    return render_template("auth/two_factor_login.html", form=form), status


@bp.route("/two-factor", methods=["GET"])
@login_required
def two_factor_settings() -> str:
    """The account page's two-factor section: on (codes left, turn off) or off (set up)."""
    enabled = two_factor.is_enabled(current_user.id)
    return render_template(
        "auth/two_factor.html",
        enabled=enabled,
        codes_left=two_factor.recovery_codes_left(current_user.id) if enabled else 0,
        setup_form=TwoFactorSetupForm(),
        code_form=TwoFactorCodeForm(),
        required=current_user.is_staff and current_app.config["TWO_FACTOR_REQUIRED_FOR_STAFF"],
    )


@bp.route("/two-factor/setup", methods=["POST"])
@login_required
def two_factor_setup() -> Response | tuple[str, int] | str:
    """Show a new secret (QR code and text); the code that follows confirms it."""
    if not TwoFactorSetupForm().validate_on_submit():
        return redirect(url_for("auth.two_factor_settings"))
    enrolment = two_factor.new_enrolment(current_user.email, current_app.config["SHOP_NAME"])
    session[ENROL_SECRET] = enrolment.secret
    return render_template("auth/two_factor_enrol.html", enrolment=enrolment, form=TwoFactorCodeForm())


@bp.route("/two-factor/confirm", methods=["POST"])
@login_required
@limiter.limit(_code_limit, key_func=_code_key)
def two_factor_confirm() -> Response | tuple[str, int] | str:
    """The first code from the app: two-factor is on, and the recovery codes are shown once."""
    secret = session.get(ENROL_SECRET)
    if not secret:
        return redirect(url_for("auth.two_factor_settings"))
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.confirm_enrolment(current_user.id, secret, form.code.data or "")
        except two_factor.TwoFactorError as error:
            form.code.errors = [*form.code.errors, str(error)]
        else:
            session.pop(ENROL_SECRET, None)
            session[VERIFIED_AT] = time.time()
            return render_template("auth/two_factor_codes.html", codes=codes)
    enrolment = two_factor.enrolment_for(secret, current_user.email, current_app.config["SHOP_NAME"])
    return render_template("auth/two_factor_enrol.html", enrolment=enrolment, form=form), 400


@bp.route("/two-factor/disable", methods=["POST"])
@login_required
@limiter.limit(_code_limit, key_func=_code_key)
def two_factor_disable() -> Response:
    """Turn two-factor off, with a current code (someone at an unlocked screen cannot)."""
    form = TwoFactorCodeForm()
    if form.validate_on_submit() and two_factor.verify(current_user.id, form.code.data or ""):
        two_factor.disable(current_user.id)
        flash(_("Two-factor log-in is off."), "info")
    else:
        flash(_("That code is not right; two-factor log-in stays on."), "error")
    return redirect(url_for("auth.two_factor_settings"))


@bp.route("/two-factor/again", methods=["GET", "POST"])
@login_required
@limiter.limit(_code_limit, methods=["POST"], key_func=_code_key)
def two_factor_again() -> Response | tuple[str, int] | str:
    """A fresh code before a refund or a staff change; then back to the page it came from."""
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        if two_factor.verify(current_user.id, form.code.data or ""):
            session[VERIFIED_AT] = time.time()
            flash(_("Thank you. Please submit your change again."), "success")
            return redirect(safe_redirect_target(request.args.get("next")) or url_for("admin.index"))
        form.code.errors = [*form.code.errors, "That code is not right, or was already used."]
    status = 400 if request.method == "POST" else 200
    return render_template("auth/two_factor_again.html", form=form), status


def guard_staff_pages(app: Flask) -> None:
    """Run two_factor_gate before every request to the admin's blueprints only (Flask's per-blueprint
    before_request_funcs), so the shop's own pages pay nothing for it. Call after the admin is built."""
    for name, blueprint in app.blueprints.items():
        if (blueprint.url_prefix or "").startswith("/admin"):
            app.before_request_funcs.setdefault(name, []).append(two_factor_gate)


def two_factor_gate() -> Response | None:
    """Staff pages: enrolment first where it is required; a fresh code before refunds and staff changes."""
    if not current_user.is_authenticated or not current_user.is_staff:
        return None  # the admin refuses them itself
    enabled = getattr(current_user, "two_factor_enabled", None)  # read with the user's row: no extra query
    if enabled is None:
        enabled = two_factor.is_enabled(current_user.id)
    if not enabled:
        if current_app.config["TWO_FACTOR_REQUIRED_FOR_STAFF"]:
            flash(_("Staff accounts need two-factor log-in: set it up to use the admin."), "warning")
            return redirect(url_for("auth.two_factor_settings"))
        return None
    if request.method == "POST" and request.endpoint in FRESH_CODE_ENDPOINTS:
        fresh_for = 60 * int(current_app.config["TWO_FACTOR_FRESH_MINUTES"])
        if time.time() - float(session.get(VERIFIED_AT) or 0) > fresh_for:
            came_from = urlsplit(request.referrer or "")
            back = came_from.path + (f"?{came_from.query}" if came_from.query else "")
            flash(_("Enter a code from your authenticator app to confirm this change."), "warning")
            return redirect(url_for("auth.two_factor_again", next=safe_redirect_target(back) or None))
    return None
