"""Staff-only admin views. Presentation only: rules live in the services."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.form import SecureForm
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import joinedload, lazyload
from werkzeug.wrappers import Response
from wtforms import DecimalField
from wtforms.validators import InputRequired, NumberRange

from shopapp.models import Order, OrderStatus, PaymentEvent, User
from shopapp.services.catalog import format_money


class StaffOnly:
    """Only logged-in staff get in; anonymous visitors go to log-in, others get 403."""

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.is_staff)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


class StaffIndexView(StaffOnly, AdminIndexView):
    """The admin landing page."""

    @expose("/")
    def index(self) -> str:
        return self.render("admin/index.html")


class StaffModelView(StaffOnly, ModelView):
    """Base for every model view: CSRF on all forms, staff only."""

    form_base_class = SecureForm
    page_size = 50
    can_set_page_size = True


def _money(view: Any, context: Any, model: Any, name: str) -> str:
    cents = getattr(model, name)
    return format_money(cents, model.currency) if cents is not None else ""


class ProductView(StaffModelView):
    """Products: create, edit, deactivate (no delete: past orders point at them)."""

    can_delete = False
    column_list = ("name", "price_cents", "currency", "active", "display_order", "stock", "reserved")
    column_labels = {"price_cents": "Price", "display_order": "Order"}
    column_formatters = {"price_cents": _money}
    column_default_sort = ("display_order", False)
    column_editable_list = ("active",)
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


def _date_filters(column: Any, label: str) -> list[Any]:
    # Our UTCDateTime type is not one Flask-Admin recognises by name, so the filters are spelled out.
    return [
        sqla_filters.DateTimeBetweenFilter(column, label),
        sqla_filters.DateTimeGreaterFilter(column, label),
        sqla_filters.DateTimeSmallerFilter(column, label),
    ]


def _status(view: Any, context: Any, model: Any, name: str) -> str:
    return model.status.label


def _items(view: Any, context: Any, model: Any, name: str) -> Markup:
    rows = "".join(
        Markup("<li>{} x {} at {}</li>").format(
            item.quantity, item.product_name, format_money(item.unit_price_cents, model.currency)
        )
        for item in model.items
    )
    return Markup("<ul>{}</ul>").format(Markup(rows))


class OrderView(StaffModelView):
    """Orders: read-only lists with filters and search; status and amounts are never edited by hand."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
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
    column_labels = {"user.email": "Shopper", "total_cents": "Total", "refunded_cents": "Refunded"}
    column_formatters = {"total_cents": _money, "refunded_cents": _money, "status": _status}
    column_filters = (
        "status",
        "needs_review",
        "currency",
        *_date_filters(Order.created_at, "Created"),
        *_date_filters(Order.paid_at, "Paid"),
    )
    column_searchable_list = ("user.email", "stripe_session_id", "stripe_payment_intent_id")
    column_default_sort = ("id", True)
    column_details_list = (
        "id",
        "user.email",
        "status",
        "total_cents",
        "currency",
        "refunded_cents",
        "items",
        "stripe_session_id",
        "stripe_payment_intent_id",
        "checkout_attempt",
        "needs_review",
        "review_reason",
        "created_at",
        "paid_at",
        "updated_at",
    )
    column_formatters_detail = {"total_cents": _money, "refunded_cents": _money, "status": _status, "items": _items}
    column_choices = {"status": [(s.value, s.label) for s in OrderStatus]}

    def get_query(self) -> Any:
        # The list shows each shopper's email (Order.user is raise_on_sql: load it in the same query)
        # and no items (skip the selectin load of every listed order's lines).
        return super().get_query().options(joinedload(Order.user), lazyload(Order.items))


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
    column_filters = ("type", "outcome", *_date_filters(PaymentEvent.received_at, "Received"))
    column_searchable_list = ("stripe_event_id", "type")
    column_default_sort = ("id", True)


class UserView(StaffModelView):
    """Users: list and toggle staff; password hashes and session tokens are never shown."""

    can_create = False
    can_delete = False
    column_list = ("email", "is_staff", "created_at")
    column_details_exclude_list = ("password_hash", "session_token")
    column_searchable_list = ("email",)
    column_filters = ("is_staff", *_date_filters(User.created_at, "Created"))
    column_editable_list = ("is_staff",)
    form_columns = ("is_staff",)
