"""Reconciliation: ask Stripe about every stale PENDING order, so a lost webhook heals within one run.

Each order's session is retrieved afresh and handed to checkout.finalize_checkout, the same function
the webhook and the success page use. A session Stripe still shows open after the order's own expiry
time is expired at Stripe first (so it can no longer be paid), then finalized from Stripe's answer.
Running it again changes nothing that is already settled.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from shopapp.extensions import db
from shopapp.gateway import GatewayBusy, GatewayError, GatewayRejected, SessionNotFound, get_gateway
from shopapp.models import Order, OrderStatus
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services import refunds, stock
from shopapp.services.checkout import (
    OrderNotFound,
    Outcome,
    SessionNotOurs,
    close_unknown_session,
    finalize_checkout,
)
from shopapp.services.ids import parse_ascii_int
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.reconcile")

ACTOR = "reconcile"
SUMMARY_ORDER = ("paid", "expired", "failed", "processing", "open", "flagged", "no-op", "error")


@dataclass
class ReconcileSummary:
    """How many stale orders were checked and what became of them."""

    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped_early: bool = False
    # Refunds re-sent (or given up), per refunds.SendOutcome value, and in-flight refunds looked up, per
    # refunds.RefreshOutcome value.
    refund_outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        """Orders and refunds Stripe could not tell us about this time."""
        return self.outcomes["error"] + self.refund_outcomes[refunds.SendOutcome.UNREACHABLE.value]

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        parts = ", ".join(f"{self.outcomes[name]} {name}" for name in SUMMARY_ORDER)
        tail = " (stopped early: Stripe is rate limiting)" if self.stopped_early else ""
        refund_part = ""
        if self.refund_outcomes:
            counts = ", ".join(f"{n} {name}" for name, n in sorted(self.refund_outcomes.items()))
            refund_part = f" Refunds asked about: {counts}."
        return f"Reconciled {self.checked} stale pending order(s): {parts}.{tail}{refund_part}"


@dataclass(frozen=True)
class StaleOrder:
    """What reconcile needs to know about one PENDING order."""

    id: int
    stripe_session_id: str | None
    session_expires_at: datetime | None


def stale_pending_orders(older_than: timedelta, limit: int, now: datetime | None = None) -> list[StaleOrder]:
    """PENDING orders created before now - older_than, oldest first."""
    cutoff = (now or utcnow()) - older_than
    rows = db.session.execute(
        select(Order.id, Order.stripe_session_id, Order.session_expires_at)
        .where(Order.status == OrderStatus.PENDING, Order.created_at <= cutoff)
        .order_by(Order.created_at, Order.id)
        .limit(limit)
    )
    result = [StaleOrder(*row) for row in rows]
    db.session.commit()  # end the read transaction before the per-order writes
    return result


def _expire_without_session(order_id: int) -> str:
    """An attempt whose session was never stored: once its expiry passed, Stripe cannot take payment for it."""
    with write_transaction() as session:
        order = session.get(Order, order_id, populate_existing=True)
        if order is None or order.status != OrderStatus.PENDING or order.stripe_session_id is not None:
            return "no-op"
        # If Stripe did create it, a late payment still wins: EXPIRED -> PAID is allowed.
        if order_rules.transition(
            session, order, OrderStatus.EXPIRED, actor=ACTOR, note="No session was stored and its time is up"
        ):
            stock.release(session, order)
            return "expired"
        return "no-op"


def _reconcile_one(order: StaleOrder, now: datetime) -> str:
    if order.stripe_session_id is None:
        if order.session_expires_at is None or order.session_expires_at <= now:
            return _expire_without_session(order.id)
        return "open"
    gateway = get_gateway()
    try:
        checkout_session = gateway.retrieve_checkout_session(order.stripe_session_id)
        abandoned = order.session_expires_at is not None and order.session_expires_at <= now
        if checkout_session.get("status") == "open" and abandoned:
            try:
                checkout_session = gateway.expire_checkout_session(order.stripe_session_id)
            except SessionNotFound:
                raise
            except GatewayRejected:
                # Paid or expired in the meantime: go by what Stripe says now.
                checkout_session = gateway.retrieve_checkout_session(order.stripe_session_id)
    except SessionNotFound:
        # Final: Stripe will never complete a session it does not have (state lost, or other keys).
        closed = close_unknown_session(order.id, order.stripe_session_id, actor=ACTOR, target=OrderStatus.EXPIRED)
        return "expired" if closed == Outcome.EXPIRED else "no-op"
    outcome = finalize_checkout(checkout_session, actor=ACTOR)
    return {Outcome.NOOP: "no-op"}.get(outcome, outcome.value)


def reconcile_pending(older_than: timedelta, *, limit: int = 500, now: datetime | None = None) -> ReconcileSummary:
    """Finalize or expire every stale PENDING order from a fresh look at its Checkout Session, then re-send
    refunds older than `older_than` that Stripe never answered (refunds.resend_unanswered: with their
    original key while Stripe keeps it, else looked up or marked failed), and ask Stripe about refunds
    still in flight that long (refunds.refresh_in_flight: their events may all have been lost)."""
    now = now or utcnow()
    summary = ReconcileSummary()
    for order in stale_pending_orders(older_than, limit, now):
        summary.checked += 1
        try:
            outcome = _reconcile_one(order, now)
        except GatewayBusy:
            log.warning("Reconcile stopped at order %s: Stripe is rate limiting", order.id)
            summary.outcomes["error"] += 1
            summary.stopped_early = True
            break
        except (GatewayError, SessionNotOurs, OrderNotFound) as error:
            log.warning("Reconcile could not settle order %s: %s", order.id, error)
            outcome = "error"
        summary.outcomes[outcome] += 1
        log.info("Reconcile order %s: %s", order.id, outcome)
    if not summary.stopped_early:
        # Refunds still in flight whose settling events may never come (all deliveries lost); first, so
        # that one re-sent below is left to its events until the next run.
        summary.refund_outcomes.update(refunds.refresh_in_flight(older_than, actor=ACTOR, now=now))
        summary.refund_outcomes.update(refunds.resend_unanswered(older_than, actor=ACTOR, now=now))
    log.info(summary.line())
    return summary


def parse_age(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' or a bare number of minutes, as a timedelta; ValueError otherwise."""
    value = text.strip().lower()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    unit = "minutes"
    if value and value[-1] in units:
        unit, value = units[value[-1]], value[:-1]
    amount = parse_ascii_int(value, max_digits=6)
    if amount is None:
        raise ValueError(f"{text!r} is not an age like 15m, 2h or 1d")
    return timedelta(**{unit: amount})
