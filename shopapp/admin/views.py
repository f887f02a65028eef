"""Staff-only admin views. Presentation only: rules live in the services."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import typefmt
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import joinedload, lazyload
from werkzeug.wrappers import Response
from wtforms import DecimalField, IntegerField, SubmitField
from wtforms.validators import InputRequired, NumberRange, Optional

from shopapp.admin.forms import RefundForm, StaffForm
from shopapp.models import Order, OrderStatus, PaymentEvent, User
from shopapp.security import safe_redirect_target
from shopapp.services import refunds, staff, stock
from shopapp.services.catalog import format_money
from shopapp.services.ids import parse_ascii_int


class StaffOnly:
    """Only logged-in staff get in; anonymous visitors go to log-in, others get 403."""

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.is_staff)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        if not current_user.is_authenticated:
            flash("Please log in with a staff account to continue.", "info")
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    # Flask-Admin's views read their return address from the `url` parameter (query or form) through a
    # module-level helper that no view method wraps, so the check sits in the hook that runs before every
    # exposed view. Its own is_safe_url let "http:/evil.com" through (it rewrites, then judges the rewrite).
    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        denied = super()._handle_view(name, **kwargs)  # type: ignore[misc]
        if denied is not None:
            return denied
        targets = request.args.getlist("url") + (request.form.getlist("url") if request.method == "POST" else [])
        if all(safe_redirect_target(target) for target in targets):
            return None
        if request.method == "POST":
            abort(400)  # an unsafe return address on a change: change nothing
        # The same page without the unsafe parameter: the view then falls back to its own list.
        args = {**request.args.to_dict(flat=False), **(request.view_args or {})}
        args.pop("url", None)
        return redirect(url_for(request.endpoint or ".index_view", **args))


class StaffIndexView(StaffOnly, AdminIndexView):
    """The admin landing page: today's and the week's figures, and what needs attention."""

    @expose("/")
    def index(self) -> str:
        return self.render("admin/index.html", dashboard=staff.dashboard(), money=format_money)


def _yes_no(view: Any, value: Any, name: str) -> str:
    # Flask-Admin shows True as a bare icon and False as nothing: a link or cell without a name for screen readers.
    return "Yes" if value else "No"


class StaffModelView(StaffOnly, ModelView):
    """Base for every model view: CSRF on all forms (create, edit, delete, actions), staff only.

    No column_editable_list: Flask-Admin's in-line (x-editable) editing replaces values by unlabelled icons
    and popovers that screen readers cannot name; staff edit on the record's own form instead.
    """

    # A Flask-WTF form, not Flask-Admin's SecureForm: the site-wide CSRFProtect checks every POST for a
    # Flask-WTF token and refused SecureForm's own (every staff save failed with CSRF on). One token for all.
    form_base_class = StaffForm
    column_type_formatters = {**typefmt.BASE_FORMATTERS, bool: _yes_no}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, bool: _yes_no}
    page_size = 50
    can_set_page_size = True


def _money(view: Any, context: Any, model: Any, name: str) -> str:
    cents = getattr(model, name)
    return format_money(cents, model.currency) if cents is not None else ""


class RestockForm(StaffForm):
    """Add units to a limited product."""

    add = IntegerField(
        "Units to add", validators=[InputRequired(), NumberRange(min=1, max=stock.MAX_STOCK_CHANGE)]
    )
    restock = SubmitField("Restock")


class OnHandForm(StaffForm):
    """Set the counted units on hand (available + held); empty means unlimited."""

    on_hand = IntegerField(
        "Units on hand", validators=[Optional(), NumberRange(min=0, max=stock.MAX_STOCK_CHANGE)]
    )
    set_on_hand = SubmitField("Set units on hand")


def _stock(view: Any, context: Any, model: Any, name: str) -> Markup:
    shown = "unlimited" if model.stock is None else str(model.stock)
    link = url_for("products.stock_view", id=model.id)
    return Markup('{} <a href="{}" class="ml-2">manage stock</a>').format(shown, link)


class ProductView(StaffModelView):
    """Products: create, edit, deactivate (no delete: past orders point at them); stock changes via its page."""

    can_delete = False
    column_list = ("name", "price_cents", "currency", "active", "display_order", "stock", "reserved")
    column_labels = {
        "price_cents": "Price",
        "display_order": "Order",
        "stock": "Available",
        "reserved": "Held by open checkouts",
    }
    column_formatters = {"price_cents": _money, "stock": _stock}
    column_default_sort = ("display_order", False)
    form_columns = ("name", "description", "price", "currency", "active", "display_order", "stock")
    form_extra_fields = {
        "price": DecimalField(
            "Price",
            places=2,
            validators=[InputRequired(), NumberRange(min=0, max=999999.99)],
            description="In the product's currency, e.g. 19.99",
        )
    }
    form_args = {"stock": {"description": "Units available; leave empty for unlimited."}}

    def edit_form(self, obj: Any = None) -> Any:
        # Saving the edit form would write back the stock it was loaded with, undoing every unit
        # shoppers reserved meanwhile: stock changes only through the atomic actions on the stock page.
        form = super().edit_form(obj)
        del form.stock
        return form

    @expose("/stock/<int:id>", methods=("GET", "POST"))
    def stock_view(self, id: int) -> Any:
        """Show a product's counts and take one staff stock change (restock +N, or units on hand)."""
        product = stock.get_product(id)
        if product is None:
            abort(404)
        formdata = request.form if request.method == "POST" else None
        restock_form = RestockForm(formdata, prefix="restock")
        on_hand_form = OnHandForm(formdata, prefix="count")
        status = 200
        if request.method == "POST":
            try:
                if restock_form.restock.data and restock_form.validate():
                    level = stock.restock(id, restock_form.add.data)
                elif on_hand_form.set_on_hand.data and on_hand_form.validate():
                    level = stock.set_on_hand(id, on_hand_form.on_hand.data)
                else:
                    level = None
                    status = 400
            except stock.StockError as error:
                flash(str(error), "error")
                level, status = None, 400
            if level is not None:
                available = "unlimited" if level.stock is None else level.stock
                flash(f"{level.name}: {available} available, {level.reserved} held by open checkouts.", "success")
                return redirect(url_for(".stock_view", id=id))
            product = stock.get_product(id)
        body = self.render(
            "admin/product_stock.html", product=product, restock_form=restock_form, on_hand_form=on_hand_form
        )
        return body, status


class _UTCInput:
    """Read the dates staff type as UTC: our UTCDateTime columns refuse naive datetimes."""

    def clean(self, value: str) -> Any:
        cleaned = super().clean(value)  # type: ignore[misc]
        if isinstance(cleaned, list):
            return [moment.replace(tzinfo=UTC) for moment in cleaned]
        return cleaned.replace(tzinfo=UTC)


class UTCBetweenFilter(_UTCInput, sqla_filters.DateTimeBetweenFilter):
    """Between two UTC date-times."""


class UTCAfterFilter(_UTCInput, sqla_filters.DateTimeGreaterFilter):
    """After a UTC date-time."""


class UTCBeforeFilter(_UTCInput, sqla_filters.DateTimeSmallerFilter):
    """Before a UTC date-time."""


def _date_filters(column: Any, label: str) -> list[Any]:
    # Our UTCDateTime type is not one Flask-Admin recognises by name, so the filters are spelled out.
    return [UTCBetweenFilter(column, label), UTCAfterFilter(column, label), UTCBeforeFilter(column, label)]


class StatusEqualFilter(sqla_filters.FilterEqual):
    """Status filter by value (?flt0_status_equals=paid); Flask-Admin's enum filter wants member names and
    answers an unknown one with a 500."""

    def clean(self, value: str) -> OrderStatus:
        return OrderStatus(value)  # ValueError marks the filter invalid, so it is ignored


def _status(view: Any, context: Any, model: Any, name: str) -> str:
    return model.status.label


def _cents_plain(view: Any, context: Any, model: Any, name: str) -> str:
    cents = getattr(model, name)
    return f"{cents / 100:.2f}" if cents is not None else ""


def _iso_time(view: Any, context: Any, model: Any, name: str) -> str:
    moment = getattr(model, name)
    return moment.isoformat(timespec="seconds") if moment is not None else ""


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
        "user.email": "Shopper",
        "total_cents": "Total",
        "refunded_cents": "Refunded",
        "stripe_session_id": "Checkout Session",
        "stripe_payment_intent_id": "Payment intent",
    }
    column_formatters = {"total_cents": _money, "refunded_cents": _money, "status": _status}
    column_filters = (
        StatusEqualFilter(Order.status, "Status", options=[(s.value, s.label) for s in OrderStatus]),
        "needs_review",
        "currency",
        *_date_filters(Order.created_at, "Created"),
        *_date_filters(Order.paid_at, "Paid"),
    )
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

    def get_query(self) -> Any:
        # The shopper's email is on every row: load it in the same query, not one per row; the list
        # shows no items, so skip the selectin load of every listed order's lines.
        return super().get_query().options(joinedload(Order.user), lazyload(Order.items))

    def get_export_name(self, export_type: str = "csv") -> str:
        return f"orders.{export_type}"

    def _render_detail(self, order_id: int, form: RefundForm | None = None, status: int = 200) -> Any:
        detail = staff.order_detail(order_id)
        if detail is None:
            abort(404)
        if form is None:
            form = RefundForm(
                formdata=None,
                amount=Decimal(detail.refundable_cents) / 100 if detail.refundable_cents else None,
                sequence=detail.next_refund_sequence,
            )
        page = self.render(
            self.details_template,
            detail=detail,
            order=detail.order,
            form=form,
            money=format_money,
            return_url=self.get_url(".index_view"),
        )
        return page, status

    @expose("/details/")
    def details_view(self) -> Any:
        """The order page: items, totals, Stripe ids, review flag, timeline, refunds and the refund form."""
        order_id = request.args.get("id", type=int)
        if order_id is None:
            abort(404)
        return self._render_detail(order_id)

    @expose("/<int:order_id>/refund/", methods=("POST",))
    def refund_view(self, order_id: int) -> Any:
        """Ask Stripe for a refund; the order changes when Stripe's refund events arrive."""
        form = RefundForm()
        if not form.validate():
            return self._render_detail(order_id, form, 400)
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

    def get_one(self, id: Any) -> Any:
        try:
            order_id = int(id)
        except (TypeError, ValueError):
            return None  # Flask-Admin answers "Record does not exist" and returns to the list
        return self.get_query().filter(Order.id == order_id).one_or_none()


class PaymentEventView(StaffModelView):
    """Every webhook received, read-only."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_list = (
        "stripe_event_id",
        "type",
        "order_id",
        "received_at",
        "signature_valid",
        "processed_at",
        "outcome",
        "error",
    )
    column_filters = ("type", "outcome", "signature_valid", *_date_filters(PaymentEvent.received_at, "Received"))
    column_searchable_list = ("stripe_event_id", "type")
    column_default_sort = ("id", True)
    column_labels = {"stripe_event_id": "Event id", "order_id": "Order"}
    named_filter_urls = True

    @action("reprocess", "Reprocess", "Run the selected events again? Events already applied are left as they are.")
    def action_reprocess(self, ids: list[str]) -> None:
        """Re-run the selected stored events through the same handlers as the webhook."""
        event_ids = [parse_ascii_int(i, max_digits=11) for i in ids]
        if not ids or None in event_ids:
            flash("Choose the events to reprocess.", "error")
            return
        summary = staff.reprocess_payment_events([i for i in event_ids if i is not None])
        flash(summary.line(), "error" if summary.problems else "success")


class UserView(StaffModelView):
    """Users: list and toggle staff; password hashes and session tokens are never shown."""

    can_create = False
    can_delete = False
    column_list = ("email", "is_staff", "created_at")
    column_details_exclude_list = ("password_hash", "session_token")
    column_searchable_list = ("email",)
    column_filters = ("is_staff", *_date_filters(User.created_at, "Created"))
    form_columns = ("is_staff",)
