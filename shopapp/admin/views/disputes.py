"""Disputes: the open ones, and one dispute's evidence page (pre-filled from the order; draft, then submit)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from shopapp.admin.forms import DisputeEvidenceForm
from shopapp.admin.views.base import StaffOnly
from shopapp.extensions import db
from shopapp.models import Dispute, Order
from shopapp.services import disputes
from shopapp.services.catalog import format_money
from shopapp.services.clock import local_time
from shopapp.services.ids import db_id


class DisputeView(StaffOnly, BaseView):
    """The open disputes (soonest due first) and each dispute's evidence form."""

    @expose("/")
    def index(self) -> Any:
        """Open disputes, or one order's disputes (`?order_id=`)."""
        order_id = request.args.get("order_id", type=db_id)
        if order_id is None and request.args.get("order_id"):
            abort(404)  # no such order (not an id, or beyond the database's range)
        if order_id is not None:
            rows = disputes.order_disputes(order_id)
            if len(rows) == 1:
                return redirect(url_for(".dispute", dispute_id=rows[0].id), code=303)
        return self.render("admin/disputes.html", open_disputes=disputes.open_disputes(100))

    def _render(self, dispute_id: int, form: DisputeEvidenceForm | None = None, status: int = 200) -> Any:
        row = db.session.get(Dispute, dispute_id)
        if row is None:
            abort(404)
        order = db.session.get(Order, row.order_id)
        if form is None:
            form = DisputeEvidenceForm(
                formdata=None, data={**disputes.prefill_evidence(row), "version": row.evidence_version}
            )
        page = self.render(
            "admin/dispute.html",
            dispute=row,
            order=order,
            form=form,
            amount=format_money(row.amount_cents, row.currency),
            due=local_time(row.due_by),
            money=lambda cents: format_money(cents, row.currency),
            editable=row.awaits_evidence,  # Stripe takes evidence once
            confirm=False,
        )
        return page, status

    @expose("/<int:dispute_id>/", methods=("GET", "POST"))
    def dispute(self, dispute_id: int) -> Any:
        """The evidence form; "Save draft" stages it, "Submit evidence" asks for a confirmation, then sends."""
        if request.method == "GET":
            return self._render(dispute_id)
        form = DisputeEvidenceForm()
        if not form.validate():
            return self._render(dispute_id, form, 400)
        submit = bool(form.submit_evidence.data)
        if submit and request.form.get("confirm") != "yes":
            row = db.session.get(Dispute, dispute_id)
            if row is None:
                abort(404)
            return self.render(
                "admin/dispute.html",
                dispute=row,
                order=db.session.get(Order, row.order_id),
                form=form,
                amount=format_money(row.amount_cents, row.currency),
                due=local_time(row.due_by),
                money=lambda cents: format_money(cents, row.currency),
                editable=row.awaits_evidence,  # Stripe takes evidence once
                confirm=True,
            )
        evidence = {name: str(getattr(form, name).data or "") for name in disputes.EVIDENCE_FIELDS}
        try:
            disputes.send_evidence(
                dispute_id, evidence, submit=submit, version=int(form.version.data), actor=f"staff {current_user.email}"
            )
        except disputes.DisputeError as error:
            flash(str(error), "error")
            return self._render(dispute_id, form, error.status)
        flash("Evidence submitted to Stripe." if submit else "Draft saved at Stripe (not submitted).", "success")
        return redirect(url_for(".dispute", dispute_id=dispute_id), code=303)
