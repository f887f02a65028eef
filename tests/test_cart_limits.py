"""Issue 20, example 4: a cart Stripe cannot charge is refused before Stripe is called, beside the cart.

Stripe takes at most 8 digits per payment in the currency's minor unit (99,999,999 cents = $999,999.99) and at most
100 line items in one payment-mode Checkout Session (shopapp.services.catalog.check_chargeable names the sources).
A refused Buy is the shop's usual answer (issue 15): 303 back to the shop page, which shows the message beside the
Buy form; no order row is written and Stripe is never asked.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shopapp.models import Order, OrderItem, Product
from tests.conftest import fresh, session_id_from
from tests.support import refused_checkout

CREATE = "POST /v1/checkout/sessions"


def _product(name: str, price_cents: int, currency: str = "usd") -> Product:
    session = fresh()
    product = Product(name=name, price_cents=price_cents, currency=currency)
    session.add(product)
    session.commit()
    return product


def _nothing_happened(emulator) -> None:
    session = fresh()
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert session.scalar(select(func.count()).select_from(OrderItem)) == 0
    assert emulator.call_counts.get(CREATE, 0) == 0 and emulator.sessions == {}


def test_two_of_a_600_000_dollar_product_are_refused_before_stripe(client, shopper, emulator):
    piano = _product("Concert grand", 60_000_000)  # 600,000.00 USD: a price Stripe accepts on its own
    response = client.post("/checkout", data={f"qty-{piano.id}": "2"}, follow_redirects=True)
    text = refused_checkout(response)
    assert "This cart comes to $1,200,000.00" in text and "($999,999.99)" in text
    assert 'value="2"' in text  # the quantities as typed, beside the message
    _nothing_happened(emulator)


def test_one_of_them_is_a_payment_stripe_takes(client, shopper, emulator):
    piano = _product("Concert grand", 60_000_000)
    session_id = session_id_from(client.post("/checkout", data={f"qty-{piano.id}": "1"}))
    assert emulator.sessions[session_id]["amount_total"] == 60_000_000


def test_the_eight_digit_limit_holds_for_zero_decimal_currencies(client, shopper, emulator):
    # 99,999,999 is the maximum in the minor unit of every currency: JPY 60,000,000 x 2 is refused too.
    lantern = _product("Stone lantern", 60_000_000, "jpy")
    text = refused_checkout(client.post("/checkout", data={f"qty-{lantern.id}": "2"}, follow_redirects=True))
    assert "This cart comes to ¥120,000,000" in text and "(¥99,999,999)" in text
    _nothing_happened(emulator)


def test_a_unit_amount_stripe_would_refuse_is_refused(client, shopper, emulator):
    # A row priced before the staff form checked prices (or written by hand): 9 digits of cents.
    yacht = _product("Yacht", 100_000_000)
    text = refused_checkout(client.post("/checkout", data={f"qty-{yacht.id}": "1"}, follow_redirects=True))
    assert "Yacht costs more than our payment provider can take in one payment ($999,999.99)" in text
    _nothing_happened(emulator)


@pytest.mark.parametrize(("count", "refused"), [(100, False), (101, True)])
def test_at_most_100_line_items_in_one_session(client, shopper, emulator, count, refused):
    products = [_product(f"Sticker {i:03d}", 100) for i in range(count)]
    response = client.post("/checkout", data={f"qty-{p.id}": "1" for p in products}, follow_redirects=refused)
    if refused:
        assert "at most 100 different products; this cart has 101" in refused_checkout(response)
        _nothing_happened(emulator)
    else:
        session_id = session_id_from(response)
        assert emulator.sessions[session_id]["amount_total"] == 100 * count


def test_a_long_cart_is_remembered_by_a_key_that_fits_its_column(client, shopper, emulator):
    # 40 products make a cart description of about 500 characters; orders.cart_key holds 255 (PostgreSQL
    # refused the row: a 500 where the shopper should have gone to pay). The same cart twice reuses the session.
    products = [_product(f"Badge {i:03d}", 1_000_000 + i) for i in range(40)]
    form = {f"qty-{p.id}": "2" for p in products}
    first = session_id_from(client.post("/checkout", data=form))
    assert session_id_from(client.post("/checkout", data=form)) == first
    key = fresh().scalar(select(Order.cart_key))
    assert key.startswith("sha256:") and len(key) == 71
