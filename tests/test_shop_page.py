"""The one-page shop, and the server-side validation of a selection."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from shopapp.models import Order, OrderItem, Product
from shopapp.services import catalog
from tests.conftest import fresh, session_id_from
from tests.support import back_to_shop, refused_checkout


def test_anonymous_visitor_sees_products_and_a_login_prompt(client, products):
    response = client.get("/")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for name, price in [("Product A", "$19.99"), ("Product B", "$29.99"), ("Product C", "$39.99")]:
        assert name in text and price in text
    assert "Log in to buy" in text and "My orders" not in text
    assert text.count('type="number"') == 3 and 'max="10"' in text


def test_inactive_products_are_hidden(client, products, db):
    fresh().execute(db.update(Product).where(Product.name == "Product B").values(active=False))
    db.session.commit()
    assert "Product B" not in client.get("/").get_data(as_text=True)


def test_prices_use_the_currency_symbol():
    assert catalog.format_money(1999, "usd") == "$19.99"
    assert catalog.format_money(1999, "eur") == "€19.99"
    assert catalog.format_money(123456, "gbp") == "£1,234.56"


def test_logged_in_shopper_sees_own_orders_newest_first(client, shopper, buy, emulator):
    session_id_from(buy(A=1))
    emulator.pay(next(iter(emulator.sessions)))
    emulator.deliver_pending()
    session_id_from(buy(B=2))
    text = client.get("/orders").get_data(as_text=True)
    assert "My orders" in text
    assert text.index("Order #2") < text.index("Order #1")
    assert "2 &times; Product B" in text and "1 &times; Product A" in text
    assert "Paid" in text and "Pending" in text and "$59.98" in text


def test_shopper_b_never_sees_shopper_a_orders(app, client, shopper, buy, make_user):
    session_id_from(buy(A=3))
    other = app.test_client()
    make_user("b@example.com")
    other.post("/account/login", data={"email": "b@example.com", "password": "correct horse battery"})
    text = other.get("/orders").get_data(as_text=True)
    assert "No orders yet." in text and "Order #1" not in text and "3 &times; Product A" not in text
    # B cannot cancel A's order either.
    assert other.post("/orders/1/cancel").status_code == 404


def test_orders_paginate_past_twenty(client, shopper, products, db):
    session = fresh()
    for _ in range(25):
        session.add(
            Order(
                user_id=shopper.id,
                total_cents=1999,
                currency="usd",
                status="paid",
                items=[
                    OrderItem(
                        product_id=products["Product A"].id, product_name="Product A", unit_price_cents=1999, quantity=1
                    )
                ],
            )
        )
    session.commit()
    first = client.get("/orders").get_data(as_text=True)
    assert first.count('class="order"') == 20 and "Older orders" in first and "Order #25" in first
    second = client.get("/orders?page=2").get_data(as_text=True)
    assert second.count('class="order"') == 5 and "Newer orders" in second and "Order #1<" in second
    assert client.get("/?page=abc").status_code == 200


def _count(model) -> int:
    return fresh().scalar(select(func.count()).select_from(model))


BAD_SELECTIONS = [
    ("non-integer", {"A": "two"}, "Quantities must be whole numbers."),
    ("decimal", {"A": "1.5"}, "Quantities must be whole numbers."),
    ("negative", {"A": "-1"}, "Quantities must be whole numbers."),
    ("over-maximum", {"A": "11"}, "You can buy at most 10 of Product A in one order (you asked for 11)."),
    # Issue 22: a huge quantity names the real limit and the product, not "whole numbers".
    ("six-digits", {"B": "999999"}, "You can buy at most 10 of Product B in one order (you asked for 999,999)."),
    ("huge", {"A": "99999999999999999999"}, "You can buy at most 10 of Product A in one order"),
    ("empty", {"A": ""}, "Quantities must be whole numbers."),
    ("all-zero", {"A": "0", "B": "0", "C": "0"}, "Choose at least one product."),
    ("nothing", {}, "Choose at least one product."),
]


@pytest.mark.parametrize(("case", "quantities", "message"), BAD_SELECTIONS, ids=[c[0] for c in BAD_SELECTIONS])
def test_bad_selections_are_refused_and_write_nothing(client, shopper, products, emulator, case, quantities, message):
    data = {f"qty-{products[f'Product {k}'].id}": v for k, v in quantities.items()}
    response = client.post("/checkout", data=data, follow_redirects=True)
    assert message in refused_checkout(response)
    assert _count(Order) == 0 and _count(OrderItem) == 0 and emulator.sessions == {}


def test_unknown_and_inactive_products_are_refused(client, shopper, products, emulator, db):
    assert back_to_shop(client.post("/checkout", data={"qty-9999": "1"}))
    fresh().execute(db.update(Product).where(Product.name == "Product C").values(active=False))
    db.session.commit()
    response = client.post("/checkout", data={f"qty-{products['Product C'].id}": "1"}, follow_redirects=True)
    assert "no longer available" in refused_checkout(response)
    assert _count(Order) == 0 and emulator.sessions == {}


@pytest.mark.parametrize(
    "extra",
    [
        [("price", "1")],
        [("currency", "jpy")],
        [("unit_amount", "1")],
        [("qty-abc", "1")],
    ],
)
def test_unexpected_fields_are_refused(client, shopper, products, emulator, extra):
    fields = [(f"qty-{products['Product A'].id}", "1"), *extra]
    response = client.post("/checkout", data=MultiDict(fields))
    assert back_to_shop(response)
    assert _count(Order) == 0 and emulator.sessions == {}


def test_duplicated_fields_are_refused(client, shopper, products, emulator):
    field = f"qty-{products['Product A'].id}"
    response = client.post("/checkout", data=MultiDict([(field, "1"), (field, "5")]), follow_redirects=True)
    assert "repeated field" in refused_checkout(response)
    assert _count(Order) == 0


def test_refused_selection_keeps_what_the_shopper_typed(client, shopper, products):
    field = f"qty-{products['Product B'].id}"
    text = refused_checkout(client.post("/checkout", data={field: "12"}, follow_redirects=True))
    assert 'value="12"' in text and "at most 10" in text
    # Shown once: a reload of the shop page is the ordinary page again (nothing is resubmitted).
    assert 'value="12"' not in client.get("/").get_data(as_text=True)


def test_max_quantity_is_a_config_value(app_factory, emulator, make_user):
    app = app_factory(MAX_QUANTITY_PER_LINE=3)
    client = app.test_client()
    catalog.seed_demo_products()
    make_user("ann@example.com")
    client.post("/account/login", data={"email": "ann@example.com", "password": "correct horse battery"})
    product = catalog.list_active_products()[0]
    assert 'max="3"' in client.get("/").get_data(as_text=True)
    assert back_to_shop(client.post("/checkout", data={f"qty-{product.id}": "4"}))
    assert client.post("/checkout", data={f"qty-{product.id}": "3"}).status_code == 303


def test_order_copies_names_and_prices(client, shopper, buy, products, db):
    session_id_from(buy(B=1))
    fresh().execute(db.update(Product).where(Product.name == "Product B").values(price_cents=5000, name="B2"))
    db.session.commit()
    item = fresh().scalar(select(OrderItem))
    assert (item.product_name, item.unit_price_cents) == ("Product B", 2999)


def test_local_stripe_mode_is_announced(client, app_factory, emulator):
    assert "payments run against the local Stripe service" in client.get("/").get_data(as_text=True)
    real = app_factory(STRIPE_API_BASE=None).test_client()
    assert "local Stripe service" not in real.get("/").get_data(as_text=True)
