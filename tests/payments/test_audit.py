"""`flask payments audit`: the shop's books against Stripe's balance transactions, undelivered events healed,
the stall alert (issue 21, "Books that match Stripe")."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from bench.audit_calls import seed_paid_orders
from shopapp.models import (
    AuditOutcome,
    AuditRun,
    CheckoutAttempt,
    MailKind,
    Order,
    OrderStatus,
    OutboxMessage,
    RefundOrigin,
    User,
)
from shopapp.models.base import utcnow
from shopapp.services import audit, books, stall
from shopapp.services.tx import write_transaction
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, fresh, session_id_from


def runs() -> list[AuditRun]:
    return list(fresh().scalars(select(AuditRun).order_by(AuditRun.id)))


def reload(order_id: int) -> Order:
    order = fresh().get(Order, order_id, populate_existing=True)
    assert order is not None
    return order


def dashboard_page(app: Flask, make_user: Callable[..., User]) -> str:
    """The admin dashboard as a staff member sees it (a second browser)."""
    make_user("boss@example.com", staff=True)
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": "boss@example.com", "password": PASSWORD}).status_code in (
        302,
        303,
    )
    return str(browser.get("/admin/").get_data(as_text=True))


def run(runner: FlaskCliRunner, *args: str) -> Any:
    return runner.invoke(args=["payments", "audit", *args])


def test_matching_books_exit_0_and_the_dashboard_says_so(
    app: Flask,
    runner: FlaskCliRunner,
    paid_order: Callable[..., Order],
    stripe_dashboard: stripe.StripeClient,
    emulator: Emulator,
    client: FlaskClient,
    make_user: Callable[..., User],
    auth: Any,
) -> None:
    first, second = paid_order(), paid_order(A=1)
    stripe_dashboard.v1.refunds.create(params={"payment_intent": second.stripe_payment_intent_id, "amount": 300})
    emulator.deliver_pending()  # the shop hears of the Dashboard refund
    assert reload(second.id).refunded_cents == 300
    result = run(runner)
    assert result.exit_code == 0, result.output
    assert "Books match Stripe." in result.output
    day = utcnow().date().isoformat()
    # Per-day totals of both sides; Stripe's fees (2.9% + 30 cents a payment: 2.62 + 0.88) shown, not compared.
    assert f"{day} usd: Stripe paid $99.96, refunds -$3.00" in result.output, result.output
    assert "fees $3.50, net $93.46" in result.output and "shop paid $99.96, refunds -$3.00" in result.output
    assert [r.outcome for r in runs()] == [AuditOutcome.MATCH]
    assert first.id != second.id
    page = dashboard_page(app, make_user)
    assert "Books match Stripe as of" in page


def test_a_lost_dashboard_refund_is_found_and_healed(
    runner: FlaskCliRunner,
    paid_order: Callable[..., Order],
    stripe_dashboard: stripe.StripeClient,
    emulator: Emulator,
    client: FlaskClient,
    make_user: Callable[..., User],
    auth: Any,
) -> None:
    order = paid_order()
    # A refund made in Stripe's Dashboard, every event announcing it lost (the shop's endpoint failed until
    # Stripe gave up): reconcile never asks about a PAID order, so before this nothing would find it.
    emulator.lose_deliveries("charge.refunded")
    emulator.lose_deliveries("refund.created")
    refund = stripe_dashboard.v1.refunds.create(
        params={"payment_intent": order.stripe_payment_intent_id, "amount": 500}
    )
    emulator.deliver_pending()
    assert reload(order.id).status == OrderStatus.PAID and reload(order.id).refunded_cents == 0
    assert runner.invoke(args=["payments", "reconcile", "--older-than", "0s"]).exit_code == 0
    assert reload(order.id).refunded_cents == 0  # reconcile does not see it

    result = run(runner)
    assert result.exit_code == 1, result.output
    day = utcnow().date().isoformat()
    line = f"{day} usd: refund {refund.id} -5.00 at Stripe, not recorded (order #{order.id}) - healed by this run"
    assert line in result.output, result.output
    lost = {e["type"]: e["id"] for e in emulator.events() if e["type"] in ("charge.refunded", "refund.created")}
    # The first of them applies the refund; the other then changes nothing.
    assert f"Undelivered event {lost['refund.created']} (refund.created) processed: applied" in result.output
    assert f"Undelivered event {lost['charge.refunded']} (charge.refunded) processed: no-op" in result.output
    healed = reload(order.id)
    assert (healed.status, healed.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 500)
    assert [r.origin for r in healed.refunds] == [RefundOrigin.OUTSIDE_SHOP]
    assert runs()[-1].outcome == AuditOutcome.MATCH and runs()[-1].found == 1

    again = run(runner)  # the events are still undelivered at Stripe: processed again, changing nothing
    assert again.exit_code == 0, again.output
    assert "Books match Stripe." in again.output and "already applied" in again.output
    assert reload(order.id).refunded_cents == 500


def test_differences_are_listed_per_currency_and_shown_on_the_dashboard(
    app: Flask,
    runner: FlaskCliRunner,
    emulator: Emulator,
    client: FlaskClient,
    make_user: Callable[..., User],
    auth: Any,
) -> None:
    start = datetime.combine(utcnow().date(), datetime.min.time(), UTC)
    ids = seed_paid_orders(emulator, 4, start=start, span=timedelta(minutes=40), currencies=("usd", "eur"))
    # Stripe holds an extra EUR refund the shop never recorded, and the shop recorded a USD payment Stripe lacks.
    eur = reload(ids[1])
    assert eur.currency == "eur"
    with emulator.store.lock:
        txn = emulator.store.balance_transactions[
            emulator.store.charges[next(c for c in emulator.store.charges if c.endswith(f"{ids[1]:010d}x"))][
                "balance_transaction"
            ]
        ]
        del emulator.store.balance_transactions[
            emulator.store.charges[next(c for c in emulator.store.charges if c.endswith(f"{ids[0]:010d}x"))][
                "balance_transaction"
            ]
        ]
        refund = {
            "id": "re_auditextra000000000001",
            "amount": 250,
            "currency": "eur",
            "created": txn["created"] + 5,
            "payment_intent": eur.stripe_payment_intent_id,
            "charge": txn["source"],
            "object": "refund",
            "status": "succeeded",
        }
        emulator.store.refunds[refund["id"]] = refund
        from stripe_emulator import balance

        balance.record_refund(emulator.store, refund)
    result = run(runner)
    assert result.exit_code == 1, result.output
    day = start.date().isoformat()
    assert f"{day} eur: refund re_auditextra000000000001 -2.50 at Stripe, not recorded (order #{ids[1]})" in (
        result.output
    )
    first = reload(ids[0])
    assert f"{day} usd: payment {first.stripe_payment_intent_id} 79.97 recorded, not at Stripe (order #{ids[0]})" in (
        result.output
    )
    assert f"{day} eur: Stripe paid €159.94" in result.output and f"{day} usd: Stripe paid $79.97" in result.output
    stored = runs()[-1]
    assert stored.outcome == AuditOutcome.DIFFERENCES
    assert {d["currency"] for d in json.loads(stored.differences)} == {"usd", "eur"}
    page = dashboard_page(app, make_user)
    assert "Books differ from Stripe" in page
    assert f"/admin/orders/details/?id={ids[1]}" in page and "re_auditextra000000000001" in page


def test_stripe_down_exits_2_and_is_recorded(runner: FlaskCliRunner, paid_order: Callable[..., Order],
                                             emulator: Emulator) -> None:  # fmt: skip
    paid_order()
    emulator.inject_fault("GET /v1/balance_transactions", status="timeout")
    result = run(runner)
    assert result.exit_code == 2, result.output
    assert "Stripe could not be reached" in result.output
    assert runs()[-1].outcome == AuditOutcome.UNREACHABLE


def test_pages_of_100_and_as_few_calls_as_possible(
    app: Flask, runner: FlaskCliRunner, emulator: Emulator, stripe_calls: Any
) -> None:
    start = datetime.combine(utcnow().date(), datetime.min.time(), UTC) - timedelta(days=1)
    seed_paid_orders(emulator, 230, start=start, refund_every=10)  # 230 charges + 23 refunds: 253 transactions
    before = emulator.call_counts
    result = run(runner, "--days", "1")
    assert result.exit_code == 0, result.output
    calls = {k: v - before.get(k, 0) for k, v in emulator.call_counts.items() if v != before.get(k, 0)}
    assert calls == {"GET /v1/balance_transactions": 3, "GET /v1/events": 1}
    assert runs()[-1].stripe_calls == 4
    # --days 0 (today only) leaves yesterday out: one page of nothing.
    assert run(runner, "--days", "0").exit_code == 0


def _age_attempts(hours: float) -> None:
    with write_transaction() as session:
        session.execute(update(CheckoutAttempt).values(created_at=utcnow() - timedelta(hours=hours)))


def _stall_alerts() -> list[OutboxMessage]:
    return list(fresh().scalars(select(OutboxMessage).where(OutboxMessage.kind == MailKind.STALL_ALERT)))


def test_the_stall_alert_is_sent_once_per_stall(
    app: Flask,
    runner: FlaskCliRunner,
    buy: Callable[..., Any],
    shopper: User,
    emulator: Emulator,
    paid_order: Callable[..., Order],
) -> None:
    hours = app.config["STALL_ALERT_HOURS"]
    buy(A=1)
    buy(B=1)  # shoppers keep starting checkouts...
    assert stall.check_stall(hours) is None  # ...but not for long enough yet
    _age_attempts(hours + 1)
    result = run(runner)
    assert "Stall: 2 checkout(s) since" in result.output and "staff alerted" in result.output, result.output
    assert runner.invoke(args=["payments", "reconcile", "--older-than", "1d"]).exit_code == 0
    assert stall.check_stall(hours) is not None
    alerts = _stall_alerts()
    assert len(alerts) == 1 and alerts[0].recipient  # once per stall, however often it is checked
    assert "no paid order for 6 hours" in _subject(app, alerts[0])
    # A payment ends the stall; a later one is announced again.
    paid_order()
    assert stall.check_stall(hours) is None
    session_id_from(buy(C=1))
    with write_transaction() as session:
        latest = session.scalar(select(CheckoutAttempt).order_by(CheckoutAttempt.id.desc()).limit(1))
        assert latest is not None
        latest.created_at = utcnow() - timedelta(hours=hours + 1)
    assert stall.check_stall(hours) is None  # the paid order is newer than that attempt: no stall
    assert len(_stall_alerts()) == 1


def _subject(app: Flask, row: OutboxMessage) -> str:
    from shopapp.services import mail

    return mail.compose(row).subject


def test_window_and_plain_amounts() -> None:
    now = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
    assert audit.window(1, now) == (datetime(2026, 12, 6, tzinfo=UTC), now)
    assert books.plain_amount(-500, "usd") == "-5.00" and books.plain_amount(500, "jpy") == "500"
