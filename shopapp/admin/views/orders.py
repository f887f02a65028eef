"""Orders: the list (filters, search, export), the order page, refunds and shipping."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy.orm import joinedload, lazyload

from shopapp import currencies
from shopapp.admin.forms import RefundForm, ShipForm
from shopapp.admin.views.base import (
    StaffModelView,
    csv_download,
    date_filters,
    money_column,
)
from shopapp.models import Order, OrderStatus
from shopapp.services import disputes, outbox, refunds, shipping, staff
from shopapp.services.catalog import format_money
from shopapp.services.ids import db_id, parse_ascii_int
from shopapp.services.staff import order_search_condition
from shopapp.templating import local_time


class StatusEqualFilter(sqla_filters.FilterEqual):
    """Status filter by value (?flt0_status_equals=paid); Flask-Admin's enum filter wants member names and
    answers an unknown one with a 500."""

    def clean(self, value: str) -> OrderStatus:
        return OrderStatus(value)  # ValueError marks the filter invalid, so it is ignored


class ShippedFilter(sqla_filters.BaseSQLAFilter):
    """Shipped or not yet (?flt0_shipped_equals=1 / 0)."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(Order.shipped_at.is_not(None) if value == "1" else Order.shipped_at.is_(None))

    def operation(self) -> str:
        return "equals"


def _status(view: Any, context: Any, model: Any, name: str) -> Markup:
    # A badge in the shop's status colours (admin.css), the same wording as the shopper's pages. Built once
    # per status and request (the request's language is fixed): a 50-row list translated and formatted the
    # same few labels fifty times, a tenth of the list's Python calls (issue 25).
    badges: dict[OrderStatus, Markup] = g.setdefault("order_status_badges", {})
    badge = badges.get(model.status)
    if badge is None:
        badge = badges[model.status] = Markup('<span class="status-badge status-{}">{}</span>').format(
            model.status.value, model.status.label
        )
    label = disputes.staff_label(model)
    if label is not None:  # a dispute is the first thing staff must see on the list too
        badge += Markup(' <span class="badge badge-danger dispute-badge">{}</span>').format(label)
    return badge


def _cents_plain(view: Any, context: Any, model: Any, name: str) -> str:
    # In the order's currency: 7997 USD -> "79.97", 1500 JPY -> "1500" (its minor units, shopapp.currencies).
    cents = getattr(model, name)
    return str(currencies.to_major(cents, model.currency)) if cents is not None else ""


def _iso_time(view: Any, context: Any, model: Any, name: str) -> str:
    moment = getattr(model, name)
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def _id_cell(view: Any, context: Any, model: Order, name: str) -> Any:
    return "" if model.id is None else model.id


def _shopper_cell(view: Any, context: Any, model: Order, name: str) -> Any:
    email = model.user.email if model.user is not None else None
    return "" if email is None else email


def _yes_no_cell(view: Any, context: Any, model: Order, name: str) -> str:
    value = model.needs_review
    return "" if value is None else ("Yes" if value else "No")


def _time_cell(view: Any, context: Any, model: Order, name: str) -> str:
    return local_time(getattr(model, name))


# What Flask-Admin's generic path (column formatter, choices, the first matching type formatter of
# StaffModelView.column_type_formatters) makes of each listed column, one function per column; a test compares
# the two on every column.
_LIST_CELLS = {
    "id": _id_cell,
    "user.email": _shopper_cell,
    "status": _status,  # a Markup badge: never a key of the status choices, so shown as it is
    "total_cents": money_column,
    "refunded_cents": money_column,
    "needs_review": _yes_no_cell,
    "created_at": _time_cell,
    "paid_at": _time_cell,
}


class OrderView(StaffModelView):
    """Orders: read-only lists with filters, search and CSV export; refunds from the order page."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = True
    export_types = ["csv"]
    # Readable filter URLs (flt0_status_equals=paid), which the dashboard links to.
    named_filter_urls = True
    details_template = "admin/order_details.html"
    column_list = (
        "id",
        "user.email",
        "status",
        "total_cents",
        "refunded_cents",
        "needs_review",
        "created_at",
        "paid_at",
    )
    column_labels = {
        "id": "Order",
        "user.email": "Shopper",
        "total_cents": "Total",
        "refunded_cents": "Refunded",
        "stripe_session_id": "Checkout Session",
        "stripe_payment_intent_id": "Payment intent",
    }
    column_formatters = {"total_cents": money_column, "refunded_cents": money_column, "status": _status}
    column_filters = (
        StatusEqualFilter(Order.status, "Status", options=[(s.value, s.label) for s in OrderStatus]),
        "needs_review",
        "currency",
        *date_filters(Order.created_at, "Created"),
        *date_filters(Order.paid_at, "Paid"),
        ShippedFilter(Order.shipped_at, "Shipped", options=[("1", "Yes"), ("0", "No")]),
    )
    # Searched by order_search_condition (see _apply_search); listed so Flask-Admin shows the box.
    column_searchable_list = ("user.email", "stripe_session_id", "stripe_payment_intent_id")

    column_default_sort = ("id", True)
    column_export_list = (
        "id",
        "user.email",
        "status",
        "total_cents",
        "refunded_cents",
        "currency",
        "needs_review",
        "review_reason",
        "stripe_session_id",
        "stripe_payment_intent_id",
        "created_at",
        "paid_at",
    )
    column_formatters_export = {
        "total_cents": _cents_plain,
        "refunded_cents": _cents_plain,
        "created_at": _iso_time,
        "paid_at": _iso_time,
    }
    column_choices = {"status": [(s.value, s.label) for s in OrderStatus]}

    # No total count: `SELECT count(*)` over every order ran on each view of the list, the one part of it
    # that grew with the shop (+100,000 orders: 1.37x on SQLite, 1.41x on PostgreSQL, issue 25). The pager
    # shows previous/next instead of page numbers; filters and search narrow the list as before.
    simple_list_pager = True

    def get_query(self) -> Any:
        # The shopper's email is on every row: load it in the same query, not one per row; the list
        # shows no items, so skip the selectin load of every listed order's lines. (load_only of the shown
        # columns was tried in issue 25: SQLAlchemy then sets a loader per deferred column per row, more
        # Python work than reading the columns.)
        return super().get_query().options(joinedload(Order.user), lazyload(Order.items))

    @pass_context
    def get_list_value(self, context: Context, model: Any, name: str) -> Any:
        """A list cell: the listed columns through one function each (_LIST_CELLS), the rest as Flask-Admin does.

        The generic path looked up the column's formatter, its choices and then tried each type formatter with
        isinstance, per cell: 400 cells a page, a tenth of the list's Python calls (issue 25).
        """
        cell = _LIST_CELLS.get(name)
        if cell is None:
            return super().get_list_value(context, model, name)
        return cell(self, context, model, name)

    def get_export_name(self, export_type: str = "csv") -> str:
        return f"orders.{export_type}"

    def _render_detail(
        self, order_id: int, form: RefundForm | None = None, status: int = 200, ship_form: ShipForm | None = None
    ) -> Any:
        detail = staff.order_detail(order_id)
        if detail is None:
            abort(404)
        if form is None:
            # Starts empty: staff type the amount, so a slip of the Enter key cannot refund everything.
            form = RefundForm(formdata=None, sequence=detail.next_refund_sequence)
        page = self.render(
            self.details_template,
            detail=detail,
            order=detail.order,
            form=form,
            ship_form=ship_form or ShipForm(formdata=None),
            address=shipping.address_lines(detail.order.shipping_address),
            # Refunds sent to Stripe and not yet settled: shown as pending.
            pending_cents=sum(r.amount_cents for r in detail.refunds if r.status.in_flight),
            shippable=detail.order.shipped_at is None and detail.ship_refusal is None,
            money=format_money,
            return_url=self.get_url(".index_view"),
            emails=outbox.messages_for_order(order_id),
            dispute_label=disputes.staff_label(detail.order),
            order_disputes=disputes.order_disputes(order_id),
            refund_blocked=refunds.dispute_blocks_refund(detail.order),
            fraud_warning=disputes.actionable_warning(order_id),
            refundable_major=currencies.to_major(detail.refundable_cents, detail.order.currency),
        )
        return page, status

    # --- Shipping (staff helper "staff") --------------------------------------------------------------------------

    @expose("/<int:order_id>/ship/", methods=("POST",))
    def ship_view(self, order_id: int) -> Any:
        """Mark a paid order shipped with an optional carrier and tracking number (timeline entry)."""
        form = ShipForm()
        if not form.validate():
            return self._render_detail(order_id, status=400, ship_form=form)
        try:
            result = shipping.mark_shipped(
                order_id,
                carrier=form.carrier.data or "",
                tracking_number=form.tracking_number.data or "",
                actor=f"staff {current_user.email}",
            )
        except shipping.ShippingError as error:
            form.form_errors.append(str(error))
            return self._render_detail(order_id, status=409, ship_form=form)
        except LookupError:
            abort(404)
        if result.repeated:
            flash(f"Order #{order_id} was already marked shipped.", "info")
        else:
            flash(f"Order #{order_id} marked shipped.", "success")
        return redirect(self.get_url(".details_view", id=order_id), code=303)

    @action("ship", "Mark shipped", "Mark the selected paid orders shipped (no carrier or tracking number)?")
    def action_ship(self, ids: list[str]) -> None:
        """Mark each selected paid order shipped; the others are named in the message."""
        order_ids = [parse_ascii_int(i, max_digits=11) for i in ids]
        if not ids or None in order_ids:
            flash("Choose the orders to mark shipped.", "error")
            return
        done: list[int] = []
        refused: dict[str, list[int]] = {}  # the reason (shipping.refusal) -> the orders it names
        for order_id in [i for i in order_ids if i is not None]:
            try:
                shipping.mark_shipped(order_id, actor=f"staff {current_user.email}")
                done.append(order_id)
            except shipping.ShippingError as error:
                refused.setdefault(error.reason, []).append(order_id)
            except LookupError:
                refused.setdefault("No such order.", []).append(order_id)
        message = f"Marked {len(done)} order(s) shipped."
        for reason, refused_ids in refused.items():
            message += " Not shipped: " + ", ".join(f"#{i}" for i in refused_ids) + f" ({reason})"
        flash(message, "error" if refused else "success")

    @expose("/details/")
    def details_view(self) -> Any:
        """The order page: items, totals, Stripe ids, review flag, timeline, refunds and the refund form."""
        order_id = request.args.get("id", type=db_id)
        if order_id is None:
            abort(404)
        return self._render_detail(order_id)

    @expose("/<int:order_id>/refund/", methods=("POST",))
    def refund_view(self, order_id: int) -> Any:
        """Ask Stripe for a refund; the order changes when Stripe's refund events arrive."""
        form = RefundForm()
        if not form.validate():
            return self._render_detail(order_id, form, 400)
        confirmation = self._refund_confirmation(order_id, form)
        if confirmation is not None:
            return confirmation
        try:
            result = refunds.request_refund(
                order_id,
                form.amount.data,
                form.reason.data or "",
                requested_by=f"staff {current_user.email}",
                sequence=int(form.sequence.data),
            )
        except refunds.RefundError as error:
            form.form_errors.append(str(error))
            return self._render_detail(order_id, form, error.status)
        money = format_money(result.amount_cents, result.currency)
        if result.repeated:
            flash(f"That refund of {money} was already sent to Stripe ({result.stripe_refund_id}).", "info")
        else:
            flash(
                f"Refund of {money} sent to Stripe ({result.stripe_refund_id}). "
                "The order is updated when Stripe confirms it.",
                "success",
            )
        return redirect(self.get_url(".details_view", id=order_id), code=303)

    def _refund_confirmation(self, order_id: int, form: RefundForm) -> Any:
        """Every refund is sent only from its confirmation step, which names the amount and the shopper; None
        once confirmed (or when the amount is unusable: the refund service then explains what is wrong)."""
        if request.form.get("confirm") == "yes":
            return None
        detail = staff.order_detail(order_id)
        if detail is None:
            abort(404)
        try:
            amount = currencies.parse_amount(form.amount.data, detail.order.currency)
        except currencies.AmountError:
            return None
        if detail.refundable_cents <= 0 or not 0 < amount <= detail.refundable_cents:
            return None
        if str(form.sequence.data) != str(detail.next_refund_sequence):
            return None  # an out-of-date form: the refund service says so (409)
        page = self.render(
            "admin/refund_confirm.html",
            detail=detail,
            order=detail.order,
            form=form,
            amount_cents=amount,
            everything=amount == detail.refundable_cents,
            money=format_money,
        )
        return page, 200

    # --- Finding orders (staff helper "staff") ------------------------------------------------------------------

    def search_placeholder(self) -> str:
        """What the search box takes."""
        return "Order number (51 or #51), email, cs_… or pi_…"

    def _apply_search(self, query: Any, count_query: Any, joins: Any, count_joins: Any, search: str) -> Any:
        """Search by what staff are told: the order number ("51" or "#51"), the shopper's email (any case,
        whole or part), a Checkout Session id (cs_...) or a PaymentIntent id (pi_...)."""
        condition = order_search_condition(search)
        if condition is None:
            return query, count_query, joins, count_joins
        query = query.filter(condition)
        if count_query is not None:
            count_query = count_query.filter(condition)
        return query, count_query, joins, count_joins

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """The orders CSV (one row per line item, with addresses), formula-safe: see services.exports.

        Exports the orders the list shows with its current filters and search (all pages)."""
        view_args = self._get_list_extra_args()
        _, query = self.get_list(0, None, False, view_args.search, view_args.filters, execute=False, page_size=0)
        order_ids = query.with_entities(Order.id).order_by(None).options().subquery()
        return csv_download("orders", order_ids=order_ids)

    def get_one(self, id: Any) -> Any:
        try:
            order_id = db_id(id)
        except ValueError:
            return None  # Flask-Admin answers "Record does not exist" and returns to the list
        return self.get_query().filter(Order.id == order_id).one_or_none()
