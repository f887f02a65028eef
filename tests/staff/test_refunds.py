"""Refunds: requested by staff through the gateway, applied only when Stripe's refund events arrive."""

from __future__ import annotations

import pytest

from shopapp.extensions import db
from shopapp.models import OrderEvent, OrderStatus, PaymentEvent
from shopapp.services import refunds
from tests.conftest import fresh
from tests.staff.conftest import fresh_order, refunds_of, stripe_refunds


def _request(order, amount, sequence=None, reason="Customer asked"):
    if sequence is None:
        sequence = refunds.next_refund_sequence(db.session, order.id)
    return refunds.request_refund(order.id, amount, reason, requested_by="staff ann@example.com", sequence=sequence)


def test_full_refund_moves_order_only_when_events_arrive(paid_order, emulator):
    order = paid_order()  # 2 x A + 1 x C = 79.97
    result = _request(order, "79.97")
    assert result.amount_cents == 7997 and not result.repeated
    # The click alone changes nothing on the order.
    after_click = fresh_order(order.id)
    assert (after_click.status, after_click.refunded_cents) == (OrderStatus.PAID, 0)
    assert [(r.status, r.amount_cents, r.stripe_refund_id) for r in refunds_of(order.id)] == [
        ("pending", 7997, result.stripe_refund_id)
    ]
    [at_stripe] = stripe_refunds(emulator, order.stripe_payment_intent_id)
    assert (at_stripe["id"], at_stripe["amount"]) == (result.stripe_refund_id, 7997)
    assert at_stripe["metadata"]["order_id"] == str(order.id)

    emulator.deliver_pending()
    refunded = fresh_order(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.REFUNDED, 7997)
    assert [r.status for r in refunds_of(order.id)] == ["succeeded"]
    notes = [e.note for e in fresh().scalars(db.select(OrderEvent).where(OrderEvent.order_id == order.id))]
    assert any("Refund of $79.97 requested: Customer asked" in n for n in notes)
    outcomes = {
        e.type: e.outcome for e in fresh().scalars(db.select(PaymentEvent).where(PaymentEvent.order_id == order.id))
    }
    assert outcomes["refund.created"] == "applied"
    assert outcomes["charge.refunded"] == "no-op" and "refund.updated" not in outcomes  # not sent on create


def test_partial_refunds_then_the_rest(paid_order, emulator):
    order = paid_order()
    _request(order, "10.00")
    emulator.deliver_pending()
    partial = fresh_order(order.id)
    assert (partial.status, partial.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1000)
    _request(order, "19.97", reason="Damaged item")
    emulator.deliver_pending()
    second = fresh_order(order.id)
    assert (second.status, second.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 2997)
    _request(order, "50.00")
    emulator.deliver_pending()
    done = fresh_order(order.id)
    assert (done.status, done.refunded_cents) == (OrderStatus.REFUNDED, 7997)
    assert [r.amount_cents for r in refunds_of(order.id)] == [1000, 1997, 5000]
    assert sum(r["amount"] for r in stripe_refunds(emulator, order.stripe_payment_intent_id)) == 7997


@pytest.mark.parametrize("amount", ["79.98", "100", "0", "-5", "1.234", "abc", "NaN", "Infinity"])
def test_refund_over_remaining_or_malformed_is_refused(paid_order, emulator, amount):
    order = paid_order()
    with pytest.raises(refunds.RefundError):
        _request(order, amount)
    assert refunds_of(order.id) == []
    assert stripe_refunds(emulator, order.stripe_payment_intent_id) == []


def test_refund_over_what_remains_after_a_pending_refund_is_refused(paid_order, emulator):
    order = paid_order()
    _request(order, "70.00")  # not yet confirmed by events: still counts against what remains
    with pytest.raises(refunds.RefundError, match=r"At most \$9\.97"):
        _request(order, "10.00")
    emulator.deliver_pending()
    with pytest.raises(refunds.RefundError, match=r"At most \$9\.97"):
        _request(order, "9.98")
    _request(order, "9.97")
    emulator.deliver_pending()
    assert fresh_order(order.id).status == OrderStatus.REFUNDED
    with pytest.raises(refunds.RefundError, match="Only paid orders"):
        _request(order, "0.01")
    assert len(stripe_refunds(emulator, order.stripe_payment_intent_id)) == 2


def test_unpaid_order_cannot_be_refunded(place_order, emulator):
    order = place_order(A=1)
    with pytest.raises(refunds.RefundError, match="Only paid orders"):
        _request(order, "1.00")
    assert refunds_of(order.id) == []


def test_double_submit_of_the_same_form_makes_one_refund(paid_order, emulator):
    order = paid_order()
    sequence = refunds.next_refund_sequence(db.session, order.id)
    first = _request(order, "25.00", sequence=sequence)
    second = _request(order, "25.00", sequence=sequence)
    assert second.repeated and second.stripe_refund_id == first.stripe_refund_id
    assert len(stripe_refunds(emulator, order.stripe_payment_intent_id)) == 1
    # A stale form with another amount is refused rather than guessed at.
    with pytest.raises(refunds.RefundError, match="out of date"):
        _request(order, "30.00", sequence=sequence)
    emulator.deliver_pending()
    assert fresh_order(order.id).refunded_cents == 2500


def test_retry_after_a_lost_reply_reuses_the_key(paid_order, emulator):
    order = paid_order()
    sequence = refunds.next_refund_sequence(db.session, order.id)
    # Stripe makes the refund but the reply is lost: the shop cannot know, and says so.
    emulator.inject_fault("POST /v1/refunds", 500, times=1, process=True)
    with pytest.raises(refunds.RefundError) as info:
        _request(order, "12.00", sequence=sequence)
    assert info.value.status == 503
    assert [r.status for r in refunds_of(order.id)] == ["pending"]
    again = _request(order, "12.00", sequence=sequence)
    assert [r["id"] for r in stripe_refunds(emulator, order.stripe_payment_intent_id)] == [again.stripe_refund_id]
    emulator.deliver_pending()
    assert fresh_order(order.id).refunded_cents == 1200


def test_refund_made_outside_the_shop_is_applied(paid_order, emulator, stripe_dashboard):
    order = paid_order()
    outside = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": 500}
    )
    emulator.deliver_pending()
    partial = fresh_order(order.id)
    assert (partial.status, partial.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 500)
    [row] = refunds_of(order.id)
    assert (row.stripe_refund_id, row.amount_cents, row.status) == (outside.id, 500, "succeeded")
    assert row.requested_by == "outside the shop (Stripe)"
    # What remains for staff accounts for it.
    with pytest.raises(refunds.RefundError, match=r"At most \$74\.97"):
        _request(order, "75.00")
    stripe_dashboard.v1.refunds.create(params={"payment_intent": order.stripe_payment_intent_id})
    emulator.deliver_pending()
    assert (fresh_order(order.id).status, fresh_order(order.id).refunded_cents) == (OrderStatus.REFUNDED, 7997)


def test_refund_events_delivered_twice_or_out_of_order_are_no_ops(paid_order, emulator, stripe_dashboard):
    order = paid_order()
    emulator.hold_deliveries()
    pi = order.stripe_payment_intent_id
    stripe_dashboard.v1.refunds.create(params={"payment_intent": pi, "amount": 1000})
    stripe_dashboard.v1.refunds.create(params={"payment_intent": pi, "amount": 2000})
    emulator.release_deliveries(order="reverse", duplicate=2)
    emulator.deliver_pending()
    settled = fresh_order(order.id)
    assert (settled.status, settled.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 3000)
    assert sorted(r.amount_cents for r in refunds_of(order.id)) == [1000, 2000]
    changes = db.session.scalars(
        db.select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.to_status.is_not(None))
    ).all()
    # Reversed, the second refund's charge.refunded snapshot (3000 refunded) arrives first; every duplicate
    # and every older snapshot after that changed nothing.
    assert [(c.to_status, c.note) for c in changes[1:]] == [
        ("partially_refunded", "Refunded $30.00 of $79.97"),
    ]


def test_refund_events_naming_no_payment_of_ours_are_acknowledged(client, signed_post):
    import json

    for event_type in ("refund.updated", "charge.refunded"):
        body = json.dumps(
            {
                "id": f"evt_{event_type}",
                "object": "event",
                "type": event_type,
                "data": {"object": {"id": "re_x", "object": "refund"}},
            }
        ).encode()
        response = signed_post(body)
        assert response.status_code == 200 and response.get_data(as_text=True).strip() == "ignored"


def test_refund_event_with_a_non_ascii_order_number_is_acknowledged(client, signed_post):
    import json

    body = json.dumps(
        {
            "id": "evt_sup2",
            "object": "event",
            "type": "refund.updated",
            "data": {"object": {"id": "re_x", "object": "refund", "metadata": {"order_id": "²"}}},
        }
    ).encode()
    assert signed_post(body).status_code == 200
