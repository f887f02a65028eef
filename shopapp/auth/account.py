"""The account page: password, two-factor, and the shopper's data rights (download, delete)."""

from __future__ import annotations

import json
import logging

from flask import Response, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from shopapp.auth import bp
from shopapp.auth.forms import DeleteAccountForm
from shopapp.services import accounts, data_rights, two_factor

log = logging.getLogger("shopapp.auth")


@bp.get("/")
@login_required
def account() -> str:
    """Your account: links to change the password, two-factor, download your data, delete the account."""
    return render_template(
        "auth/account.html",
        two_factor_on=two_factor.is_enabled(current_user.id),
        open_orders=data_rights.open_orders(current_user.id),
        form=DeleteAccountForm(),
        kept_reason=data_rights.KEPT_REASON,
    )


@bp.get("/data.json")
@login_required
def download_data() -> Response:
    """Everything the shop holds about you, as one JSON file (GDPR art. 15 and 20)."""
    body = json.dumps(data_rights.export_data(current_user.id), indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-tidy-shop-data.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.post("/delete")
@login_required
def delete_account() -> Response | tuple[str, int]:
    """Delete (anonymise) the account after the password; refused, with each reason, while an order is open."""
    form = DeleteAccountForm()
    status = 400
    if form.validate_on_submit():
        if accounts.authenticate(current_user.email, form.password.data or "") is None:
            form.password.errors = [*form.password.errors, _("That password is not right.")]
        else:
            try:
                data_rights.delete_account(current_user.id)
            except data_rights.AccountDeletionRefused as refused:
                status = 409
                return render_template(
                    "auth/account.html",
                    two_factor_on=two_factor.is_enabled(current_user.id),
                    open_orders=data_rights.open_orders(current_user.id),
                    form=form,
                    kept_reason=data_rights.KEPT_REASON,
                    refused=refused.reasons,
                ), status
            log.info("Account %s deleted (anonymised) at the shopper's request", current_user.id)
            logout_user()
            session.clear()
            flash(_("Your account is deleted.") + " " + str(data_rights.KEPT_REASON), "info")
            return redirect(url_for("shop.index"))  # type: ignore[return-value]
    return render_template(
        "auth/account.html",
        two_factor_on=two_factor.is_enabled(current_user.id),
        open_orders=data_rights.open_orders(current_user.id),
        form=form,
        kept_reason=data_rights.KEPT_REASON,
    ), status
