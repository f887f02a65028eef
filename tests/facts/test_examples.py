"""Issue 20's examples 1-3, each a schedule that broke the money before order state came from facts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, Product, Refund
from shopapp.services import catalog, refunds, stock
from tests.conftest import PASSWORD, WEBHOOK_SECRET, _reset_schema, fresh, order_for_session, session_id_from
from tests.payments.stripe_shapes import post_event

TOTAL = 7997  # 2 x A (19.99) + 1 x C (39.99)


def reload(order_id: int) -> Order:
    order = fresh().get(Order, order_id, populate_existing=True)
    assert order is not None
    return order


def units_of(product_id: int) -> tuple[int | None, int]:
    product = fresh().get(Product, product_id, populate_existing=True)
    assert product is not None
    return product.stock, product.reserved


def staff_refund(order_id: int, amount: str) -> refunds.RefundRequested:
    sequence = refunds.next_refund_sequence(db.session, order_id)
    return refunds.request_refund(
        order_id, amount, "Customer asked", requested_by="staff ann@example.com", sequence=sequence
    )


def paid_transitions(order_id: int) -> int:
    return sum(1 for e in reload(order_id).events if e.to_status == "paid" and e.from_status != "paid")


# ---------------------------------------------------------------------------------------------------------------
# Example 1: a late checkout.session.completed after a refund


@pytest.mark.parametrize("amount, status", [("79.97", OrderStatus.REFUNDED), ("19.99", OrderStatus.PARTIALLY_REFUNDED)])
def test_late_completed_after_a_refund_never_pays_again(client, shopper, buy, emulator, products, amount, status):
    product_a = products["Product A"]
    stock.set_on_hand(product_a.id, 5)
    emulator.hold_deliveries()
    session_id = session_id_from(buy(A=2, C=1))
    assert emulator.pay(session_id).status == 303
    assert client.get(f"/success/?session_id={session_id}").status_code == 200  # settles it: webhook delayed
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID and units_of(product_a.id) == (3, 0)

    staff_refund(order.id, amount)
    emulator.release_deliveries(order="reverse")  # refund events first, the delayed completed last
    emulator.deliver_pending()

    after = reload(order.id)
    refunded = int(amount.replace(".", ""))
    assert (after.status, after.refunded_cents) == (status, refunded)
    assert units_of(product_a.id) == (3, 0)  # consumed once, not 3 -> 1
    assert paid_transitions(order.id) == 1
    if status == OrderStatus.REFUNDED:
        assert not after.is_shippable


@pytest.mark.parametrize("emulator", ["2022-11-15"], indirect=True)
def test_dashboard_refund_before_a_four_hour_late_completed_at_2022_11_15(
    client, shopper, buy, emulator, products, stripe_dashboard
):
    product_a = products["Product A"]
    stock.set_on_hand(product_a.id, 5)
    emulator.hold_deliveries()
    session_id = session_id_from(buy(A=2, C=1))
    emulator.pay(session_id)
    payment_intent = emulator.sessions[session_id]["payment_intent"]
    stripe_dashboard.v1.refunds.create(params={"payment_intent": payment_intent, "amount": TOTAL})
    emulator.advance(4 * 3600)
    emulator.release_deliveries(order="reverse")  # charge.refunded, then completed four hours late
    emulator.deliver_pending()

    order = order_for_session(session_id)
    assert (order.status, order.refunded_cents) == (OrderStatus.REFUNDED, TOTAL)
    assert units_of(product_a.id) == (3, 0)
    assert paid_transitions(order.id) == 1
    assert not order.is_shippable


# ---------------------------------------------------------------------------------------------------------------
# Example 2: a paid session the shop never created


def _create_foreign_session(stripe_dashboard: Any, order: Order) -> str:
    """Another integration on the same account makes a session whose metadata names our pending order."""
    created = stripe_dashboard.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": order.currency,
                        "unit_amount": order.total_cents,
                        "product_data": {"name": "x"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://elsewhere.example/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://elsewhere.example/cancel",
            "client_reference_id": str(order.id),
            "metadata": {"order_id": str(order.id), "attempt": "1"},
        }
    )
    return str(created.id)


def test_a_paid_session_the_shop_never_created_settles_nothing(client, shopper, buy, emulator, stripe_dashboard):
    ours = session_id_from(buy(A=2, C=1))
    order = order_for_session(ours)
    foreign = _create_foreign_session(stripe_dashboard, order)
    emulator.pay(foreign)
    emulator.deliver_pending()

    still = reload(order.id)
    assert still.status == OrderStatus.PENDING and still.stripe_session_id == ours
    # The shopper pays the shop's own session: paid once, from it.
    emulator.pay(ours)
    emulator.deliver_pending()
    paid = reload(order.id)
    assert paid.status == OrderStatus.PAID and paid.stripe_session_id == ours
    assert paid.stripe_payment_intent_id == emulator.sessions[ours]["payment_intent"]
    assert paid_transitions(order.id) == 1


@pytest.mark.parametrize("change", [{"account": "acct_1Connected"}, {"livemode": True}], ids=["connect", "livemode"])
def test_events_of_a_connected_account_or_the_other_mode_are_not_the_shops(client, shopper, buy, emulator, change):
    ours = session_id_from(buy(A=2, C=1))
    emulator.hold_deliveries()
    emulator.pay(ours)
    [completed] = emulator.events("checkout.session.completed")
    stranger = {**copy.deepcopy(completed), "id": completed["id"] + "x", **change}
    response = post_event(client, stranger, WEBHOOK_SECRET)
    assert response.status_code == 200 and response.get_data(as_text=True).strip() == "ignored"
    assert order_for_session(ours).status == OrderStatus.PENDING
    emulator.release_deliveries()
    emulator.deliver_pending()
    assert order_for_session(ours).status == OrderStatus.PAID


# ---------------------------------------------------------------------------------------------------------------
# Example 3: idempotency keys unique to this shop's attempt for ever


def _fresh_shop(app: Any) -> dict[str, Product]:
    """The shop's database reset (as after a restore, or a second database on one Stripe account)."""
    db.session.remove()
    _reset_schema(app)
    catalog.seed_demo_products()
    return {p.name: p for p in catalog.list_active_products()}


def test_checkout_keys_survive_a_database_reset(app, client, make_user, emulator):
    products = _fresh_shop(app)
    make_user("shopper@example.com")
    client.post("/account/login", data={"email": "shopper@example.com", "password": PASSWORD})
    a = products["Product A"].id
    first = client.post("/checkout", data={f"qty-{a}": "2"})
    session_id_from(first)

    products = _fresh_shop(app)  # order 1 again, with another cart
    make_user("shopper@example.com")
    client.post("/account/login", data={"email": "shopper@example.com", "password": PASSWORD})
    again = client.post("/checkout", data={f"qty-{products['Product C'].id}": "1"})
    second = session_id_from(again)  # used to be "The payment provider refused this checkout"
    assert order_for_session(second).id == 1
    keys = [k["key"] for k in emulator.idempotency_keys() if k["path"] == "/v1/checkout/sessions"]
    assert len(set(keys)) == 2


def test_refund_keys_survive_a_database_reset(app, client, make_user, emulator):
    def paid_order_one(products: dict[str, Product], letter: str) -> Order:
        make_user("shopper@example.com")
        client.post("/account/login", data={"email": "shopper@example.com", "password": PASSWORD})
        session_id = session_id_from(client.post("/checkout", data={f"qty-{products[f'Product {letter}'].id}": "1"}))
        emulator.pay(session_id)
        emulator.deliver_pending()
        order = order_for_session(session_id)
        assert order.id == 1 and order.status == OrderStatus.PAID
        return order

    first = paid_order_one(_fresh_shop(app), "A")
    staff_refund(first.id, "10.00")
    second = paid_order_one(_fresh_shop(app), "C")
    made = staff_refund(second.id, "20.00")  # used to be refused: the key was Stripe's for another refund
    assert made.amount_cents == 2000 and not made.repeated


def test_a_retried_attempt_keeps_its_key(client, shopper, buy, emulator):
    emulator.inject_fault("POST /v1/checkout/sessions", status=500, times=1)
    refused = buy(A=1)
    assert refused.status_code == 303 and "checkout.stripe" not in refused.headers["Location"]
    session_id = session_id_from(buy(A=1))
    from shopapp.models import CheckoutAttempt

    [attempt] = fresh().scalars(db.select(CheckoutAttempt)).all()
    keys = [k["key"] for k in emulator.idempotency_keys() if k["path"] == "/v1/checkout/sessions"]
    assert set(keys) == {attempt.idempotency_key} and attempt.stripe_session_id == session_id
    assert json.dumps(attempt.idempotency_key).count("-") >= 4  # order-<id>-attempt-<n>-<random>
    assert fresh().scalar(db.select(db.func.count(Refund.id))) == 0


def test_shrunk_schedule_foreign_session_delivered_while_ours_is_paid_and_held(
    client, shopper, buy, emulator, stripe_dashboard
):
    """The schedule the state machine shrank to when the own-session check was removed (a mutation check):
    our session paid with its events held, a foreign session naming the order paid and delivered first."""
    emulator.hold_deliveries()
    ours = session_id_from(buy(A=1))
    emulator.pay(ours)
    order = order_for_session(ours)
    foreign = _create_foreign_session(stripe_dashboard, order)
    emulator.pay(foreign)
    held = emulator.release_deliveries()
    emulator.hold_deliveries()
    foreign_events = [e["id"] for e in emulator.events() if e["data"]["object"].get("id") == foreign]
    for event_id in foreign_events:
        assert emulator.redeliver(event_id) == 200
    assert reload(order.id).paid_at is None
    emulator.deliver_pending()
    paid = reload(order.id)
    assert paid.status == OrderStatus.PAID and paid.stripe_session_id == ours and paid_transitions(order.id) == 1
    assert held
