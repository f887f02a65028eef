"""Refunds and checkout as Stripe really sends them, at three webhook API versions (issue 14).

Each scenario runs at 2022-11-15 (a common account default), 2024-10-28.acacia (refund.* events for cards)
and the SDK's pinned version, with events built from Stripe's example objects (tests/payments/stripe_shapes.py),
signed and posted to the webhook route. The local Stripe service plays the account (sessions, payments,
refunds, the list-refunds call); its own event deliveries are dropped where the test sends the versioned ones.
Test ids read as the scenario x version matrix: `pytest -v tests/payments`.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from click.testing import Result

from shopapp.extensions import db
from shopapp.models import (
    EventOutcome,
    Order,
    OrderEvent,
    OrderStatus,
    PaymentEvent,
    Product,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from shopapp.services import reconcile, refunds, stock
from tests.conftest import fresh, order_for_session, session_id_from
from tests.payments.stripe_shapes import (
    VERSIONS,
    StripeShapes,
    set_stripe_refund_status,
    stripe_charge_of,
    stripe_refund,
)

TOTAL = 7997  # 2 x A (19.99) + 1 x C (39.99)


def reload(order_id: int) -> Order:
    """The order read fresh."""
    order = fresh().get(Order, order_id, populate_existing=True)
    assert order is not None
    return order


def refund_rows(order_id: int) -> list[Refund]:
    """The order's Refund rows, fresh, oldest first."""
    return list(fresh().scalars(db.select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))


def timeline(order_id: int) -> list[str]:
    """The order's timeline notes."""
    return [e.note for e in fresh().scalars(db.select(OrderEvent).where(OrderEvent.order_id == order_id))]


def staff_refund(order: Order, amount: str, reason: str = "Customer asked") -> refunds.RefundRequested:
    """A refund as the staff form asks for it."""
    sequence = refunds.next_refund_sequence(db.session, order.id)
    return refunds.request_refund(order.id, amount, reason, requested_by="staff ann@example.com", sequence=sequence)


def versioned(version: str) -> StripeShapes:
    return StripeShapes(version)


def refund_snapshot(shapes: StripeShapes, emulator, refund_id: str) -> dict:
    """The refund as Stripe holds it now, in the shape of the endpoint's version."""
    at_stripe = stripe_refund(emulator, refund_id)
    return shapes.refund(
        id=refund_id,
        amount=at_stripe["amount"],
        charge=at_stripe["charge"],
        payment_intent=at_stripe["payment_intent"],
        status=at_stripe["status"],
        metadata=at_stripe["metadata"],
        failure_reason=at_stripe.get("failure_reason"),
    )


def charge_snapshot(shapes: StripeShapes, emulator, payment_intent: str, amount_refunded: int) -> dict:
    charge = stripe_charge_of(emulator, payment_intent)
    return shapes.charge(
        id=charge["id"], amount=charge["amount"], amount_refunded=amount_refunded, payment_intent=payment_intent
    )


def assert_all_ok(responses) -> None:
    assert [r.status_code for r in responses] == [200] * len(responses), [r.get_data(as_text=True) for r in responses]


# ---------------------------------------------------------------------------------------------------------------
# 1. charge.refunded without a refund list (the example)


@pytest.mark.parametrize("version", VERSIONS)
def test_charge_refunded_without_a_list(version, paid_order, emulator, deliver, drop_service_events, stripe_calls):
    order = paid_order()
    assert order.total_cents == TOTAL
    stripe_calls.calls.clear()
    made = staff_refund(order, "19.99")
    drop_service_events()  # only charge.refunded reaches the shop (refund.created lost, or never sent)
    shapes = versioned(version)
    event = shapes.event("charge.refunded", charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999))
    assert "refunds" not in event["data"]["object"]

    response = deliver(event)

    assert (response.status_code, response.get_data(as_text=True).strip()) == (200, "applied")
    [row] = refund_rows(order.id)
    assert (row.stripe_refund_id, row.status, row.amount_cents) == (made.stripe_refund_id, RefundStatus.SUCCEEDED, 1999)
    settled = reload(order.id)
    assert (settled.status, settled.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    # One Stripe call made the refund, one listed the charge's refunds for the event that lacked them.
    assert stripe_calls.refund_calls() == {"POST /v1/refunds": 1, "GET /v1/refunds": 1}
    # The real remainder is refundable (it used to be refused: "At most $39.99 can be refunded").
    second = staff_refund(order, "59.98")
    assert second.amount_cents == 5998 and not second.repeated


@pytest.mark.parametrize("version", VERSIONS)
def test_refund_made_outside_the_shop_announced_only_by_charge_refunded(
    version, paid_order, emulator, deliver, drop_service_events, stripe_calls, stripe_dashboard
):
    """Stripe's newer API versions omit the refunds list on charges: the shop lists them and records the refund."""
    order = paid_order()
    outside = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": TOTAL}
    )
    drop_service_events()
    shapes = versioned(version)
    event = shapes.event("charge.refunded", charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, TOTAL))
    assert_all_ok([deliver(event), deliver(event)])  # and the same delivery again
    refunded = reload(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.REFUNDED, TOTAL)
    [row] = refund_rows(order.id)
    assert (row.stripe_refund_id, row.origin, row.status) == (
        outside.id,
        RefundOrigin.OUTSIDE_SHOP,
        RefundStatus.SUCCEEDED,
    )
    assert stripe_calls.refund_calls() == {"GET /v1/refunds": 1}


# ---------------------------------------------------------------------------------------------------------------
# 2. The same refund announced by two events, in either order, each twice


@pytest.mark.parametrize("arrival", ["in-order", "reversed"])
@pytest.mark.parametrize("version", VERSIONS)
def test_one_refund_two_events_any_order_twice(
    version, arrival, paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    order = paid_order()
    stripe_calls.calls.clear()
    made = staff_refund(order, "19.99")
    drop_service_events()
    shapes = versioned(version)
    refund = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    events = shapes.refund_created(refund, charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999))
    if len(events) == 1:  # before acacia a card refund's second announcement is charge.refund.updated
        events += shapes.refund_changed(refund, previous_status="pending")
    assert len(events) == 2
    if arrival == "reversed":
        events.reverse()

    responses = [deliver(event) for event in events + events]

    assert_all_ok(responses)
    [row] = refund_rows(order.id)
    assert (row.stripe_refund_id, row.status, row.origin) == (
        made.stripe_refund_id,
        RefundStatus.SUCCEEDED,
        RefundOrigin.STAFF,
    )
    settled = reload(order.id)
    assert (settled.status, settled.refunded_cents, settled.needs_review) == (
        OrderStatus.PARTIALLY_REFUNDED,
        1999,
        False,
    )
    # Stripe calls for this refund: the create, plus one list for the charge.refunded that carries no list
    # (whichever came first: its sum cannot tell which refunds it counts); the duplicates cost nothing.
    assert stripe_calls.refund_calls() == {"POST /v1/refunds": 1, "GET /v1/refunds": 1}


# ---------------------------------------------------------------------------------------------------------------
# 3. A refund that fails after succeeding (test card 4000 0000 0000 5126)


@pytest.mark.parametrize("arrival", ["success-then-failure", "failure-first"])
@pytest.mark.parametrize("version", VERSIONS)
def test_refund_failing_after_success_frees_the_amount_and_flags_the_order(
    version, arrival, paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    order = paid_order()
    made = staff_refund(order, "79.97")
    drop_service_events()
    shapes = versioned(version)
    succeeded = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    created = shapes.refund_created(succeeded, charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, TOTAL))

    def fail_at_stripe() -> list[dict]:
        set_stripe_refund_status(emulator, made.stripe_refund_id, "failed", "expired_or_canceled_card")
        failed = refund_snapshot(shapes, emulator, made.stripe_refund_id)
        return shapes.refund_changed(failed, previous_status="succeeded")

    if arrival == "success-then-failure":
        assert_all_ok([deliver(e) for e in created])
        assert reload(order.id).status == OrderStatus.REFUNDED
        assert_all_ok([deliver(e) for e in fail_at_stripe()])
    else:
        # The failure's events overtake the success's (whose snapshots still say succeeded).
        assert_all_ok([deliver(e) for e in fail_at_stripe() + created])

    [row] = refund_rows(order.id)
    assert (row.status, row.failure_reason) == (RefundStatus.FAILED, "expired_or_canceled_card")
    after = reload(order.id)
    assert (after.status, after.refunded_cents, after.needs_review) == (OrderStatus.PAID, 0, True)
    assert "expired_or_canceled_card" in (after.review_reason or "")
    assert any("expired_or_canceled_card" in note for note in timeline(order.id))
    assert refunds.remaining_refundable_cents(fresh(), after) == TOTAL
    again = staff_refund(after, "79.97", reason="Card refund failed; refunding again")
    assert not again.repeated and again.stripe_refund_id != made.stripe_refund_id


# ---------------------------------------------------------------------------------------------------------------
# 4. A pending (or requires_action) refund is in flight: not refundable again, not yet refunded


@pytest.mark.parametrize("in_flight", ["pending", "requires_action"])
@pytest.mark.parametrize("version", VERSIONS)
def test_refund_in_flight_counts_against_the_remainder_until_it_succeeds(
    version, in_flight, paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    order = paid_order()
    made = staff_refund(order, "19.99")
    drop_service_events()
    set_stripe_refund_status(emulator, made.stripe_refund_id, in_flight)
    shapes = versioned(version)
    pending = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    charge = charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999)
    assert_all_ok([deliver(e) for e in shapes.refund_created(pending, charge)])

    [row] = refund_rows(order.id)
    assert row.status == RefundStatus(in_flight)
    waiting = reload(order.id)
    assert (waiting.status, waiting.refunded_cents) == (OrderStatus.PAID, 0)
    with pytest.raises(refunds.RefundError, match=r"At most \$59\.98"):
        staff_refund(waiting, "60.00")

    set_stripe_refund_status(emulator, made.stripe_refund_id, "succeeded")
    done = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    assert_all_ok([deliver(e) for e in shapes.refund_changed(done, previous_status=in_flight)])
    settled = reload(order.id)
    assert (settled.status, settled.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    assert [r.status for r in refund_rows(order.id)] == [RefundStatus.SUCCEEDED]


def test_canceled_refund_is_final_and_frees_the_amount(paid_order, emulator, deliver, drop_service_events):
    order = paid_order()
    made = staff_refund(order, "19.99")
    drop_service_events()
    shapes = versioned(VERSIONS[-1])
    set_stripe_refund_status(emulator, made.stripe_refund_id, "pending")
    assert_all_ok(
        [
            deliver(e)
            for e in shapes.refund_created(
                refund_snapshot(shapes, emulator, made.stripe_refund_id),
                charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999),
            )
        ]
    )
    set_stripe_refund_status(emulator, made.stripe_refund_id, "canceled")
    canceled = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    assert_all_ok([deliver(e) for e in shapes.refund_changed(canceled, previous_status="pending")])
    # A late "succeeded" snapshot cannot revive it.
    set_stripe_refund_status(emulator, made.stripe_refund_id, "succeeded")
    late = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    assert_all_ok([deliver(shapes.event("refund.updated", late))])
    assert [r.status for r in refund_rows(order.id)] == [RefundStatus.CANCELED]
    after = reload(order.id)
    assert (after.status, after.refunded_cents) == (OrderStatus.PAID, 0)
    assert refunds.remaining_refundable_cents(fresh(), after) == TOTAL


# ---------------------------------------------------------------------------------------------------------------
# 5. A Checkout Session Stripe does not know (the local service restarted, or the keys changed)


def _stock(product_id: int) -> tuple[int | None, int]:
    product = fresh().get(Product, product_id, populate_existing=True)
    assert product is not None
    return product.stock, product.reserved


def _reconcile(runner) -> Result:
    return runner.invoke(args=["payments", "reconcile", "--older-than", "0s"])


@pytest.mark.parametrize("stock_kind", ["unlimited", "limited"])
@pytest.mark.parametrize("version", VERSIONS)
def test_session_unknown_to_stripe_is_closed_and_everything_still_works(
    version,
    stock_kind,
    client,
    shopper,
    buy,
    products,
    emulator,
    runner,
    second_shopper,
    deliver,
    drop_service_events,
    stripe_calls,
):
    product_a = products["Product A"]
    if stock_kind == "limited":
        stock.set_on_hand(product_a.id, 1)
    first = order_for_session(session_id_from(buy(A=1)))
    emulator.reset()  # the local service restarted: every session is gone

    # The same cart again: a fresh session, never the dead page.
    again = session_id_from(buy(A=1))
    assert again != first.stripe_session_id and again in emulator.sessions
    closed = reload(first.id)
    assert closed.status == OrderStatus.EXPIRED and not closed.stock_reserved
    replacement = order_for_session(again)
    if stock_kind == "limited":
        assert _stock(product_a.id) == (0, 1)  # the unit moved to the new order, not held twice

    emulator.reset()
    # Another cart works: the old session (unknown to Stripe now) is closed instead of answering 503.
    other = order_for_session(session_id_from(buy(B=1)))
    assert reload(replacement.id).status == OrderStatus.CANCELED
    if stock_kind == "limited":
        assert _stock(product_a.id) == (1, 0)

    emulator.reset()
    # "Cancel order" works on a session Stripe does not know.
    canceled = client.post(f"/orders/{other.id}/cancel")
    assert canceled.status_code in (302, 303)
    assert reload(other.id).status == OrderStatus.CANCELED

    # A restart leaves another shopper's checkout behind (holding the unit); reconcile heals it and exits 0.
    held = order_for_session(session_id_from(buy(client_=second_shopper, A=1)))
    emulator.reset()
    result = _reconcile(runner)
    assert result.exit_code == 0, result.output
    assert "1 expired" in result.output and "0 error" in result.output
    assert reload(held.id).status == OrderStatus.EXPIRED
    if stock_kind == "limited":
        assert _stock(product_a.id) == (1, 0)  # released: the next shopper is not told "sold out"
    assert _reconcile(runner).exit_code == 0  # and again: nothing left to do

    # The next shopper buys and pays; the completion arrives in the endpoint's version.
    paid_session = session_id_from(buy(client_=second_shopper, A=1))
    assert emulator.pay(paid_session).status == 303
    drop_service_events()
    shapes = versioned(version)
    completed = shapes.event("checkout.session.completed", shapes.checkout_session(emulator.sessions[paid_session]))
    assert_all_ok([deliver(completed)])
    assert order_for_session(paid_session).status == OrderStatus.PAID


def test_success_page_of_a_session_unknown_to_stripe_closes_the_order(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    emulator.reset()
    page = client.get(f"/success/?session_id={session_id}")
    assert page.status_code == 200
    assert order_for_session(session_id).status == OrderStatus.EXPIRED


# ---------------------------------------------------------------------------------------------------------------
# 6. A refund interrupted after it was recorded, before Stripe answered


@pytest.mark.parametrize(
    "age", [timedelta(hours=23, minutes=59), timedelta(hours=24, minutes=1)], ids=["23h59m", "24h01m"]
)
@pytest.mark.parametrize("interruption", ["never-reached-stripe", "reply-lost"])
@pytest.mark.parametrize("version", VERSIONS)
def test_interrupted_refund_is_resent_with_its_key_within_24h_and_never_twice(
    version, interruption, age, paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    order = paid_order()
    stripe_calls.calls.clear()
    if interruption == "never-reached-stripe":
        emulator.inject_fault("POST /v1/refunds", "timeout", times=1)
    else:
        emulator.inject_fault("POST /v1/refunds", 500, times=1, process=True)
    with pytest.raises(refunds.RefundError) as info:
        staff_refund(order, "19.99")
    assert info.value.status == 503
    drop_service_events()
    [row] = refund_rows(order.id)
    assert (row.status, row.stripe_refund_id) == (RefundStatus.PENDING, None)
    assert row.idempotency_key.startswith(f"order-{order.id}-refund-1-")  # and a random part (issue 20)

    summary = reconcile.reconcile_pending(timedelta(minutes=15), now=row.created_at + age)

    at_stripe = [r for r in emulator.store.refunds.values() if r["payment_intent"] == order.stripe_payment_intent_id]
    [after] = refund_rows(order.id)
    assert summary.errors == 0
    if age < refunds.IDEMPOTENCY_KEY_LIFETIME:
        # Re-sent with the original key: one refund at Stripe, whichever way the first call was cut off.
        assert summary.refund_outcomes == {"sent": 1}
        assert stripe_calls.refund_calls() == {"POST /v1/refunds": 2}
        [made] = at_stripe
        assert made["metadata"]["refund_key"] == row.idempotency_key
        assert after.stripe_refund_id == made["id"]
        shapes = versioned(version)
        refund = refund_snapshot(shapes, emulator, made["id"])
        charge = charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999)
        assert_all_ok([deliver(e) for e in shapes.refund_created(refund, charge)])
        settled = reload(order.id)
        assert (settled.status, settled.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    elif interruption == "reply-lost":
        # Too old to re-send, but Stripe made it: found by its key, never made twice.
        assert summary.refund_outcomes == {"found": 1}
        assert stripe_calls.refund_calls() == {"POST /v1/refunds": 1, "GET /v1/refunds": 1}
        [made] = at_stripe
        assert (after.stripe_refund_id, after.status) == (made["id"], RefundStatus.SUCCEEDED)
        assert reload(order.id).refunded_cents == 1999
    else:
        # Too old to re-send and unknown to Stripe: failed, visible to staff, the amount refundable again.
        assert summary.refund_outcomes == {"gave up": 1}
        assert stripe_calls.refund_calls() == {"POST /v1/refunds": 1, "GET /v1/refunds": 1}
        assert at_stripe == []
        assert after.status == RefundStatus.FAILED
        flagged = reload(order.id)
        assert flagged.needs_review and "never confirmed" in (flagged.review_reason or "")
        assert refunds.remaining_refundable_cents(fresh(), flagged) == TOTAL


# ---------------------------------------------------------------------------------------------------------------
# 7. payment_status no_payment_required


@pytest.mark.parametrize("version", VERSIONS)
def test_no_payment_required_is_flagged_not_waited_for(version, client, shopper, buy, emulator, deliver):
    session_id = session_id_from(buy(A=1))
    order = order_for_session(session_id)
    shapes = versioned(version)
    session = shapes.checkout_session(
        emulator.sessions[session_id], status="complete", payment_status="no_payment_required", amount_total=0
    )
    event = shapes.event("checkout.session.completed", session)
    responses = [deliver(event), deliver(event)]
    assert [(r.status_code, r.get_data(as_text=True).strip()) for r in responses] == [(200, "flagged")] * 2
    flagged = reload(order.id)
    assert flagged.status == OrderStatus.PENDING and flagged.needs_review
    assert "no_payment_required" in (flagged.review_reason or "")
    assert flagged.payment_processing is False  # not shown as "processing" forever


def test_checkout_refuses_a_zero_total(client, shopper, buy, products, emulator, stripe_calls):
    free = Product(name="Free sample", price_cents=0, description="")
    db.session.add(free)
    db.session.commit()
    response = client.post("/checkout", data={f"qty-{free.id}": "2"})
    assert response.status_code == 303  # back to the shop page, the message shown there once
    assert "nothing to pay" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert fresh().scalar(db.select(db.func.count(Order.id))) == 0
    assert "POST /v1/checkout/sessions" not in stripe_calls.calls


# ---------------------------------------------------------------------------------------------------------------
# 8. One door for refunds: the automatic out-of-stock refund, its events arriving before the shop saves its id


@pytest.mark.parametrize("version", VERSIONS)
def test_shortfall_refund_events_before_the_id_is_saved(
    version,
    client,
    shopper,
    buy,
    products,
    emulator,
    second_shopper,
    deliver,
    drop_service_events,
    stripe_calls,
    runner,
):
    stock.set_on_hand(products["Product A"].id, 1)
    # A session Stripe created whose reply was lost; the shopper then changed cart, releasing the unit.
    emulator.inject_fault("POST /v1/checkout/sessions", 500, process=True)
    refused = buy(A=1)  # the shopper is sent back to the shop page with the message (303)
    assert refused.status_code == 303 and urlsplit(refused.headers["Location"]).path == "/"
    late = fresh().scalar(db.select(Order).order_by(Order.id.desc()))
    orphan = next(s for s in emulator.sessions.values() if s["metadata"]["order_id"] == str(late.id))
    session_id_from(buy(B=1))
    quick = session_id_from(buy(client_=second_shopper, A=1))  # someone else takes the unit
    emulator.pay(quick)
    emulator.deliver_pending()

    shapes = versioned(version)

    def announce_refund_while_create_is_in_flight() -> None:
        # Stripe made the refund; its events reach the shop before the create call's reply does.
        stripe_calls.after_refund_create = None
        drop_service_events()
        [made] = [r for r in emulator.store.refunds.values() if r["payment_intent"] == payment_intent]
        refund = refund_snapshot(shapes, emulator, made["id"])
        charge = charge_snapshot(shapes, emulator, payment_intent, made["amount"])
        early.extend(deliver(e) for e in shapes.refund_created(refund, charge))

    early: list = []
    emulator.pay(orphan["id"])
    payment_intent = emulator.sessions[orphan["id"]]["payment_intent"]
    stripe_calls.after_refund_create = announce_refund_while_create_is_in_flight
    emulator.deliver_pending()  # the late payment: PAID, stock gone, automatic refund sent

    assert_all_ok(early)
    [row] = refund_rows(late.id)
    assert (row.origin, row.status, row.amount_cents) == (RefundOrigin.SHORTFALL, RefundStatus.SUCCEEDED, 1999)
    assert row.idempotency_key.startswith(f"order-{late.id}-refund-1-") and row.stripe_refund_id.startswith("re_")
    [at_stripe] = [r for r in emulator.store.refunds.values() if r["payment_intent"] == payment_intent]
    assert at_stripe["metadata"]["refund_key"] == row.idempotency_key  # one key scheme for every refund
    refunded = reload(late.id)
    assert (refunded.status, refunded.stock_shortfall, refunded.needs_review) == (OrderStatus.REFUNDED, True, True)
    assert (
        fresh().scalar(db.select(db.func.count(PaymentEvent.id)).where(PaymentEvent.outcome == EventOutcome.FAILED))
        == 0
    )

    sent = runner.invoke(args=["stock", "send-refunds"])
    assert (sent.exit_code, sent.output.strip()) == (0, "Out-of-stock refunds sent: 0.")
    # Later paid webhooks for the order answer 2xx (the payment's completion, redelivered).
    completed = shapes.event("checkout.session.completed", shapes.checkout_session(emulator.sessions[orphan["id"]]))
    assert_all_ok([deliver(completed)])
    assert len([r for r in emulator.store.refunds.values() if r["payment_intent"] == payment_intent]) == 1
