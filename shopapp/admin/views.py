"""Staff-only admin views. Presentation only: rules live in the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, request, stream_with_context, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import typefmt
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import joinedload, lazyload
from werkzeug.wrappers import Response
from wtforms import IntegerField, SubmitField
from wtforms.validators import InputRequired, NumberRange, Optional

from shopapp import currencies
from shopapp.admin.forms import PictureForm, ProductForm, RefundForm, ShipForm, StaffForm, UserStaffForm
from shopapp.models import EventOutcome, Order, OrderStatus, PaymentEvent, User
from shopapp.security import body_limit, safe_redirect_target
from shopapp.services import exports, outbox, pictures, products, refunds, shipping, staff, stock
from shopapp.services.catalog import format_money
from shopapp.services.ids import parse_ascii_int
from shopapp.services.staff import order_search_condition
from shopapp.templating import local_time


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


@dataclass(frozen=True)
class ChartBar:
    """One day's bar in SVG user units (y grows downwards), with its label for tooltips and the table."""

    x: float
    y: float
    width: float
    height: float
    negative: bool
    label: str


@dataclass(frozen=True)
class RevenueChart:
    """A server-drawn bar chart of net revenue per day: plain SVG attributes, no script or inline style (CSP)."""

    currency: str
    width: int
    height: int
    baseline: float
    bars: list[ChartBar]
    ticks: list[tuple[float, str]]  # x position, day label
    top_label: str
    bottom_label: str
    total: str
    days: list[staff.DayRevenue]


CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 640, 220, 72, 12, 28


def revenue_chart(currency: str, days: list[staff.DayRevenue]) -> RevenueChart:
    """Lay out one currency's daily net revenue as bars scaled between the lowest (or 0) and highest value."""
    values = [d.net for d in days]
    high, low = max(0, *values), min(0, *values)
    span = (high - low) or 1
    plot_width = CHART_WIDTH - CHART_LEFT - 8
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    step = plot_width / max(1, len(days))

    def y(value: int) -> float:
        return round(CHART_TOP + (high - value) / span * plot_height, 1)

    bars = []
    for n, d in enumerate(days):
        top, bottom = sorted((y(d.net), y(0)))
        bars.append(ChartBar(
            x=round(CHART_LEFT + n * step + step * 0.15, 1), y=top, width=round(step * 0.7, 1),
            height=max(round(bottom - top, 1), 0.5 if d.net else 0), negative=d.net < 0,
            label=f"{d.day.isoformat()}: {format_money(d.net, currency)} net "
                  f"({format_money(d.paid, currency)} paid, {format_money(d.refunded, currency)} refunded)",
        ))  # fmt: skip
    # A label every 7 days counted back from today, so the last bar is always labelled and none collide.
    ticks = [(round(CHART_LEFT + n * step + step / 2, 1), d.day.strftime("%b %d")) for n, d in enumerate(days)
             if (len(days) - 1 - n) % 7 == 0]  # fmt: skip
    return RevenueChart(
        currency=currency, width=CHART_WIDTH, height=CHART_HEIGHT, baseline=y(0), bars=bars, ticks=ticks,
        top_label=format_money(high, currency), bottom_label=format_money(low, currency),
        total=format_money(sum(values), currency), days=days,
    )  # fmt: skip


class StaffIndexView(StaffOnly, AdminIndexView):
    """The admin landing page: the owner's dashboard (figures, 30-day revenue chart, what needs attention)."""

    @expose("/")
    def index(self) -> str:
        dashboard = staff.dashboard()
        charts = [revenue_chart(currency, days) for currency, days in dashboard.revenue_by_day.items()]
        return self.render(
            "admin/index.html", dashboard=dashboard, charts=charts, money=format_money, statuses=list(OrderStatus)
        )


def _yes_no(view: Any, value: Any, name: str) -> str:
    # Flask-Admin shows True as a bare icon and False as nothing: a link or cell without a name for screen readers.
    return "Yes" if value else "No"


def _local_time(view: Any, value: Any, name: str = "") -> str:
    # Lists show the shop's local time to the minute (config SHOP_TIMEZONE), not ISO with microseconds.
    return local_time(value)


class StaffModelView(StaffOnly, ModelView):
    """Base for every model view: CSRF on all forms (create, edit, delete, actions), staff only.

    No column_editable_list: Flask-Admin's in-line (x-editable) editing replaces values by unlabelled icons
    and popovers that screen readers cannot name; staff edit on the record's own form instead.
    """

    # A Flask-WTF form, not Flask-Admin's SecureForm: the site-wide CSRFProtect checks every POST for a
    # Flask-WTF token and refused SecureForm's own (every staff save failed with CSRF on). One token for all.
    form_base_class = StaffForm
    column_type_formatters = {**typefmt.BASE_FORMATTERS, bool: _yes_no, datetime: _local_time}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, bool: _yes_no, datetime: _local_time}
    page_size = 50
    can_set_page_size = True


def csv_download(kind: str, **selection: Any) -> Response:
    """Stream one of the formula-safe CSV exports (services.exports) as an attachment."""
    return Response(
        stream_with_context(exports.export_csv(kind, **selection)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={kind}.csv"},
    )


def _bad_input_is_400(response: Any) -> Any:
    """A POST that re-renders its form (instead of redirecting) was refused: answer 400, not 200."""
    if request.method == "POST" and isinstance(response, str):
        return response, 400
    return response


def _money(view: Any, context: Any, model: Any, name: str) -> str:
    cents = getattr(model, name)
    return format_money(cents, model.currency) if cents is not None else ""


class RestockForm(StaffForm):
    """Add units to a limited product."""

    add = IntegerField("Units to add", validators=[InputRequired(), NumberRange(min=1, max=stock.MAX_STOCK_CHANGE)])
    restock = SubmitField("Restock")


class OnHandForm(StaffForm):
    """Set the counted units on hand (available + held); empty means unlimited."""

    on_hand = IntegerField("Units on hand", validators=[Optional(), NumberRange(min=0, max=stock.MAX_STOCK_CHANGE)])
    set_on_hand = SubmitField("Set units on hand")


def _stock(view: Any, context: Any, model: Any, name: str) -> Markup:
    shown = "unlimited" if model.stock is None else str(model.stock)
    link = url_for("products.stock_view", id=model.id)
    return Markup('{} <a href="{}" class="ml-2">manage stock</a>').format(shown, link)


class ProductView(StaffModelView):
    """Products: create, edit, deactivate (no delete: past orders point at them); stock changes via its page.

    Every save goes through shopapp.services.products (Stripe's price rules, one transaction, audit trail).
    """

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
    form = ProductForm
    edit_template = "admin/product_edit.html"

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)
        if request.method == "GET":
            form.currency.data = current_app.config["DEFAULT_CURRENCY"]  # the setting "currency for new products"
        return form

    def edit_form(self, obj: Any = None) -> Any:
        # Saving the edit form would write back the stock it was loaded with, undoing every unit
        # shoppers reserved meanwhile: stock changes only through the atomic actions on the stock page.
        form = super().edit_form(obj)
        del form.stock
        return form

    def _product_input(self, form: Any) -> products.ProductInput:
        return products.ProductInput(
            name=form.name.data or "",
            price=form.price.data,
            currency=form.currency.data or "",
            description=form.description.data or "",
            active=bool(form.active.data),
            display_order=form.display_order.data or 0,
            low_stock_threshold=form.low_stock_threshold.data,
            image_alt=form.image_alt.data or "",
            stock=form.stock.data if getattr(form, "stock", None) is not None else None,
        )

    def _refused(self, form: Any, error: products.ProductInputError) -> bool:
        for name, message in error.errors.items():
            field = getattr(form, name, None)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                flash(message, "error")
        return False

    def create_model(self, form: Any) -> Any:
        try:
            return products.create_product(self._product_input(form), actor=f"staff {current_user.email}")
        except products.ProductInputError as error:
            return self._refused(form, error)

    def update_model(self, form: Any, model: Any) -> bool:
        try:
            products.update_product(model.id, self._product_input(form), actor=f"staff {current_user.email}")
        except products.ProductInputError as error:
            return self._refused(form, error)
        except LookupError:
            flash("This product no longer exists.", "error")
            return False
        return True

    def delete_model(self, model: Any) -> bool:
        return False  # never: past orders point at products (can_delete is off; this closes the door)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self) -> Any:
        """Flask-Admin's create page; a refused save answers 400 with the messages beside the fields."""
        return _bad_input_is_400(super().create_view())

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Flask-Admin's edit page with the product's change history; a refused save answers 400."""
        return _bad_input_is_400(super().edit_view())

    @expose("/picture/<int:id>", methods=("GET", "POST"))
    @body_limit("PICTURE_UPLOAD_MAX_BYTES")
    def picture_view(self, id: int) -> Any:
        """Upload, replace or remove a product's picture (verified and re-encoded by the pictures service)."""
        product = stock.get_product(id)
        if product is None:
            abort(404)
        form = PictureForm(request.form if request.method == "POST" else None, data={"alt": product.image_alt})
        status = 200
        if request.method == "POST":
            actor = f"staff {current_user.email}"
            config = current_app.config
            try:
                if not form.validate():
                    status = 400
                elif form.remove.data:
                    pictures.remove_picture(id, actor=actor)
                    flash(f"Picture removed from {product.name}.", "success")
                    return redirect(url_for(".picture_view", id=id), code=303)
                else:
                    upload = request.files.get("picture")
                    pictures.store_picture(
                        id,
                        upload.read(config["PICTURE_MAX_BYTES"] + 1) if upload else b"",
                        folder=Path(config["UPLOAD_FOLDER"]),
                        max_bytes=config["PICTURE_MAX_BYTES"],
                        max_pixels=config["PICTURE_MAX_PIXELS"],
                        actor=actor,
                        alt=form.alt.data or "",
                    )
                    flash(f"Picture saved for {product.name}.", "success")
                    return redirect(url_for(".picture_view", id=id), code=303)
            except pictures.PictureError as error:
                form.picture.errors = [*form.picture.errors, str(error)]
                status = 400
            except pictures.PictureStorageError as error:  # disk full: an outage, said beside the field
                form.picture.errors = [*form.picture.errors, str(error)]
                status = 503
            except products.ProductInputError as error:
                form.alt.errors = [*form.alt.errors, *error.errors.values()]
                status = 400
            except LookupError:
                abort(404)
        return self.render("admin/product_picture.html", product=product, form=form), status

    picture_view.too_large_message = lambda config: (  # type: ignore[attr-defined]
        f"The picture is larger than {config['PICTURE_MAX_BYTES'] // (1024 * 1024)} MB; choose a smaller file."
    )

    def render(self, template: str, **kwargs: Any) -> Any:
        model = kwargs.get("model")
        if template == self.edit_template and model is not None:
            kwargs["history"] = products.history(model.id)
        return super().render(template, **kwargs)

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
                    level = stock.restock(id, restock_form.add.data, actor=f"staff {current_user.email}")
                elif on_hand_form.set_on_hand.data and on_hand_form.validate():
                    level = stock.set_on_hand(id, on_hand_form.on_hand.data, actor=f"staff {current_user.email}")
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


class OutcomeEqualFilter(sqla_filters.FilterEqual):
    """Stored-event outcome filter by value (?flt0_outcome_equals=failed), for the same reason as StatusEqualFilter."""

    def clean(self, value: str) -> EventOutcome:
        return EventOutcome(value)  # ValueError marks the filter invalid, so it is ignored


class ShippedFilter(sqla_filters.BaseSQLAFilter):
    """Shipped or not yet (?flt0_shipped_equals=1 / 0)."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(Order.shipped_at.is_not(None) if value == "1" else Order.shipped_at.is_(None))

    def operation(self) -> str:
        return "equals"


def _order_link(view: Any, context: Any, model: Any, name: str) -> Markup | str:
    if model.order_id is None:
        return ""
    link = url_for("orders.details_view", id=model.order_id)
    return Markup('<a href="{}">Order #{}</a>').format(link, model.order_id)


def _status(view: Any, context: Any, model: Any, name: str) -> str:
    return model.status.label


def _cents_plain(view: Any, context: Any, model: Any, name: str) -> str:
    # In the order's currency: 7997 USD -> "79.97", 1500 JPY -> "1500" (its minor units, shopapp.currencies).
    cents = getattr(model, name)
    return str(currencies.to_major(cents, model.currency)) if cents is not None else ""


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
        "id": "Order",
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

    def get_query(self) -> Any:
        # The shopper's email is on every row: load it in the same query, not one per row; the list
        # shows no items, so skip the selectin load of every listed order's lines.
        return super().get_query().options(joinedload(Order.user), lazyload(Order.items))

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
            shippable=detail.order.status in shipping.SHIPPABLE and detail.order.shipped_at is None,
            money=format_money,
            return_url=self.get_url(".index_view"),
            emails=outbox.messages_for_order(order_id),
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
        done, refused = [], []
        for order_id in [i for i in order_ids if i is not None]:
            try:
                shipping.mark_shipped(order_id, actor=f"staff {current_user.email}")
                done.append(order_id)
            except (shipping.ShippingError, LookupError):
                refused.append(order_id)
        message = f"Marked {len(done)} order(s) shipped."
        if refused:
            message += " Not paid, so not shipped: " + ", ".join(f"#{i}" for i in refused) + "."
        flash(message, "error" if refused else "success")

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
        confirmation = self._full_refund_confirmation(order_id, form)
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

    def _full_refund_confirmation(self, order_id: int, form: RefundForm) -> Any:
        """A full refund is sent only from its confirmation step (amount and shopper shown); None otherwise."""
        if request.form.get("confirm") == "yes":
            return None
        detail = staff.order_detail(order_id)
        if detail is None:
            abort(404)
        try:
            amount = currencies.parse_amount(form.amount.data, detail.order.currency)
        except currencies.AmountError:
            return None  # the refund service explains what is wrong with the amount
        if detail.refundable_cents <= 0 or amount != detail.refundable_cents:
            return None
        page = self.render(
            "admin/refund_confirm.html",
            detail=detail,
            order=detail.order,
            form=form,
            amount_cents=amount,
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
    # Fits 1280 px: when it was processed and whether the signature held are on the event's own page.
    column_list = ("stripe_event_id", "type", "order_id", "received_at", "outcome", "error")
    column_filters = (
        "type",
        OutcomeEqualFilter(PaymentEvent.outcome, "Outcome", options=[(o.value, o.value) for o in EventOutcome]),
        "signature_valid",
        *_date_filters(PaymentEvent.received_at, "Received"),
    )
    column_searchable_list = ("stripe_event_id", "type")
    column_default_sort = ("id", True)
    column_labels = {"stripe_event_id": "Event id", "order_id": "Order"}
    # The outcome as the Outcome filter and events.csv name it ("no-op"), not the enum's Python name ("NO_OP").
    column_formatters = {"order_id": _order_link, "outcome": lambda v, c, m, n: m.outcome.value if m.outcome else ""}
    named_filter_urls = True
    can_export = True
    export_types = ["csv"]

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """Every webhook received as a formula-safe CSV (services.exports)."""
        return csv_download("events")

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
    """Users: list and toggle staff; password hashes and session tokens are never shown.

    The one write (the staff flag) goes through shopapp.services.staff.set_staff, in one transaction.
    """

    can_create = False
    can_delete = False
    column_list = ("email", "is_staff", "created_at")
    column_details_exclude_list = ("password_hash", "session_token")
    column_searchable_list = ("email",)
    column_filters = ("is_staff", *_date_filters(User.created_at, "Created"))
    form = UserStaffForm
    edit_template = "admin/user_edit.html"
    can_export = True
    export_types = ["csv"]

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """Every account as a formula-safe CSV (services.exports); never hashes or tokens."""
        return csv_download("users")

    def update_model(self, form: Any, model: Any) -> bool:
        try:
            staff.set_staff(model.id, bool(form.is_staff.data), actor_id=current_user.id)
        except staff.StaffChangeError as error:
            form.is_staff.errors = [*form.is_staff.errors, str(error)]
            return False
        return True

    def create_model(self, form: Any) -> Any:
        return False  # accounts are made by signing up (can_create is off)

    def delete_model(self, model: Any) -> bool:
        return False

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Flask-Admin's edit page, headed with whose account it is; a refused change answers 400."""
        return _bad_input_is_400(super().edit_view())


class ExportView(StaffOnly, BaseView):
    """All staff exports on one page: orders (with items and addresses), items, payment events, users."""

    @expose("/")
    def index(self) -> str:
        """Links to each CSV."""
        return self.render("admin/exports.html", kinds=exports.KINDS)

    @expose("/<kind>.csv")
    def download(self, kind: str) -> Any:
        """One export as CSV; 404 for an unknown kind."""
        if kind not in exports.KINDS:
            abort(404)
        return csv_download(kind)
