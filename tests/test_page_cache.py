"""The cached shop page: any change to an order or a product re-renders it, and it never leaks across shoppers."""

from __future__ import annotations

import re

from sqlalchemy import update

from shopapp.models import Order
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
