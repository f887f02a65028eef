"""Asking Stripe for refunds: one door for every refund the shop makes.

Every refund the shop asks for (staff through the admin, or the shop itself for a late payment whose stock
was gone) is first recorded as a Refund row (status pending, `origin` saying what made it) with an
idempotency key derived from the order and the refund's sequence number ("order-<id>-refund-<n>"), which
is also sent in the refund's metadata; then it is sent to Stripe. The same form sent twice finds the same
row and the same key, so Stripe creates one refund; a refund whose call was interrupted is re-sent with
its original key by `flask payments reconcile` while Stripe still honours it (IDEMPOTENCY_KEY_LIFETIME).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shopapp import currencies
from shopapp.gateway import GatewayError, GatewayRejected, get_gateway
from shopapp.models import (
    REFUNDABLE_STATUSES,
    Order,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services.catalog import format_money
from shopapp.services.ids import random_key_part
from shopapp.services.refunds.events import (
    METADATA_KEY,
    RefundNotApplicable,
    _lock_order,
    _metadata_of,
    _record_refund,
    _settle,
    pending_refund_cents,
    succeeded_refund_cents,
)
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.refunds")


MAX_REASON_LENGTH = 500
# Stripe metadata values are limited to 500 characters.


IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


class RefundError(ValueError):
    """A user-facing reason a refund was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RefundRequested:
    """What a refund request did: the Stripe refund id, and whether this was a repeat of an earlier request."""

    refund_id: int
    stripe_refund_id: str
    amount_cents: int
    currency: str
    repeated: bool


class SendOutcome(enum.StrEnum):
    """What sending a recorded refund to Stripe did."""

    SENT = "sent"  # Stripe answered with the refund (made now, or replayed for the same key)
    ALREADY_SENT = "already sent"  # the row already names its Stripe refund, or is no longer pending
    REFUSED = "refused"  # Stripe refused it (4xx): the row is failed
    UNREACHABLE = "unreachable"  # the outcome is unknown: the row stays pending for a later retry
    FOUND = "found"  # too old to re-send, but Stripe has it (found by its key in the metadata)
    GAVE_UP = "gave up"  # too old to re-send and unknown to Stripe: marked failed, order flagged


@dataclass(frozen=True)
class _Ask:
    refund_id: int
    order_id: int
    payment_intent: str
    amount_cents: int
    currency: str
    key: str
    metadata: dict[str, str]
    stripe_refund_id: str | None
    created_at: datetime


def refund_key(order_id: int, sequence: int) -> str:
    """A new idempotency key for the order's n-th refund request (staff or automatic), stored on its row
    before Stripe is called: the random part (about 65 bits) keeps it unique to this shop's refund for ever (a
    restored backup or a second database on the account never reuses one Stripe still holds)."""
    return f"order-{order_id}-refund-{sequence}-{random_key_part()}"


def next_refund_sequence(session: Session, order_id: int) -> int:
    """The sequence number the next refund form for this order carries (1 for the first)."""
    count = session.scalar(
        select(func.count(Refund.id)).where(Refund.order_id == order_id, Refund.idempotency_key.is_not(None))
    )
    return int(count or 0) + 1


def remaining_refundable_cents(session: Session, order: Order) -> int:
    """Paid minus refunded minus refunds still in flight, in cents; 0 unless the order is refundable."""
    if order.status not in REFUNDABLE_STATUSES or dispute_blocks_refund(order) is not None:
        return 0
    refunded = max(order.refunded_cents, succeeded_refund_cents(session, order.id))
    return max(0, order.total_cents - refunded - pending_refund_cents(session, order.id))


def dispute_blocks_refund(order: Order) -> str | None:
    """Why a dispute forbids refunding the order now, for staff; None when none does.

    Stripe refuses to refund a charge whose dispute holds the funds ("has been charged back; cannot issue a
    refund", error `charge_disputed`; Dispute.is_charge_refundable false); a lost dispute took the money back
    for good. While any dispute is open the shop offers no refund at all: the bank is deciding."""
    if order.dispute_standing == "open":
        return "A refund is not possible while the payment is disputed: the customer's bank is deciding it."
    if order.dispute_standing == "lost":
        return (
            "A refund is not possible: the payment was charged back in a lost dispute (the money is already returned)."
        )
    return None


def to_cents(amount: Decimal | str, currency: str) -> int:
    """A positive amount typed in the currency's major units as integer minor units of that currency
    (shopapp.currencies: 12.50 USD -> 1250, 1500 JPY -> 1500, as Stripe's zero-decimal currencies are sent
    as is); RefundError with a message for staff otherwise."""
    try:
        minor = currencies.parse_amount(amount, currency)
    except currencies.AmountError as error:
        raise RefundError(str(error).replace("the price", "the amount")) from None
    if minor <= 0:
        raise RefundError("The refund amount must be more than zero.")
    return minor


def _metadata(order_id: int, key: str, reason: str) -> dict[str, str]:
    # Derived from the row alone, so a re-send carries exactly the parameters of the first request
    # (Stripe refuses a reused key with other parameters).
    return {"order_id": str(order_id), METADATA_KEY: key, "reason": reason[:MAX_REASON_LENGTH]}


def _ask(order: Order, refund: Refund) -> _Ask:
    assert order.stripe_payment_intent_id is not None and refund.idempotency_key is not None
    return _Ask(
        refund.id,
        order.id,
        order.stripe_payment_intent_id,
        refund.amount_cents,
        order.currency,
        refund.idempotency_key,
        _metadata(order.id, refund.idempotency_key, refund.reason),
        refund.stripe_refund_id,
        refund.created_at,
    )


def record_refund_request(
    session: Session, order: Order, amount_cents: int, reason: str, *, origin: RefundOrigin, requested_by: str
) -> Refund:
    """Within the caller's transaction: add the pending Refund row (with its key) and a timeline entry.

    The one way a refund of the shop's own comes to exist; send it after the commit with send_refund().
    The caller checks that the amount may be refunded.
    """
    sequence = next_refund_sequence(session, order.id)
    refund = Refund(
        order_id=order.id,
        idempotency_key=refund_key(order.id, sequence),
        sequence=sequence,
        amount_cents=amount_cents,
        status=RefundStatus.PENDING,
        origin=origin,
        reason=reason,
        requested_by=requested_by,
    )
    session.add(refund)
    session.flush()
    order_rules.record_order_event(
        session,
        order,
        actor=requested_by,
        note=f"Refund of {format_money(amount_cents, order.currency)} requested: {reason}",
    )
    return refund


def _plan_refund(order_id: int, amount: Decimal | str, reason: str, requested_by: str, sequence: int) -> _Ask:
    """Record the request (or find the earlier identical one) in one transaction, before Stripe is called.
    `amount` is as staff typed it, read in the order's currency (its minor units) once the order is known."""
    with write_transaction() as session:
        order = _lock_order(session, order_id)
        if order is None:
            raise RefundError("That order does not exist.", status=404)
        amount_cents = to_cents(amount, order.currency)
        existing = session.scalar(select(Refund).where(Refund.order_id == order.id, Refund.sequence == sequence))
        if existing is not None:
            if existing.order_id != order.id or existing.amount_cents != amount_cents:
                raise RefundError(
                    "This refund form is out of date (another refund was requested meanwhile). "
                    "Reload the order and try again.",
                    status=409,
                )
            if existing.status in (RefundStatus.FAILED, RefundStatus.CANCELED):
                raise RefundError(
                    f"This refund {existing.status.value} earlier. Reload the order to try again.", status=409
                )
            return _ask(order, existing)
        if sequence != next_refund_sequence(session, order.id):
            raise RefundError("This refund form is out of date. Reload the order and try again.", status=409)
        if order.status not in REFUNDABLE_STATUSES or not order.stripe_payment_intent_id:
            raise RefundError(f"Only paid orders can be refunded; this one is {order.status.label.lower()}.")
        blocked = dispute_blocks_refund(order)
        if blocked is not None:
            raise RefundError(blocked, status=409)
        remaining = remaining_refundable_cents(session, order)
        if amount_cents > remaining:
            raise RefundError(
                f"At most {format_money(remaining, order.currency)} can be refunded "
                f"(paid {format_money(order.total_cents, order.currency)}, already refunded or in progress "
                f"{format_money(order.total_cents - remaining, order.currency)})."
            )
        refund = record_refund_request(
            session, order, amount_cents, reason, origin=RefundOrigin.STAFF, requested_by=requested_by
        )
        return _ask(order, refund)


def request_refund(
    order_id: int, amount: Decimal | str, reason: str, *, requested_by: str, sequence: int
) -> RefundRequested:
    """Staff ask Stripe to refund `amount` of a paid order; the order itself changes when Stripe reports it.

    `sequence` is the number the refund form was rendered with (next_refund_sequence): a repeated submit
    of the same form makes no second refund. Raises RefundError with a message for staff.
    """
    reason = reason.strip()
    if not reason:
        raise RefundError("Give a reason for the refund.")
    if len(reason) > MAX_REASON_LENGTH:
        raise RefundError(f"The reason can be at most {MAX_REASON_LENGTH} characters.")
    if sequence < 1:
        raise RefundError("This refund form is out of date. Reload the order and try again.", status=409)
    ask = _plan_refund(order_id, amount, reason, requested_by, sequence)
    amount_cents = ask.amount_cents
    if ask.stripe_refund_id is not None:
        log.info("Order %s: refund %s already requested (%s)", order_id, ask.key, ask.stripe_refund_id)
        return RefundRequested(ask.refund_id, ask.stripe_refund_id, amount_cents, ask.currency, repeated=True)
    outcome, detail = _send(ask, actor=requested_by, now=utcnow())
    if outcome == SendOutcome.REFUSED:
        raise RefundError(f"Stripe refused the refund: {detail}")
    if outcome == SendOutcome.UNREACHABLE:
        raise RefundError(
            "Stripe could not be reached, so it is not known whether the refund was made. "
            "Send the same form again in a moment: it cannot refund twice.",
            status=503,
        )
    if outcome == SendOutcome.GAVE_UP:
        raise RefundError(f"This refund was never confirmed and is too old to send again: {detail}", status=409)
    return RefundRequested(ask.refund_id, detail, amount_cents, ask.currency, repeated=outcome != SendOutcome.SENT)


def send_refund(refund_id: int, *, actor: str, now: datetime | None = None) -> SendOutcome:
    """Send one recorded, unanswered refund to Stripe with its original idempotency key.

    For the automatic out-of-stock refunds and for reconcile's re-send of a refund whose call was
    interrupted. Never makes a second refund: a row older than IDEMPOTENCY_KEY_LIFETIME is not re-sent;
    it is looked up at Stripe by its key and otherwise marked failed and flagged for staff. Never raises
    for Stripe's answers (see SendOutcome).
    """
    with write_transaction() as session:
        refund = session.get(Refund, refund_id, populate_existing=True)
        if refund is None or refund.stripe_refund_id is not None or refund.status != RefundStatus.PENDING:
            return SendOutcome.ALREADY_SENT
        order = session.get(Order, refund.order_id)
        if order is None or not order.stripe_payment_intent_id or refund.idempotency_key is None:
            return SendOutcome.ALREADY_SENT
        ask = _ask(order, refund)
    outcome, _detail = _send(ask, actor=actor, now=now or utcnow())
    return outcome


def _send(ask: _Ask, *, actor: str, now: datetime) -> tuple[SendOutcome, str]:
    """Call Stripe for a recorded refund and store what it answered; (outcome, Stripe id or message)."""
    if now - ask.created_at >= IDEMPOTENCY_KEY_LIFETIME:
        return _too_old_to_send(ask, actor=actor)
    try:
        created = get_gateway().create_refund(ask.payment_intent, ask.amount_cents, ask.key, ask.metadata)
    except GatewayRejected as error:
        _mark_failed(ask.refund_id, f"Stripe refused the refund: {error}", actor=actor, flag=False)
        return SendOutcome.REFUSED, str(error)
    except GatewayError as error:
        # Outcome unknown: the row stays pending; the same key is used again by the next attempt.
        log.warning("Order %s: refund %s not confirmed (%s)", ask.order_id, ask.key, type(error).__name__)
        return SendOutcome.UNREACHABLE, str(error)
    stripe_refund_id = str(created["id"])
    _store_stripe_id(ask, stripe_refund_id, actor=actor)
    log.info("Order %s: refund %s created as %s", ask.order_id, ask.key, stripe_refund_id)
    return SendOutcome.SENT, stripe_refund_id


def _store_stripe_id(ask: _Ask, stripe_refund_id: str, *, actor: str) -> None:
    """Attach Stripe's refund id to the row; the webhook may have done it already (found by our key)."""
    with write_transaction() as session:
        _lock_order(session, ask.order_id)
        other = session.scalar(
            select(Refund).where(Refund.stripe_refund_id == stripe_refund_id, Refund.id != ask.refund_id)
        )
        if other is not None:
            # A row an event made for this refund before it could be matched to ours (e.g. metadata lost):
            # one refund, one row. Keep ours (it has the key and the reason) with the event's newer status.
            ours = session.get(Refund, ask.refund_id)
            status, failure_reason = other.status, other.failure_reason
            session.delete(other)
            session.flush()
            if ours is not None:
                ours.stripe_refund_id = stripe_refund_id
                if status.rank > ours.status.rank:
                    ours.status, ours.failure_reason = status, failure_reason
            return
        stored = session.execute(
            update(Refund)
            .where(Refund.id == ask.refund_id, Refund.stripe_refund_id.is_(None))
            .values(stripe_refund_id=stripe_refund_id)
            .execution_options(synchronize_session=False)
        )
        order = session.get(Order, ask.order_id)
        if stored.rowcount and order is not None:  # type: ignore[attr-defined]
            order_rules.record_order_event(
                session,
                order,
                actor=actor,
                note=f"Refund {stripe_refund_id} of {format_money(ask.amount_cents, ask.currency)} sent to Stripe",
            )


def _too_old_to_send(ask: _Ask, *, actor: str) -> tuple[SendOutcome, str]:
    """Past the key's lifetime a re-send could refund twice: find the refund at Stripe by key, or give up."""
    try:
        made = get_gateway().list_refunds(payment_intent=ask.payment_intent)
    except GatewayError as error:
        return SendOutcome.UNREACHABLE, str(error)
    for refund in made:
        if _metadata_of(refund).get(METADATA_KEY) == ask.key:
            try:
                with write_transaction() as session:
                    order = _lock_order(session, ask.order_id)
                    if order is not None:
                        _record_refund(session, order, refund, actor)
                        _settle(session, order, actor)
            except RefundNotApplicable as error:
                # An event moved the order meanwhile (or it is not paid): nothing stored; the next run retries.
                return SendOutcome.UNREACHABLE, str(error)
            return SendOutcome.FOUND, str(refund.get("id"))
    reason = (
        f"refund {ask.key} of {format_money(ask.amount_cents, ask.currency)} was recorded but never confirmed by "
        f"Stripe, and Stripe has no refund with that key; it is older than "
        f"{int(IDEMPOTENCY_KEY_LIFETIME.total_seconds() // 3600)} h, so it was not sent again (it could refund "
        f"twice). Marked failed: refund again if the customer is still owed the money"
    )
    _mark_failed(ask.refund_id, reason, actor=actor, flag=True)
    return SendOutcome.GAVE_UP, reason


def _mark_failed(refund_id: int, message: str, *, actor: str, flag: bool) -> None:
    with write_transaction() as session:
        refund = session.get(Refund, refund_id, populate_existing=True)
        if refund is None or refund.status != RefundStatus.PENDING:
            return
        order = _lock_order(session, refund.order_id)
        refund.status, refund.failure_reason = RefundStatus.FAILED, message[:2000]
        if order is None:
            return
        if flag:
            order_rules.flag_for_review(session, order, message, actor=actor)
        else:
            order_rules.record_order_event(session, order, actor=actor, note=message)
