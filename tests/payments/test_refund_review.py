"""Refund event orders found by review (issue 14): a known refund's status can be stale when a new one arrives.

Same harness as test_refund_lifecycle.py: events shaped like Stripe's per webhook API version, the local Stripe
service playing the account.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shopapp.extensions import db
from shopapp.models import OrderStatus, PaymentEvent, RefundOrigin, RefundStatus
from shopapp.services import reconcile, refunds
from tests.conftest import fresh, order_for_session, session_id_from
from tests.payments.stripe_shapes import VERSIONS, set_stripe_refund_status
from tests.payments.test_refund_lifecycle import (
    TOTAL,
    assert_all_ok,
    charge_snapshot,
    refund_rows,
    refund_snapshot,
    reload,
    staff_refund,
    versioned,
)


@pytest.mark.parametrize("version", VERSIONS)
def test_new_refund_announced_while_an_older_one_has_failed_unannounced(
    version, paid_order, emulator, deliver, drop_service_events, stripe_dashboard
):
    """Refund A (19.99) succeeds and the shop knows it; at Stripe A then fails (expired card), giving its
    19.99 back to the charge; someone refunds 19.99 from Stripe's dashboard (B). B's `charge.refunded`
    arrives before A's failure events. Its `amount_refunded` (1999) equals what the shop believes refunded
    (A's 1999), yet it announces another refund: the shop must still learn of B."""
    order = paid_order()
    shapes = versioned(version)
    first = staff_refund(order, "19.99")
    drop_service_events()
    succeeded = refund_snapshot(shapes, emulator, first.stripe_refund_id)
    charge = charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999)
    assert_all_ok([deliver(e) for e in shapes.refund_created(succeeded, charge)])
    assert reload(order.id).refunded_cents == 1999

    set_stripe_refund_status(emulator, first.stripe_refund_id, "failed", "expired_or_canceled_card")
    failed = shapes.refund_changed(refund_snapshot(shapes, emulator, first.stripe_refund_id), "succeeded")
    outside = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": 1999}
    )
    drop_service_events()
    b_snapshot = refund_snapshot(shapes, emulator, outside.id)
    b_charge = charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999)
    # B's announcement overtakes A's failure.
    assert_all_ok([deliver(e) for e in shapes.refund_created(b_snapshot, b_charge) + failed])

    rows = {row.stripe_refund_id: row for row in refund_rows(order.id)}
    assert set(rows) == {first.stripe_refund_id, outside.id}
    assert (rows[first.stripe_refund_id].status, rows[outside.id].status, rows[outside.id].origin) == (
        RefundStatus.FAILED,
        RefundStatus.SUCCEEDED,
        RefundOrigin.OUTSIDE_SHOP,
    )
    after = reload(order.id)
    assert (after.status, after.refunded_cents, after.needs_review) == (OrderStatus.PARTIALLY_REFUNDED, 1999, True)
    assert refunds.remaining_refundable_cents(fresh(), after) == TOTAL - 1999


@pytest.mark.parametrize("arrival", ["in-order", "reversed"])
@pytest.mark.parametrize("version", VERSIONS)
def test_dashboard_refund_pending_then_succeeded_each_event_twice(
    version, arrival, paid_order, emulator, deliver, drop_service_events, stripe_dashboard
):
    """A refund made in Stripe's dashboard that starts pending and then succeeds, announced by what the
    endpoint's version sends (refund.created / charge.refunded, then charge.refund.updated / refund.updated),
    in either order and each twice: one row made outside the shop, the order settled once."""
    order = paid_order()
    shapes = versioned(version)
    outside = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": 1999}
    )
    drop_service_events()
    set_stripe_refund_status(emulator, outside.id, "pending")
    created = shapes.refund_created(
        refund_snapshot(shapes, emulator, outside.id),
        charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999),
    )
    set_stripe_refund_status(emulator, outside.id, "succeeded")
    changed = shapes.refund_changed(refund_snapshot(shapes, emulator, outside.id), previous_status="pending")
    events = created + changed
    if arrival == "reversed":
        events.reverse()

    assert_all_ok([deliver(e) for e in events + events])

    [row] = refund_rows(order.id)
    assert (row.stripe_refund_id, row.origin, row.status, row.amount_cents) == (
        outside.id,
        RefundOrigin.OUTSIDE_SHOP,
        RefundStatus.SUCCEEDED,
        1999,
    )
    after = reload(order.id)
    assert (after.status, after.refunded_cents, after.needs_review) == (OrderStatus.PARTIALLY_REFUNDED, 1999, False)
    assert refunds.remaining_refundable_cents(fresh(), after) == TOTAL - 1999


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
@pytest.mark.parametrize("version", VERSIONS)
def test_reconcile_settles_an_in_flight_refund_whose_events_were_lost(
    version, outcome, paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    """A refund the shop saw `pending` settles at Stripe, but none of its events reach the shop (endpoint down
    past Stripe's retries, or a wrong secret for days). Nothing else would ever tell the shop: reconcile asks
    Stripe for refunds still in flight (one GET per refund) and applies the answer."""
    order = paid_order()
    made = staff_refund(order, "19.99")
    drop_service_events()
    set_stripe_refund_status(emulator, made.stripe_refund_id, "pending")
    shapes = versioned(version)
    pending = refund_snapshot(shapes, emulator, made.stripe_refund_id)
    assert_all_ok(
        [
            deliver(e)
            for e in shapes.refund_created(
                pending, charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999)
            )
        ]
    )
    [row] = refund_rows(order.id)
    assert row.status == RefundStatus.PENDING
    set_stripe_refund_status(
        emulator, made.stripe_refund_id, outcome, "expired_or_canceled_card" if outcome == "failed" else None
    )
    drop_service_events()  # lost
    stripe_calls.calls.clear()

    summary = reconcile.reconcile_pending(timedelta(minutes=15), now=row.created_at + timedelta(hours=2))

    assert summary.errors == 0
    assert stripe_calls.refund_calls() == {"GET /v1/refunds/{id}": 1}
    [after] = refund_rows(order.id)
    settled = reload(order.id)
    if outcome == "succeeded":
        assert after.status == RefundStatus.SUCCEEDED
        assert (settled.status, settled.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    else:
        assert (after.status, after.failure_reason) == (RefundStatus.FAILED, "expired_or_canceled_card")
        assert (settled.status, settled.refunded_cents, settled.needs_review) == (OrderStatus.PAID, 0, True)
    assert refunds.remaining_refundable_cents(fresh(), settled) == TOTAL - settled.refunded_cents
    stripe_calls.calls.clear()
    reconcile.reconcile_pending(timedelta(minutes=15), now=row.created_at + timedelta(hours=3))
    assert stripe_calls.refund_calls() == {}  # settled: not asked again


def test_reconcile_leaves_a_recent_in_flight_refund_to_its_events(
    paid_order, emulator, deliver, drop_service_events, stripe_calls
):
    order = paid_order()
    made = staff_refund(order, "19.99")
    drop_service_events()
    set_stripe_refund_status(emulator, made.stripe_refund_id, "pending")
    shapes = versioned(VERSIONS[0])
    assert_all_ok(
        [
            deliver(e)
            for e in shapes.refund_created(
                refund_snapshot(shapes, emulator, made.stripe_refund_id),
                charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999),
            )
        ]
    )
    [row] = refund_rows(order.id)
    stripe_calls.calls.clear()
    reconcile.reconcile_pending(timedelta(minutes=15), now=row.created_at + timedelta(minutes=5))
    assert stripe_calls.refund_calls() == {}
    assert refund_rows(order.id)[0].status == RefundStatus.PENDING


@pytest.mark.parametrize("version", VERSIONS)
def test_the_services_own_events_at_each_endpoint_version(version, client, shopper, buy, emulator, stripe_dashboard):
    """End to end with the local service's own deliveries to an endpoint of `version`: card 4000 0000 0000 5126
    pays, a full staff refund succeeds and then fails (expired_or_canceled_card), then a dashboard refund."""
    for endpoint in emulator.store.webhook_endpoints.values():
        endpoint["api_version"] = version
    session_id = session_id_from(buy(A=2, C=1))
    assert emulator.pay(session_id, card="4000000000005126").status == 303
    emulator.deliver_pending()
    order = order_for_session(session_id)
    made = staff_refund(order, "79.97")
    emulator.deliver_pending()
    assert reload(order.id).status == OrderStatus.REFUNDED
    emulator.settle_refund(made.stripe_refund_id)  # the card's refund fails
    emulator.deliver_pending()
    failed = reload(order.id)
    assert (failed.status, failed.refunded_cents, failed.needs_review) == (OrderStatus.PAID, 0, True)
    assert "expired_or_canceled_card" in (failed.review_reason or "")
    outside = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": 1999}
    )
    emulator.deliver_pending()

    rows = {row.stripe_refund_id: row for row in refund_rows(order.id)}
    assert (rows[made.stripe_refund_id].status, rows[outside.id].status, rows[outside.id].origin) == (
        RefundStatus.FAILED,
        RefundStatus.SUCCEEDED,
        RefundOrigin.OUTSIDE_SHOP,
    )
    final = reload(order.id)
    assert (final.status, final.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    received = {e.type for e in fresh().scalars(db.select(PaymentEvent).where(PaymentEvent.order_id == order.id))}
    refund_events = {"refund.created", "refund.updated", "refund.failed"}
    assert (received & refund_events) == (refund_events if version >= "2024-10-28" else set())
    assert {"charge.refunded", "charge.refund.updated"} <= received


def test_reconcile_counts_an_unanswered_in_flight_look_up_as_an_error(
    paid_order, emulator, deliver, drop_service_events, runner
):
    order = paid_order()
    made = staff_refund(order, "19.99")
    drop_service_events()
    set_stripe_refund_status(emulator, made.stripe_refund_id, "pending")
    shapes = versioned(VERSIONS[0])
    assert_all_ok(
        [
            deliver(e)
            for e in shapes.refund_created(
                refund_snapshot(shapes, emulator, made.stripe_refund_id),
                charge_snapshot(shapes, emulator, order.stripe_payment_intent_id, 1999),
            )
        ]
    )
    set_stripe_refund_status(emulator, made.stripe_refund_id, "succeeded")
    drop_service_events()
    emulator.inject_fault("GET /v1/refunds/{id}", status=500)
    result = runner.invoke(args=["payments", "reconcile", "--older-than", "0s"])
    assert result.exit_code == 1 and "1 unreachable" in result.output, result.output
    assert refund_rows(order.id)[0].status == RefundStatus.PENDING  # unchanged; asked again next run
    result = runner.invoke(args=["payments", "reconcile", "--older-than", "0s"])
    assert result.exit_code == 0 and "1 updated" in result.output, result.output
    assert reload(order.id).refunded_cents == 1999


def _foreign_payment(stripe_dashboard, emulator) -> str:
    """A payment another integration of the same Stripe account took (its session names no order of ours)."""
    session = stripe_dashboard.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://elsewhere.example/ok",
            "cancel_url": "https://elsewhere.example/",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {"currency": "usd", "unit_amount": 5000, "product_data": {"name": "Gift card"}},
                }
            ],
        }
    )
    assert emulator.pay(session.id).status == 303
    return str(emulator.sessions[session.id]["payment_intent"])


@pytest.mark.parametrize("version", VERSIONS)
def test_refund_of_a_payment_not_ours_is_acknowledged_not_retried_for_days(
    version, paid_order, emulator, deliver, drop_service_events, stripe_dashboard
):
    """An account shared with another integration: its refunds reach the shop's endpoint too. Answering them
    non-2xx makes Stripe retry each for days and mark the endpoint failing (then disable it, and with it the
    shop's checkout events). They name a payment intent the shop never had: one look at Stripe tells."""
    order = paid_order()
    payment_intent = _foreign_payment(stripe_dashboard, emulator)
    drop_service_events()
    outside = stripe_dashboard.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 5000})
    drop_service_events()
    shapes = versioned(version)
    events = shapes.refund_created(
        refund_snapshot(shapes, emulator, outside.id), charge_snapshot(shapes, emulator, payment_intent, 5000)
    )
    responses = [deliver(e) for e in events]
    assert_all_ok(responses)
    assert {r.get_data(as_text=True).strip() for r in responses} == {"ignored"}
    assert refund_rows(order.id) == [] and reload(order.id).status == OrderStatus.PAID


@pytest.mark.parametrize("version", VERSIONS)
def test_refund_before_its_payment_event_heals_the_order_first(
    version, client, shopper, buy, emulator, deliver, drop_service_events, stripe_dashboard
):
    """The shop's own payment whose checkout.session.completed is late or lost, refunded from the dashboard:
    the refund event finds the session at Stripe, settles the order as paid, then applies the refund."""
    session_id = session_id_from(buy(A=2, C=1))
    assert emulator.pay(session_id).status == 303
    drop_service_events()  # the paid event is lost
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PENDING
    payment_intent = str(emulator.sessions[session_id]["payment_intent"])
    outside = stripe_dashboard.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 1999})
    drop_service_events()
    shapes = versioned(version)
    events = shapes.refund_created(
        refund_snapshot(shapes, emulator, outside.id), charge_snapshot(shapes, emulator, payment_intent, 1999)
    )
    assert_all_ok([deliver(e) for e in events + events])
    after = reload(order.id)
    assert (after.status, after.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1999)
    [row] = refund_rows(order.id)
    assert (row.stripe_refund_id, row.origin, row.status) == (
        outside.id,
        RefundOrigin.OUTSIDE_SHOP,
        RefundStatus.SUCCEEDED,
    )
