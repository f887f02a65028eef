"""Recovery: refunds whose call was interrupted, or whose events were all lost.

`flask payments reconcile` re-sends a refund Stripe never answered with its original key while Stripe keeps
keys (asking.IDEMPOTENCY_KEY_LIFETIME), and asks Stripe about refunds still in flight, applying what it
reports as its events would have (events.py).
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from shopapp.extensions import db
from shopapp.gateway import GatewayBusy, GatewayError, get_gateway
from shopapp.models import (
    REFUND_IN_FLIGHT,
    Refund,
    RefundStatus,
)
from shopapp.models.base import utcnow
from shopapp.services.refunds.asking import SendOutcome, send_refund
from shopapp.services.refunds.events import RefundNotApplicable, _lock_order, _record_refund, _settle
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.refunds")


def unanswered_refunds(older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Ids of refunds the shop recorded but Stripe never answered (no Stripe id yet), oldest first."""
    cutoff = (now or utcnow()) - older_than
    ids = list(
        db.session.scalars(
            select(Refund.id)
            .where(
                Refund.status == RefundStatus.PENDING,
                Refund.stripe_refund_id.is_(None),
                Refund.idempotency_key.is_not(None),
                Refund.created_at <= cutoff,
            )
            .order_by(Refund.id)
        )
    )
    db.session.commit()  # end the read before any call to Stripe
    return ids


def resend_unanswered(older_than: timedelta, *, actor: str, now: datetime | None = None) -> Counter[str]:
    """Re-send every unanswered refund older than `older_than` (see send_refund); counts per SendOutcome."""
    now = now or utcnow()
    outcomes: Counter[str] = Counter()
    for refund_id in unanswered_refunds(older_than, now):
        outcome = send_refund(refund_id, actor=actor, now=now)
        outcomes[outcome.value] += 1
        log.info("Refund %s: %s (%s)", refund_id, outcome.value, actor)
    return outcomes


class RefreshOutcome(enum.StrEnum):
    """What asking Stripe about a refund still in flight did (unreachable: SendOutcome.UNREACHABLE)."""

    UPDATED = "updated"  # Stripe reports it moved on (succeeded, failed, canceled...): applied
    STILL_IN_FLIGHT = "still in flight"  # still pending or requires_action at Stripe


def refresh_in_flight(older_than: timedelta, *, actor: str, now: datetime | None = None) -> Counter[str]:
    """Ask Stripe about refunds still in flight (pending/requires_action, with a Stripe id) recorded longer
    ago than `older_than`, and apply what it reports, as its events would have; counts per outcome.

    Their events are the usual messenger, but they can all be lost (endpoint down past Stripe's days of
    retries, a wrong signing secret): then nothing else would ever move such a refund, and the amount would
    stay blocked as "in flight". One GET per such refund per run (refunds are rare). Never raises for
    Stripe's answers: an unreachable Stripe counts as SendOutcome.UNREACHABLE and is retried next run.
    """
    cutoff = (now or utcnow()) - older_than
    due = list(
        db.session.execute(
            select(Refund.order_id, Refund.stripe_refund_id)
            .where(
                Refund.status.in_(REFUND_IN_FLIGHT),
                Refund.stripe_refund_id.is_not(None),
                Refund.created_at <= cutoff,
            )
            .order_by(Refund.id)
        )
    )
    db.session.commit()  # end the read before any call to Stripe
    outcomes: Counter[str] = Counter()
    for order_id, stripe_refund_id in due:
        try:
            current = get_gateway().retrieve_refund(str(stripe_refund_id))
        except GatewayBusy:
            log.warning("Refund %s: Stripe is rate limiting; the rest waits for the next run", stripe_refund_id)
            outcomes[SendOutcome.UNREACHABLE.value] += 1
            break
        except GatewayError as error:
            log.warning("Refund %s: Stripe could not say how it stands (%s)", stripe_refund_id, error)
            outcomes[SendOutcome.UNREACHABLE.value] += 1
            continue
        try:
            with write_transaction() as session:
                order = _lock_order(session, order_id)
                changed = order is not None and _record_refund(session, order, current, actor)
                if order is not None:
                    _settle(session, order, actor)
        except RefundNotApplicable as error:
            # The order moved meanwhile: nothing stored; the next run asks again.
            log.warning("Refund %s: not applied this run (%s)", stripe_refund_id, error)
            outcomes[SendOutcome.UNREACHABLE.value] += 1
            continue
        outcome = RefreshOutcome.UPDATED if changed else RefreshOutcome.STILL_IN_FLIGHT
        outcomes[outcome.value] += 1
        log.info("Refund %s: %s (%s)", stripe_refund_id, outcome.value, actor)
    return outcomes
