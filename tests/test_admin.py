"""Flask-Admin: staff only on every URL, CSRF on every form, money entered as money."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from shopapp.models import Product, User
from tests.conftest import PASSWORD, fresh


def admin_urls(app) -> list[tuple[str, str]]:
    """Every admin URL rule with placeholder arguments, and its methods."""
    urls = []
    for rule in app.url_map.iter_rules():
        # Flask-Admin's bundled CSS/JS are public assets, not admin pages.
        if not rule.rule.startswith("/admin") or rule.endpoint.endswith(".static"):
            continue
        # Converters with arguments too (<any(coupons, codes, rates):section>): a value each accepts.
        path = re.sub(
            r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", lambda m: "rates" if m.group(1) == "section" else "1", rule.rule
        )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            urls.append((method, path))
    return urls


def test_walk_covers_every_admin_view(app):
    urls = admin_urls(app)
    assert len(urls) > 30
    for prefix in ("/admin/", "/admin/products/", "/admin/orders/", "/admin/users/", "/admin/payment_events/"):
        assert ("GET", prefix) in urls


def test_anonymous_visitors_are_sent_to_login_on_every_admin_url(app, client):
    for method, path in admin_urls(app):
        response = client.open(path, method=method)
        assert response.status_code in (302, 403), (method, path, response.status_code)
        if response.status_code == 302:
            assert "/account/login" in response.headers["Location"], (method, path)


def test_shoppers_get_403_on_every_admin_url(app, client, shopper, products):
    before = fresh().scalar(select(func.count()).select_from(Product))
    for method, path in admin_urls(app):
        response = client.open(path, method=method, data={"name": "Hacked", "price": "1.00"})
        assert response.status_code == 403, (method, path, response.status_code)
    assert fresh().scalar(select(func.count()).select_from(Product)) == before
    assert "Hacked" not in {p.name for p in fresh().scalars(select(Product))}


@pytest.fixture
def staff_client(app, make_user):
    client = app.test_client()
    make_user("boss@example.com", staff=True)
    client.post("/account/login", data={"email": "boss@example.com", "password": PASSWORD})
    return client


def test_staff_can_open_every_list_page(staff_client, products):
    for path in (
        "/admin/",
        "/admin/products/",
        "/admin/orders/",
        "/admin/users/",
        "/admin/payment_events/",
        "/admin/products/new/",
        f"/admin/products/edit/?id={products['Product A'].id}",
    ):
        assert staff_client.get(path).status_code == 200, path


def test_admin_forms_carry_csrf_tokens_and_refuse_without(staff_client, products):
    form = staff_client.get("/admin/products/new/").get_data(as_text=True)
    assert 'name="csrf_token"' in form
    response = staff_client.post(
        "/admin/products/new/", data={"name": "No token", "price": "5.00", "currency": "usd", "display_order": "9"}
    )
    assert response.status_code == 400  # the form is shown again with an error
    assert "No token" not in {p.name for p in fresh().scalars(select(Product))}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_staff_create_and_edit_products_with_money_prices(staff_client, products):
    token = _csrf(staff_client.get("/admin/products/new/").get_data(as_text=True))
    response = staff_client.post(
        "/admin/products/new/",
        data={
            "csrf_token": token,
            "name": "Product D",
            "description": "New",
            "price": "12.34",
            "currency": "usd",
            "active": "y",
            "display_order": "4",
        },
    )
    assert response.status_code == 302
    product = fresh().scalar(select(Product).where(Product.name == "Product D"))
    assert product.price_cents == 1234

    listing = staff_client.get("/admin/products/").get_data(as_text=True)
    assert "$12.34" in listing

    edit_url = f"/admin/products/edit/?id={product.id}"
    page = staff_client.get(edit_url).get_data(as_text=True)
    assert 'value="12.34"' in page
    staff_client.post(
        edit_url,
        data={
            "csrf_token": _csrf(page),
            "name": "Product D",
            "description": "New",
            "price": "15.00",
            "currency": "usd",
            "display_order": "4",
        },  # "active" unchecked: deactivated
    )
    product = fresh().scalar(select(Product).where(Product.name == "Product D"))
    assert product.price_cents == 1500 and product.active is False


def test_orders_are_read_only_in_admin(staff_client, shopper, buy):
    from tests.conftest import order_for_session, session_id_from

    session_id = session_id_from(buy(A=1))
    for path in ("/admin/orders/edit/?id=1", "/admin/orders/new/"):
        page = staff_client.get(path)
        assert page.status_code == 302  # Flask-Admin sends you back to the list: no form exists
        staff_client.post(path, data={"status": "paid", "total_cents": "1"})
    staff_client.post("/admin/orders/delete/", data={"id": "1"})
    order = order_for_session(session_id)
    assert order.status.value == "pending" and order.total_cents == 1999


def test_orders_list_filters_and_search(staff_client, shopper, buy, emulator):
    from tests.conftest import session_id_from

    session_id = session_id_from(buy(A=1))
    page = staff_client.get("/admin/orders/").get_data(as_text=True)
    assert "shopper@example.com" in page
    found = staff_client.get(f"/admin/orders/?search={session_id}").get_data(as_text=True)
    assert "shopper@example.com" in found
    none = staff_client.get("/admin/orders/?search=cs_test_nothing").get_data(as_text=True)
    assert "shopper@example.com" not in none
    detail = staff_client.get("/admin/orders/details/?id=1").get_data(as_text=True)
    assert '<td>Product A</td><td class="text-right">$19.99</td>' in detail


def test_users_list_never_shows_password_hashes(staff_client, shopper):
    hash_ = fresh().scalar(select(User.password_hash).where(User.email == "shopper@example.com"))
    token = fresh().scalar(select(User.session_token).where(User.email == "shopper@example.com"))
    for path in ("/admin/users/", f"/admin/users/edit/?id={shopper.id}", f"/admin/users/details/?id={shopper.id}"):
        text = staff_client.get(path).get_data(as_text=True)
        assert hash_ not in text and "argon2" not in text and token not in text


def test_staff_can_toggle_staff(staff_client, shopper):
    page = staff_client.get(f"/admin/users/edit/?id={shopper.id}").get_data(as_text=True)
    staff_client.post(f"/admin/users/edit/?id={shopper.id}", data={"csrf_token": _csrf(page), "is_staff": "y"})
    assert fresh().scalar(select(User.is_staff).where(User.id == shopper.id)) is True


def _table_rows(html: str) -> str:
    body = html.split('<table class="table table-striped table-bordered table-hover model-list">', 1)[1]
    body = body.split("</table>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r">\s+", ">", re.sub(r"\s+<", "<", body))).strip()


@pytest.mark.parametrize("path", ["/admin/orders/", "/admin/users/", "/admin/payment_events/", "/admin/products/"])
def test_list_rows_built_in_python_are_the_templates_rows(staff_client, paid_order, products, monkeypatch, path):
    """Issue 25: StaffModelView.list_rows renders the rows in Python; the markup must be the template loop's own
    (checkbox names, row links, escaped cells), on every list, whichever of the two renders it."""
    from shopapp.admin.views.base import StaffModelView

    paid_order()
    fast = staff_client.get(path)
    assert fast.status_code == 200
    monkeypatch.setattr(StaffModelView, "list_rows", lambda *args, **kwargs: None)
    slow = staff_client.get(path)
    assert slow.status_code == 200
    assert _table_rows(fast.get_data(as_text=True)) == _table_rows(slow.get_data(as_text=True))
    if path == "/admin/orders/":  # bulk actions: a named checkbox per row, and the order's view link
        rows = _table_rows(fast.get_data(as_text=True))
        assert 'aria-label="Select record 1"' in rows and "/admin/orders/details/?id=1&amp;url=" in rows


def test_orders_list_cells_are_flask_admins_own(staff_client, paid_order, buy, monkeypatch):
    """Issue 25: OrderView.get_list_value computes each listed column directly; the page must be byte for byte
    the one Flask-Admin's generic path (formatters, choices, type formatters) renders, None cells included."""
    from flask_admin.model.base import BaseModelView

    from shopapp.admin.views.orders import OrderView

    paid_order()
    buy(A=1)  # pending: not paid, no paid_at
    staff_client.get("/admin/orders/")  # shows the log-in message once
    fast = staff_client.get("/admin/orders/")
    monkeypatch.setattr(OrderView, "get_list_value", BaseModelView.get_list_value)
    generic = staff_client.get("/admin/orders/")
    assert fast.status_code == generic.status_code == 200
    assert _without_csrf_tokens(fast.get_data()) == _without_csrf_tokens(generic.get_data())
    assert '<td class="col-paid_at"></td>' in _table_rows(fast.get_data(as_text=True))  # the pending order


def _without_csrf_tokens(page: bytes) -> bytes:
    # The token carries the second it was signed in; everything else must match.
    return re.sub(rb'(name="csrf_token"[^>]*value=")[^"]*"', rb'\1"', page)
