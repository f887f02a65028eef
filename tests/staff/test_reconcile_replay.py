"""`flask payments reconcile` and `flask payments replay`: heal lost webhooks, idempotently, from the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, PaymentEvent, Product
from shopapp.models.base import utcnow
from shopapp.services.reconcile import parse_age
from tests.conftest import fresh
from tests.staff.conftest import endpoint_down, fresh_order


def _age(order_id: int, minutes: int, *, session_expired: bool = False) -> None:
    """Make an order look `minutes` old to the shop (its creation and, optionally, its session expiry)."""
    past = utcnow() - timedelta(minutes=minutes)
    values = {"created_at": past}
    if session_expired:
        values["session_expires_at"] = past + timedelta(minutes=1)
    db.session.execute(update(Order).where(Order.id == order_id).values(**values))
    db.session.commit()


def _reconcile(runner, *args):
    return runner.invoke(args=["payments", "reconcile", *args])


def test_reconcile_heals_a_lost_payment_webhook(runner, place_order, emulator):
    order = place_order(A=2, C=1)
    with endpoint_down(emulator):
        emulator.pay(order.stripe_session_id)
        emulator.deliver_pending()
    assert fresh_order(order.id).status == OrderStatus.PENDING
    # Fresh orders are left alone by default (the shopper may still be on the payment page).
    result = _reconcile(runner)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("Reconciled 0 stale pending order(s)")
    assert fresh_order(order.id).status == OrderStatus.PENDING

    _age(order.id, 20)
    result = _reconcile(runner, "--older-than", "15m")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[0] == (
        "Reconciled 1 stale pending order(s): 1 paid, 0 expired, 0 failed, 0 processing, 0 open, 0 flagged, "
        "0 no-op, 0 error."
    )
    # Reconcile then sends due mail (here no SMTP server: the receipt waits, nothing is lost).
    assert result.stdout.splitlines()[1].startswith("Mail: 0 sent")
    paid = fresh_order(order.id)
    assert paid.status == OrderStatus.PAID
    assert paid.stripe_payment_intent_id == emulator.sessions[order.stripe_session_id]["payment_intent"]
    assert [e.actor for e in paid.events if e.to_status == "paid"] == ["reconcile"]
    # Safe to repeat: nothing stale is left.
    again = _reconcile(runner, "--older-than", "0s")
    assert again.stdout.startswith("Reconciled 0 stale pending order(s)")
    # The late webhook, when Stripe retries it, changes nothing.
    emulator.clock.advance(60)
    emulator.deliver_pending()
    assert [e.to_status for e in fresh_order(order.id).events if e.to_status] == ["paid"]


def test_reconcile_expires_an_abandoned_session(runner, place_order, emulator, products):
    db.session.execute(update(Product).where(Product.name == "Product B").values(stock=5))
    db.session.commit()
    order = place_order(B=2)
    assert fresh().get(Product, products["Product B"].id, populate_existing=True).reserved == 2
    _age(order.id, 90, session_expired=True)  # the shopper walked away long ago; Stripe still shows it open
    assert emulator.sessions[order.stripe_session_id]["status"] == "open"

    result = _reconcile(runner)
    assert result.exit_code == 0, result.stdout
    assert " 1 expired" in result.stdout
    assert emulator.sessions[order.stripe_session_id]["status"] == "expired"  # it can no longer be paid
    expired = fresh_order(order.id)
    assert expired.status == OrderStatus.EXPIRED
    assert fresh().get(Product, products["Product B"].id, populate_existing=True).reserved == 0
    assert _reconcile(runner).stdout.startswith("Reconciled 0 stale pending order(s)")


def test_reconcile_applies_an_expiry_whose_webhook_was_lost(runner, place_order, emulator):
    order = place_order(A=1)
    with endpoint_down(emulator):
        emulator.clock.advance(2 * 3600)
        emulator.tick()  # Stripe expires the session on its own clock; the event does not arrive
    assert emulator.sessions[order.stripe_session_id]["status"] == "expired"
    _age(order.id, 120)
    result = _reconcile(runner)
    assert " 1 expired" in result.stdout, result.stdout
    assert fresh_order(order.id).status == OrderStatus.EXPIRED
    assert emulator.call_counts.get("POST /v1/checkout/sessions/{id}/expire", 0) == 0


def test_reconcile_leaves_a_session_that_can_still_be_paid(runner, place_order, emulator):
    order = place_order(A=1)
    _age(order.id, 20)  # older than 15 minutes, but its session has not reached its expiry
    result = _reconcile(runner)
    assert " 1 open" in result.stdout, result.stdout
    assert fresh_order(order.id).status == OrderStatus.PENDING
    assert emulator.sessions[order.stripe_session_id]["status"] == "open"


def test_reconcile_reports_stripe_outage_and_exits_nonzero(runner, place_order, emulator):
    order = place_order(A=1)
    _age(order.id, 20)
    emulator.inject_fault("GET /v1/checkout/sessions/{id}", 503, times=5)
    result = _reconcile(runner)
    assert result.exit_code == 1
    assert " 1 error." in result.stdout
    assert fresh_order(order.id).status == OrderStatus.PENDING


@pytest.mark.parametrize("bad", ["soon", "15x", "-5m", ""])
def test_reconcile_refuses_a_bad_age(runner, bad):
    result = _reconcile(runner, "--older-than", bad)
    assert result.exit_code == 2
    assert "is not an age like 15m" in result.output


def test_parse_age():
    assert parse_age("90s") == timedelta(seconds=90)
    assert parse_age("15m") == parse_age("15") == timedelta(minutes=15)
    assert parse_age("2h") == timedelta(hours=2)
    assert parse_age("1d") == timedelta(days=1)


def test_replay_of_a_failed_event(runner, place_order, emulator, stripe_dashboard):
    """A refund made in Stripe's dashboard while the payment's own webhook was lost, and Stripe could not be
    asked which session made the payment: its events fail, and once reconcile has healed the payment,
    `replay --failed` applies them."""
    order = place_order(A=2, C=1)
    with endpoint_down(emulator):
        emulator.pay(order.stripe_session_id)
        emulator.deliver_pending()
    payment_intent = emulator.sessions[order.stripe_session_id]["payment_intent"]
    stripe_dashboard.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 1500})
    emulator.inject_fault("GET /v1/checkout/sessions", status=500, times=2)
    statuses = {status for _, status in emulator.deliver_pending()}
    assert statuses == {500}  # the shop cannot place the refund yet, so Stripe is asked to retry
    failed = fresh().scalars(db.select(PaymentEvent).where(PaymentEvent.outcome == "failed")).all()
    assert sorted(e.type for e in failed) == ["charge.refunded", "refund.created"]
    assert all(e.error for e in failed)

    _age(order.id, 20)
    assert " 1 paid" in _reconcile(runner).stdout
    result = runner.invoke(args=["payments", "replay", "--failed"])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip() == "Replayed 2 event(s): 1 applied, 1 no-op."
    refunded = fresh_order(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 1500)

    # Idempotent: nothing is failed any more, and replaying by id changes nothing.
    assert (
        runner.invoke(args=["payments", "replay", "--failed"]).stdout.strip() == "Replayed 0 event(s): nothing to do."
    )
    ids = [e.stripe_event_id for e in failed]
    by_id = runner.invoke(args=["payments", "replay", *ids])
    assert by_id.exit_code == 0 and by_id.stdout.strip() == "Replayed 2 event(s): 2 no-op."
    assert fresh_order(order.id).refunded_cents == 1500


def test_replay_unknown_event_and_usage(runner):
    unknown = runner.invoke(args=["payments", "replay", "evt_nope"])
    assert unknown.exit_code == 1 and unknown.stdout.strip() == "Replayed 1 event(s): 1 unknown."
    usage = runner.invoke(args=["payments", "replay"])
    assert usage.exit_code == 2 and "Give event ids" in usage.output
