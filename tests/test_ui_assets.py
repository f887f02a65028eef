"""Pages and assets: fingerprinted static files with long cache lifetimes, no inline code, a working admin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopapp.extensions import db
from shopapp.models import Order, Product
from shopapp.services import accounts, catalog
from tests.conftest import PASSWORD, fresh, session_id_from

STATIC = Path(__file__).resolve().parents[1] / "shopapp" / "static"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"|\son[a-z]+=\"", re.I)


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_link_fingerprinted_assets_served_with_long_cache(client, products):
    html = client.get("/").get_data(as_text=True)
    urls = _asset_urls(html)
    assert {u.split("?")[0] for u in urls} >= {"/static/shop.css", "/static/shop.js"}
    for url in urls:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        response = client.get(url)
        assert response.status_code == 200
        assert response.cache_control.public
        assert response.cache_control.max_age == 365 * 24 * 3600
        assert response.headers.get("ETag")


def test_fingerprint_changes_with_the_file(client, products, tmp_path, app):
    before = _asset_urls(client.get("/").get_data(as_text=True))
    app.static_folder = str(tmp_path)
    for name in ("shop.css", "shop.js", "favicon.svg"):
        (tmp_path / name).write_bytes((STATIC / name).read_bytes() + b"\n/* changed */")
    after = _asset_urls(client.get("/").get_data(as_text=True))
    assert len(before) == len(after)
    assert not set(before) & set(after)


@pytest.mark.parametrize("path", ["/", "/account/login", "/account/signup", "/no-such-page"])
def test_shop_pages_have_no_inline_scripts_styles_or_handlers(client, products, path):
    html = client.get(path).get_data(as_text=True)
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE.search(html)


def test_csp_allows_only_own_scripts_and_styles(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "unsafe-inline" not in csp


@pytest.fixture
def staff_client(app_factory, emulator):
    """A staff member logged in through the real form, with CSRF protection on as in production."""
    app = app_factory(WTF_CSRF_ENABLED=True)
    catalog.seed_demo_products()
    accounts.create_user("staff@example.com", PASSWORD, is_staff=True)
    client = app.test_client()
    token = _form_token(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login", data={"email": "staff@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def _form_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_staff_can_save_a_product_with_csrf_on(staff_client):
    product = db.session.scalar(db.select(Product).where(Product.name == "Product B"))
    page = staff_client.get(f"/admin/products/edit/?id={product.id}").get_data(as_text=True)
    data = {
        "csrf_token": _form_token(page),
        "name": "Product B",
        "description": product.description,
        "price": "24.50",
        "currency": "usd",
        "active": "y",
        "display_order": str(product.display_order),
        "stock": "",
    }
    response = staff_client.post(f"/admin/products/edit/?id={product.id}", data=data)
    assert response.status_code == 302
    assert fresh().get(Product, product.id).price_cents == 2450


def test_admin_save_without_token_changes_nothing(staff_client):
    product = db.session.scalar(db.select(Product).where(Product.name == "Product B"))
    response = staff_client.post(
        f"/admin/products/edit/?id={product.id}", data={"name": "Product B", "price": "0.01", "currency": "usd"}
    )
    assert response.status_code == 400
    assert fresh().get(Product, product.id).price_cents == 2999


def test_admin_order_pages_load_the_shopper_with_the_orders(client, make_user, auth, buy, products):
    shopper = make_user("buyer@example.com")
    auth.login(shopper.email)
    session_id_from(buy(A=1))
    auth.logout()
    make_user("staff@example.com", staff=True)
    auth.login("staff@example.com")
    order_id = fresh().scalar(db.select(Order.id))
    listing = client.get("/admin/orders/")
    assert listing.status_code == 200
    assert "buyer@example.com" in listing.get_data(as_text=True)
    details = client.get(f"/admin/orders/details/?id={order_id}")
    assert details.status_code == 200
    assert re.search(r"<td>Product A</td><td[^>]*>\$19\.99</td>", details.get_data(as_text=True))
    assert client.get("/admin/orders/details/?id=nope").status_code == 404
