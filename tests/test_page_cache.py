"""The cached shop page: any change to an order or a product re-renders it, and it never leaks across shoppers."""

from __future__ import annotations

import re

from sqlalchemy import update

from shopapp.models import Order, Product, User
from shopapp.services import bulk_seed
from shopapp.shop.page_cache import PageCache
from tests.conftest import PASSWORD, fresh, session_id_from


def _orders_section(text: str) -> str:
    return text[text.index('<section aria-labelledby="orders-heading"') :]


def test_a_changed_order_is_shown_changed(client, shopper, buy, emulator, db):
    session_id = session_id_from(buy(A=1))
    first = _orders_section(client.get("/").get_data(as_text=True))
    assert "Pending" in first and "Cancel order #1" in first
    # Served twice unchanged: the same HTML.
    assert _orders_section(client.get("/").get_data(as_text=True)) == first

    emulator.pay(session_id)
    emulator.deliver_pending()
    paid = _orders_section(client.get("/").get_data(as_text=True))
    assert "Paid" in paid and "Pending" not in paid and "Cancel order #1" not in paid

    # A change made outside any request (staff, a reconcile job) shows as well.
    fresh().execute(update(Order).where(Order.id == 1).values(status="refunded"))
    db.session.commit()
    refunded = _orders_section(client.get("/").get_data(as_text=True))
    assert "Refunded" in refunded and "Paid" not in refunded


def test_a_second_shopper_never_gets_the_first_shoppers_fragment(app, client, shopper, buy, make_user):
    session_id_from(buy(A=3))
    assert "3 &times; Product A" in client.get("/").get_data(as_text=True)
    other = app.test_client()
    make_user("b@example.com")
    other.post("/account/login", data={"email": "b@example.com", "password": PASSWORD})
    text = other.get("/").get_data(as_text=True)
    assert "No orders yet." in text and "Order #1" not in text and "3 &times; Product A" not in text
    session_id_from(buy(other, B=1))
    text = other.get("/").get_data(as_text=True)
    assert "1 &times; Product B" in text and "3 &times; Product A" not in text
    assert "1 &times; Product B" not in client.get("/").get_data(as_text=True)


def test_each_session_gets_its_own_csrf_token_in_the_cancel_forms(app, client, shopper, buy):
    session_id_from(buy(A=1))
    second = app.test_client()
    second.post("/account/login", data={"email": shopper.email, "password": PASSWORD})
    tokens = []
    for browser in (client, second, client):
        text = browser.get("/").get_data(as_text=True)
        assert "csrf-token-placeholder" not in text
        cancel_token = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', text)
        assert cancel_token
        tokens.append(cancel_token.group(1))
    # Same fragment (same user, same orders), yet each session shows its own token.
    assert tokens[0] != tokens[1] and tokens[0] == tokens[2]


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    cache = PageCache(max_entries=2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"


def _html(client, path: str = "/") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_changed_product_shows_on_the_very_next_view(app, client, products, make_user, db):
    shopper_browser = app.test_client()
    make_user("p@example.com")
    shopper_browser.post("/account/login", data={"email": "p@example.com", "password": PASSWORD})
    _html(shopper_browser)  # the "logged in" message page is never cached; the next views are
    for browser in (client, shopper_browser):
        assert "$19.99" in _html(browser) and "$19.99" in _html(browser)
    fresh().execute(update(Product).where(Product.name == "Product A").values(price_cents=1750, stock=3))
    db.session.commit()
    for browser in (client, shopper_browser):
        html = _html(browser)
        assert "$17.50" in html and "$19.99" not in html and "Only 3 left" in html


def test_visitors_and_shoppers_never_share_a_page(app, client, products, make_user):
    visitor = _html(client)
    assert "Log in to buy" in visitor and 'id="buy-button"' not in visitor and "csrf_token" not in visitor
    shopper_browser = app.test_client()
    make_user("p@example.com")
    shopper_browser.post("/account/login", data={"email": "p@example.com", "password": PASSWORD})
    for _ in range(2):
        page = _html(shopper_browser)
        assert 'id="buy-button"' in page and "p@example.com" in page and "Log in to buy" not in page
    assert _html(client) == visitor  # still the visitor's page, and still no token in it


def test_becoming_staff_shows_the_staff_link_at_once(client, shopper, db):
    _html(client)
    assert "Staff admin" not in _html(client)
    fresh().execute(update(User).where(User.id == shopper.id).values(is_staff=True))
    db.session.commit()
    assert "Staff admin" in _html(client)


def test_one_off_messages_show_once_and_are_never_served_again(client, shopper):
    assert "You are logged in." in _html(client)
    assert "You are logged in." not in _html(client)
    canceled = _html(client, "/?checkout=canceled")
    assert "Payment canceled: nothing was charged." in canceled
    assert "Payment canceled" not in _html(client)
    assert _html(client, "/?checkout=canceled") == canceled


def test_each_page_of_orders_is_its_own_page(client, shopper, db):
    bulk_seed.add_orders([shopper.id], 45)
    db.session.commit()
    _html(client)
    pages = [_html(client, f"/?page={n}") for n in (1, 2, 3)]
    numbers = [re.findall(r'id="order-(\d+)"', page) for page in pages]
    assert [len(n) for n in numbers] == [20, 20, 5]
    assert not set(numbers[0]) & set(numbers[1]) and not set(numbers[1]) & set(numbers[2])
    # Out-of-range page numbers answer, never a 500.
    for path in ("/?page=0", "/?page=-3", f"/?page={10**30}", "/?page=abc"):
        assert client.get(path).status_code == 200, path


def test_in_debug_every_view_re_renders(app_factory, products):
    app = app_factory(DEBUG=True)
    client = app.test_client()
    client.get("/")
    assert len(app.extensions.get("shop_page_cache") or ()) == 0
