"""Catalog rules: Stripe's per-currency minimum/maximum, a currency list, audited saves in one transaction,
and open Checkout Sessions that follow exactly what Stripe would charge."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from shopapp import currencies
from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, Product, ProductChange
from tests.conftest import fresh, session_id_from
from tests.support import WriteOutsideTransaction, refused_checkout


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _create(staff_client, **fields: str):
    token = _csrf(staff_client.get("/admin/products/new/").get_data(as_text=True))
    data = {"csrf_token": token, "name": "Gadget", "description": "", "active": "y", "display_order": "5", **fields}
    return staff_client.post("/admin/products/new/", data=data)


@pytest.mark.parametrize(
    ("price", "currency", "message"),
    [
        ("0", "usd", "Stripe&#39;s minimum charge in USD is 0.50."),
        ("0.49", "usd", "Stripe&#39;s minimum charge in USD is 0.50."),
        ("0.29", "gbp", "Stripe&#39;s minimum charge in GBP is 0.30."),
        ("14.99", "czk", "Stripe&#39;s minimum charge in CZK is 15.00."),
        ("49", "jpy", "Stripe&#39;s minimum charge in JPY is 50."),
        ("50.5", "jpy", "JPY has no decimal places: enter a whole amount."),
        ("19.999", "usd", "USD amounts have at most 2 decimal places."),
        ("1000000.00", "usd", "Stripe&#39;s maximum charge in USD is 999999.99."),
        ("100000000", "jpy", "Stripe&#39;s maximum charge in JPY is 99999999."),
        ("29.99", "xyz", "Not a valid choice"),
        ("abc", "usd", "Enter the price as a number"),
        ("-5", "usd", "Stripe&#39;s minimum charge in USD is 0.50."),
    ],
)
def test_a_price_stripe_cannot_charge_is_refused_beside_the_field(staff_client, products, price, currency, message):
    before = fresh().scalar(select(db.func.count(Product.id)))
    response = _create(staff_client, price=price, currency=currency)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    session = fresh()
    assert session.scalar(select(db.func.count(Product.id))) == before
    assert session.scalar(select(db.func.count(ProductChange.id))) == 0


@pytest.mark.parametrize(
    ("price", "currency", "minor"),
    [
        ("0.50", "usd", 50),
        ("0.30", "gbp", 30),
        ("50", "jpy", 50),
        ("1500", "jpy", 1500),
        ("999999.99", "usd", 99999999),
        ("15", "czk", 1500),
    ],
)
def test_a_chargeable_price_is_stored_in_minor_units(staff_client, products, price, currency, minor):
    response = _create(staff_client, price=price, currency=currency)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    product = fresh().scalar(select(Product).where(Product.name == "Gadget"))
    assert (product.price_cents, product.currency) == (minor, currency)


def test_money_is_shown_with_stripes_minor_units():
    from shopapp.services.catalog import format_money

    assert format_money(1999, "usd") == "$19.99"
    assert format_money(500, "jpy") == "¥500"
    assert format_money(17550, "huf").endswith("175.50")  # CLDR would round HUF to whole forints
    assert format_money(50, "gbp") == "£0.50"
    assert currencies.minor_units("krw") == 0 and currencies.minor_units("jpy") == 0
    for currency in currencies.SUPPORTED.values():
        assert currency.min_charge_minor < currency.max_charge_minor == currencies.MAX_CHARGE_MINOR


def test_shop_page_total_and_stripe_agree_on_a_zero_decimal_price(client, staff_client, shopper, products, emulator):
    response = _create(staff_client, price="500", currency="jpy", name="Tea bowl")
    assert response.status_code == 302
    product = fresh().scalar(select(Product).where(Product.name == "Tea bowl"))
    page = client.get("/").get_data(as_text=True)
    assert "¥500" in page and 'data-currency="jpy"' in page and 'data-minor-units="0"' in page
    session_id = session_id_from(client.post("/checkout", data={f"qty-{product.id}": "2"}))
    stripe_session = emulator.store.sessions[session_id]
    assert stripe_session["amount_total"] == 1000 and stripe_session["currency"] == "jpy"


def test_a_mixed_currency_selection_is_refused(client, staff_client, shopper, products):
    assert _create(staff_client, price="5.00", currency="eur", name="Euro thing").status_code == 302
    euro = fresh().scalar(select(Product).where(Product.name == "Euro thing"))
    response = client.post(
        "/checkout", data={f"qty-{euro.id}": "1", f"qty-{products['Product A'].id}": "1"}, follow_redirects=True
    )
    page = refused_checkout(response)  # a 303 back to the shop page, the message shown there
    assert "Products in different currencies cannot be bought together" in page
    assert fresh().scalar(select(db.func.count(Order.id))) == 0


def test_changing_only_the_currency_expires_the_open_session(client, staff_client, shopper, buy, products, emulator):
    first = session_id_from(buy(A=1))
    product = products["Product A"]
    edit_url = f"/admin/products/edit/?id={product.id}"
    page = staff_client.get(edit_url).get_data(as_text=True)
    response = staff_client.post(
        edit_url,
        data={
            "csrf_token": _csrf(page),
            "name": "Product A",
            "description": product.description,
            "price": "19.99",
            "currency": "eur",
            "active": "y",
            "display_order": "0",
        },
    )
    assert response.status_code == 302
    second = session_id_from(buy(A=1))
    assert second != first
    assert emulator.store.sessions[first]["status"] == "expired"
    assert emulator.store.sessions[second]["currency"] == "eur"
    orders = fresh().scalars(select(Order).order_by(Order.id)).all()
    assert [o.status for o in orders] == [OrderStatus.CANCELED, OrderStatus.PENDING]
    assert orders[1].currency == "eur"


def test_the_same_cart_reuses_its_open_session(client, shopper, buy, products):
    first = session_id_from(buy(A=1))
    assert session_id_from(buy(A=1)) == first


def test_every_change_is_audited_and_shown_on_the_product_page(staff_client, products):
    product = products["Product B"]
    edit_url = f"/admin/products/edit/?id={product.id}"
    page = staff_client.get(edit_url).get_data(as_text=True)
    staff_client.post(
        edit_url,
        data={
            "csrf_token": _csrf(page),
            "name": "Product B",
            "description": product.description,
            "price": "24.50",
            "currency": "usd",
            "display_order": "1",
        },  # "active" unchecked
    )
    changes = fresh().scalars(select(ProductChange).where(ProductChange.product_id == product.id)).all()
    assert {(c.field, c.old_value, c.new_value) for c in changes} == {
        ("price", "29.99 USD", "24.50 USD"),
        ("active", "True", "False"),
    }
    assert all(c.actor == "staff ann@example.com" for c in changes)
    page = staff_client.get(edit_url).get_data(as_text=True)
    assert 'id="product-history"' in page and "29.99 USD" in page and "24.50 USD" in page


def test_user_edit_page_says_whose_account_it_is(staff_client, make_user):
    user = make_user("bob@example.com")
    page = staff_client.get(f"/admin/users/edit/?id={user.id}").get_data(as_text=True)
    assert "Account of bob@example.com" in page


def test_staff_cannot_remove_their_own_staff_rights(staff_client):
    from shopapp.models import User

    me = fresh().scalar(select(User).where(User.email == "ann@example.com"))
    url = f"/admin/users/edit/?id={me.id}"
    response = staff_client.post(url, data={"csrf_token": _csrf(staff_client.get(url).get_data(as_text=True))})
    assert response.status_code == 400
    assert "You cannot remove your own staff rights" in response.get_data(as_text=True)
    assert fresh().get(User, me.id, populate_existing=True).is_staff is True


def test_a_request_writing_outside_write_transaction_fails_loudly(app: Flask, products, caplog):
    @app.get("/test-unsafe-write")
    def unsafe_write() -> str:
        product = db.session.get(Product, products["Product A"].id)
        product.price_cents = 1
        db.session.commit()
        return "written"

    with caplog.at_level("ERROR", logger="shopapp.errors"):
        response = app.test_client().get("/test-unsafe-write")
    assert response.status_code == 500
    assert any(r.exc_info and r.exc_info[0] is WriteOutsideTransaction for r in caplog.records)
    assert fresh().get(Product, products["Product A"].id, populate_existing=True).price_cents == 1999


def test_staff_stock_changes_are_audited(staff_client, products):
    product = products["Product A"]
    url = f"/admin/products/stock/{product.id}"
    page = staff_client.get(url).get_data(as_text=True)
    token = re.search(r'name="count-csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = staff_client.post(url, data={"count-csrf_token": token, "count-on_hand": "7", "count-set_on_hand": "S"})
    assert response.status_code == 302
    [change] = fresh().scalars(select(ProductChange).where(ProductChange.product_id == product.id)).all()
    assert (change.field, change.old_value, change.new_value, change.actor) == (
        "stock",
        "unlimited",
        "7 (counted 7 on hand)",
        "staff ann@example.com",
    )
