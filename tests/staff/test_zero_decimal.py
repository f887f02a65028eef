"""Zero-decimal currencies end to end (Stripe docs, "Zero-decimal currencies": JPY 1500 is sent as 1500): a JPY
product priced 1500 is ¥1,500 on the local Stripe service's hosted page, at Stripe, in the staff refund form
(typed "1500", never x100) and in the orders export."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.test import Client

from shopapp.models import Order, OrderStatus
from shopapp.services import products
from stripe_emulator import Emulator
from tests.conftest import order_for_session, session_id_from
from tests.staff.conftest import fresh_order, refunds_of, stripe_refunds


@pytest.fixture
def paid_in_yen(app: Any, client: Any, shopper: Any, emulator: Emulator) -> Order:
    """A PAID order of one ¥1,500 tea bowl, paid on the hosted page (whose amounts are checked on the way)."""
    bowl = products.create_product(products.ProductInput(name="Tea bowl", price="1500", currency="jpy"),
                                   actor="staff ann@example.com")  # fmt: skip
    assert bowl.price_cents == 1500
    response = client.post("/checkout", data={f"qty-{bowl.id}": "1"})
    session_id = session_id_from(response)
    assert emulator.sessions[session_id]["amount_total"] == 1500 and emulator.sessions[session_id]["currency"] == "jpy"
    page = Client(emulator.wsgi_app)
    hosted = urlsplit(response.headers["Location"]).path
    html = page.get(hosted).get_data(as_text=True)
    assert '<h1 class="amount-due">Pay ¥1,500</h1>' in html and "¥15<" not in html and "¥15." not in html
    paid = page.post(hosted, data={"method": "card", "card_number": "4242 4242 4242 4242", "expiry": "12 / 34",
                                   "cvc": "123"})  # fmt: skip
    assert paid.status_code == 303
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert (order.status, order.total_cents, order.currency) == (OrderStatus.PAID, 1500, "jpy")
    return order


def test_staff_refund_1500_yen_of_a_yen_order(staff_client, staff_post, paid_in_yen, emulator):
    order = paid_in_yen
    form = {"amount": "1500", "reason": "Chipped", "sequence": "1"}
    confirm = staff_post(f"/admin/orders/{order.id}/refund/", data=form)
    # The whole order: the confirmation step, in yen.
    assert confirm.status_code == 200
    assert re.search(r'id="confirm-amount">¥1,500</strong>', confirm.get_data(as_text=True))
    assert refunds_of(order.id) == []
    done = staff_post(f"/admin/orders/{order.id}/refund/", data={**form, "confirm": "yes"})
    assert done.status_code == 303
    assert "Refund of ¥1,500 sent to Stripe" in staff_client.get(done.headers["Location"]).get_data(as_text=True)
    [at_stripe] = stripe_refunds(emulator, order.stripe_payment_intent_id)
    assert (at_stripe["amount"], at_stripe["currency"]) == (1500, "jpy")
    emulator.deliver_pending()
    [row] = refunds_of(order.id)
    assert (row.amount_cents, row.status) == (1500, "succeeded")
    refunded = fresh_order(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.REFUNDED, 1500)


def test_partial_yen_refunds_and_the_yen_rules(staff_client, staff_post, paid_in_yen, emulator):
    order = paid_in_yen
    cases = [
        ("1500.5", "JPY has no decimal places: enter a whole amount."),
        ("1501", "At most ¥1,500 can be refunded"),
        ("0", "The refund amount must be more than zero."),
    ]
    for amount, message in cases:
        response = staff_post(f"/admin/orders/{order.id}/refund/", data={"amount": amount, "reason": "x",
                                                                          "sequence": "1"})  # fmt: skip
        assert response.status_code == 400 and message in response.get_data(as_text=True), amount
    assert refunds_of(order.id) == [] and stripe_refunds(emulator, order.stripe_payment_intent_id) == []
    response = staff_post(
        f"/admin/orders/{order.id}/refund/", data={"amount": "500", "reason": "x", "sequence": "1", "confirm": "yes"}
    )
    assert response.status_code == 303
    emulator.deliver_pending()
    assert [r.amount_cents for r in refunds_of(order.id)] == [500]
    assert fresh_order(order.id).refunded_cents == 500
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "¥1,000" in page  # what remains refundable

    listed = staff_client.get("/admin/orders/export/csv/", buffered=True).get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(listed)))
    assert (row["currency"], row["order_total"], row["refunded"], row["unit_price"]) == ("JPY", "1500", "500", "1500")
