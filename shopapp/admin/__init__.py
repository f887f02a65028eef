"""Flask-Admin for staff: built per app inside the factory."""

from __future__ import annotations

from flask import Flask, request, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from shopapp.admin.views import (
    BrandView,
    DiscountsView,
    DisputeView,
    ExportView,
    OrderView,
    PaymentEventView,
    ProductView,
    StaffIndexView,
    UserView,
)
from shopapp.extensions import db
from shopapp.models import Order, PaymentEvent, Product, User


def init_admin(app: Flask) -> Admin:
    """Create this app's Admin with the staff-only views (a module-level Admin breaks repeated factories)."""
    admin = Admin(
        app,
        name="Staff",
        # Our copy of the theme's base layout with the accessibility fixes (lang, landmarks, contrast).
        theme=Bootstrap4Theme(swatch="default", base_template="admin/shop_base.html"),
        index_view=StaffIndexView(url="/admin"),
    )
    admin.add_view(ProductView(Product, db, name="Products", endpoint="products"))
    admin.add_view(OrderView(Order, db, name="Orders", endpoint="orders"))
    admin.add_view(DisputeView(name="Disputes", endpoint="disputes", url="/admin/disputes"))
    admin.add_view(PaymentEventView(PaymentEvent, db, name="Payment events", endpoint="payment_events"))
    admin.add_view(UserView(User, db, name="Users", endpoint="users"))
    admin.add_view(ExportView(name="Exports", endpoint="exports", url="/admin/exports"))
    admin.add_view(BrandView(name="Brand", endpoint="brand", url="/admin/brand"))
    _register_static_urls(app, admin.endpoint)
    admin.add_view(DiscountsView(name="Discounts and shipping", endpoint="discounts", url="/admin/discounts"))
    return admin


def _register_static_urls(app: Flask, endpoint: str) -> None:
    """`admin_static_url(filename, v)` for our admin templates: the URL Flask-Admin's `admin_static.url`
    macro gives, built once per file, version and mount point. A list page links about twenty of Flask-Admin's
    static files, each a url_for through the macro (about 120 Python calls apiece, issue 25); the versions
    are literals in the templates, so the URL cannot change while the process runs."""
    urls: dict[tuple[str, str | None, str], str] = {}

    @app.template_global("admin_static_url")
    def admin_static_url(filename: str, v: str | None = None) -> str:
        key = (filename, v, request.script_root)
        url = urls.get(key)
        if url is None:
            url = urls[key] = url_for(f"{endpoint}.static", filename=filename, v=v)
        return url
