"""Books that match Stripe: `flask payments audit` compares what the shop recorded with Stripe's balance.

Stripe's side is its balance transactions (docs "Balance transactions", "Reporting categories"): one `charge`
per payment (gross amount and Stripe's fee), one `refund` per refund (negative; a `refund_failure` gives it
back), dispute `adjustment`s. They are fetched by `created` range with their `source` expanded, 100 a page:
ceil(n / 100) calls for the whole window, whatever the number of orders.

The shop's side is built from small per-kind functions (`RECORDED`), each returning the movements of money the
shop recorded, keyed by the Stripe object Stripe keys its own by. Movements are compared per (kind, Stripe
object, currency); every mismatch is a Difference naming its day (UTC), currency, Stripe object and order.

Days are UTC days, not the shop's time zone: Stripe's `created` and `available_on` are UTC instants and its
balance reports and payouts cut days at midnight UTC by default, so a UTC day here is the same set of
transactions an owner sees in Stripe's balance report; UTC days also have no 23- or 25-hour days when
SHOP_TIMEZONE changes to or from summer time. (Times shown to staff stay in SHOP_TIMEZONE.)

Before comparing again, the run lists the events Stripe failed to deliver in the last 30 days
(`GET /v1/events?delivery_success=false`, docs "Process undelivered events") and processes each through the
webhook's own path (webhooks.process_event: idempotent, an event already applied changes nothing), so a
Dashboard refund whose `charge.refunded` was lost on a PAID order is found and healed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.gateway import GatewayError, GatewayRejected, get_gateway
from shopapp.models import AuditOutcome, AuditRun, Dispute, Order, Refund, RefundStatus
from shopapp.models.base import utcnow
from shopapp.services import webhooks
from shopapp.services.books import (
    DayTotals,
    Difference,
    Kind,
    Movement,
    compare,
    stripe_movements,
    totals,
)
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.audit")

# Stripe keeps events for 30 days ("Retrieve an event": events older than 30 days are not listed).
UNDELIVERED_LOOKBACK = timedelta(days=30)
# Stripe's side is fetched from this long before the window, so a payment the shop recorded a little after
# Stripe created its charge (a webhook delayed across midnight) still finds its counterpart.
EDGE_MARGIN = timedelta(hours=1)
# Shop records with no counterpart in the fetched range are looked up one by one (one call each), at most this
# many per run; normally there are none.
MAX_LOOKUPS = 50


@dataclass
class AuditReport:
    """What one run found: differences before and after processing undelivered events, per-day totals, the
    events processed (id, type, outcome) and the list calls made; `unreachable` when Stripe could not answer."""

    window_start: datetime
    window_end: datetime
    found: list[Difference] = field(default_factory=list)
    remaining: list[Difference] = field(default_factory=list)
    totals: list[DayTotals] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    list_calls: int = 0
    unreachable: str | None = None
    run_id: int | None = None

    @property
    def exit_code(self) -> int:
        """0: the books matched; 1: they did not (or an undelivered event could not be applied); 2: Stripe
        could not be reached."""
        if self.unreachable is not None:
            return 2
        failed = any(e["outcome"] == "failed" for e in self.events)
        return 1 if self.found or self.remaining or failed else 0


# ---------------------------------------------------------------- the shop's side, one function per kind

RecordedFn = Callable[[Session, datetime, datetime], list[Movement]]


def recorded_payments(session: Session, since: datetime, until: datetime) -> list[Movement]:
    """Every payment the shop recorded (orders with `paid_at`) in [since, until): its total, by PaymentIntent."""
    rows = session.execute(
        select(Order.id, Order.stripe_payment_intent_id, Order.total_cents, Order.currency, Order.paid_at).where(
            Order.paid_at >= since, Order.paid_at < until, Order.stripe_payment_intent_id.is_not(None)
        )
    )
    return [
        Movement(Kind.PAYMENT, str(pi), currency, total, paid_at, order_id)
        for order_id, pi, total, currency, paid_at in rows
        if paid_at is not None
    ]


# A refund takes the money when Stripe creates it, pending or not; a failed or canceled one gives it back.
_MONEY_OUT = frozenset({RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION, RefundStatus.SUCCEEDED})


def recorded_refunds(session: Session, since: datetime, until: datetime) -> list[Movement]:
    """Every refund Stripe made that the shop recorded (created in [since, until)): minus its amount, or 0 once
    it failed or was canceled (Stripe's `refund_failure` gives the money back), by refund id."""
    rows = session.execute(
        select(Refund.stripe_refund_id, Refund.amount_cents, Refund.status, Refund.created_at, Order.id,
               Order.currency)
        .join(Order, Order.id == Refund.order_id)
        .where(Refund.created_at >= since, Refund.created_at < until, Refund.stripe_refund_id.is_not(None))
    )  # fmt: skip
    return [
        Movement(Kind.REFUND, str(refund_id), currency, -amount if status in _MONEY_OUT else 0, at, order_id)
        for refund_id, amount, status, at, order_id, currency in rows
    ]


def recorded_fees(session: Session, since: datetime, until: datetime) -> list[Movement]:
    """Stripe fees the shop knows of. None yet: Stripe states a payment's fee only on its balance transaction,
    which the payment path never asks for (no Stripe call on the webhook path), so processing fees are shown
    as Stripe's figures in the totals, not compared. A dispute's fee is recorded: see recorded_disputes."""
    return []


def recorded_disputes(session: Session, since: datetime, until: datetime) -> list[Movement]:
    """The money each dispute opened in [since, until) moved, as its `charge.dispute.funds_withdrawn` /
    `funds_reinstated` facts recorded it (services.disputes, from Stripe's balance transactions): minus the
    amount withdrawn plus what was reinstated (Kind.DISPUTE), and the dispute fee kept (Kind.FEE), both keyed
    by the dispute id as Stripe keys its `adjustment`s. An inquiry moves no money and gives no movement."""
    rows = session.execute(
        select(Dispute.stripe_dispute_id, Dispute.currency, Dispute.withdrawn_cents, Dispute.withdrawn_fee_cents,
               Dispute.reinstated_cents, Dispute.reinstated_fee_cents, Dispute.created_at, Dispute.order_id)
        .where(Dispute.created_at >= since, Dispute.created_at < until)
    )  # fmt: skip
    movements = []
    for dispute_id, currency, withdrawn, fee, reinstated, fee_back, at, order_id in rows:
        if not (withdrawn or reinstated or fee or fee_back):
            continue
        movements.append(Movement(Kind.DISPUTE, str(dispute_id), currency, reinstated - withdrawn, at, order_id))
        movements.append(Movement(Kind.FEE, str(dispute_id), currency, fee - fee_back, at, order_id))
    return movements


# The shop's side: add a kind here.
RECORDED: tuple[RecordedFn, ...] = (recorded_payments, recorded_refunds, recorded_fees, recorded_disputes)


def shop_movements(session: Session, since: datetime, until: datetime) -> list[Movement]:
    """Everything the shop recorded in [since, until), all kinds."""
    return [movement for recorded in RECORDED for movement in recorded(session, since, until)]


def _with_orders(differences: list[Difference], stripe: list[Movement]) -> list[Difference]:
    """Name the order of each difference Stripe alone knows, by the PaymentIntent its source names."""
    intents = {(m.kind.value, m.stripe_id): m.payment_intent for m in stripe if m.payment_intent}
    wanted = {intents[(d.kind, d.stripe_id)] for d in differences if d.order_id is None and (d.kind, d.stripe_id)
              in intents}  # fmt: skip
    if not wanted:
        return differences
    with write_transaction() as session:
        query = select(Order.stripe_payment_intent_id, Order.id).where(Order.stripe_payment_intent_id.in_(wanted))
        orders = {str(intent): int(order_id) for intent, order_id in session.execute(query)}
    named = []
    for d in differences:
        intent = intents.get((d.kind, d.stripe_id))
        if d.order_id is None and intent in orders:
            d = Difference(**{**asdict(d), "order_id": orders[intent]})
        named.append(d)
    return named


def _look_up(differences: list[Difference]) -> list[Movement]:
    """Stripe's own record of shop-only payments and refunds outside the fetched range (one call each, at most
    MAX_LOOKUPS): a payment recorded long after its charge, near the window's start, is no difference."""
    found: list[Movement] = []
    for d in [d for d in differences if d.stripe_amount is None and d.kind in ("payment", "refund")][:MAX_LOOKUPS]:
        try:
            found += _stripe_record(d)
        except GatewayRejected as error:  # e.g. 404: Stripe has no such object, so the difference stands
            log.warning("Audit: Stripe has no %s %s: %s", d.kind, d.stripe_id, error)
    return found


def _stripe_record(d: Difference) -> list[Movement]:
    """Stripe's movement for one payment (its PaymentIntent's succeeded charge) or refund, asked directly."""
    gateway = get_gateway()
    if d.kind == Kind.PAYMENT:
        charge = gateway.retrieve_payment_intent(d.stripe_id).get("latest_charge")
        if not isinstance(charge, Mapping) or charge.get("status") != "succeeded":
            return []
        at = datetime.fromtimestamp(int(charge["created"]), UTC)
        return [Movement(Kind.PAYMENT, d.stripe_id, str(charge["currency"]), int(charge["amount"]), at)]
    refund = gateway.retrieve_refund(d.stripe_id)
    taken = refund.get("status") in {status.value for status in _MONEY_OUT}
    at = datetime.fromtimestamp(int(refund["created"]), UTC)
    return [Movement(Kind.REFUND, d.stripe_id, str(refund["currency"]), -int(refund["amount"]) if taken else 0, at)]


# ---------------------------------------------------------------- the run


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _list_calls(count: int) -> int:
    return max(1, math.ceil(count / 100))


def window(days: int, now: datetime) -> tuple[datetime, datetime]:
    """[midnight UTC `days` days before today, now): the last `days` whole UTC days and today so far."""
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    return today - timedelta(days=days), now


def _process_undelivered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply each undelivered event, oldest first, through the webhook's path: id, type, outcome and whether
    the shop had already applied it (Stripe keeps listing an event the endpoint never acknowledged)."""
    processed = []
    # Stripe lists newest first: reversed, then a stable sort by time, keeps Stripe's order within a second.
    for event in sorted(reversed(events), key=lambda e: int(e.get("created", 0))):
        duplicate = False
        try:
            result = webhooks.process_event(event)
            outcome, duplicate = result.outcome.value, result.duplicate
        except webhooks.WebhookProcessingError as error:
            log.warning("Undelivered event %s could not be applied: %s", event.get("id"), error)
            outcome = "failed"
        processed.append(
            {"id": str(event.get("id")), "type": str(event.get("type")), "outcome": outcome, "already": duplicate}
        )
    return processed


def run_audit(days: int = 1, *, now: datetime | None = None) -> AuditReport:
    """Compare the shop's books with Stripe's balance transactions over `window(days)`, heal what undelivered
    events explain, store the run (AuditRun) and return the report. Never raises for Stripe being down: the
    report says `unreachable` (exit 2)."""
    now = now or utcnow()
    since, until = window(days, now)
    report = AuditReport(since, until)
    gateway = get_gateway()
    fetch_from = since - EDGE_MARGIN
    try:
        transactions = gateway.list_balance_transactions(_timestamp(fetch_from), _timestamp(until) + 1)
        undelivered = gateway.list_undelivered_events(
            _timestamp(now - UNDELIVERED_LOOKBACK), list(webhooks.SUBSCRIBED_EVENTS)
        )
        report.list_calls = _list_calls(len(transactions)) + _list_calls(len(undelivered))
        stripe = stripe_movements(transactions)
        with write_transaction() as session:
            shop = shop_movements(session, fetch_from, until + timedelta(seconds=1))
        found = compare(stripe, shop, since)
        stripe += _look_up(found)
        report.found = _with_orders(compare(stripe, shop, since), stripe)
        report.events = _process_undelivered(undelivered)
        with write_transaction() as session:
            shop = shop_movements(session, fetch_from, utcnow() + timedelta(seconds=1))
        remaining = _with_orders(compare(stripe, shop, since), stripe)
    except GatewayError as error:
        log.warning("Audit: Stripe could not be reached: %s", error)
        report.unreachable = str(error) or type(error).__name__
        report.run_id = _store(report, AuditOutcome.UNREACHABLE)
        return report
    still = {(d.kind, d.stripe_id, d.currency) for d in remaining}
    report.found = [
        d if (d.kind, d.stripe_id, d.currency) in still else Difference(**{**asdict(d), "healed": True})
        for d in report.found
    ]
    report.remaining = remaining
    report.totals = totals(stripe, shop, since)
    report.run_id = _store(report, AuditOutcome.DIFFERENCES if remaining else AuditOutcome.MATCH)
    return report


def _store(report: AuditReport, outcome: AuditOutcome) -> int:
    with write_transaction() as session:
        run = AuditRun(
            window_start=report.window_start,
            window_end=report.window_end,
            outcome=outcome,
            found=len(report.found),
            differences=json.dumps([asdict(d) for d in report.remaining]),
            totals=json.dumps([asdict(t) for t in report.totals]),
            events=json.dumps(report.events),
            stripe_calls=report.list_calls,
            error=report.unreachable,
        )
        session.add(run)
        session.flush()
        return int(run.id)


@dataclass(frozen=True)
class LastAudit:
    """The latest audit run as the dashboard shows it."""

    ran_at: datetime
    outcome: AuditOutcome
    found: int
    differences: list[Difference]
    events: list[dict[str, Any]]
    error: str | None

    @property
    def healed_events(self) -> list[dict[str, Any]]:
        """The undelivered events this run applied for the first time."""
        return [e for e in self.events if not e.get("already") and e["outcome"] != "failed"]


def last_audit() -> LastAudit | None:
    """The most recent audit run, or None before the first."""
    run = db.session.scalar(select(AuditRun).order_by(AuditRun.ran_at.desc(), AuditRun.id.desc()).limit(1))
    if run is None:
        return None
    return LastAudit(
        run.ran_at,
        run.outcome,
        run.found,
        [Difference(**d) for d in json.loads(run.differences)],
        list(json.loads(run.events)),
        run.error,
    )
