"""Refunds: one door for every refund the shop makes, and Stripe's refund events settle the order.

Every refund the shop asks for (staff through the admin, or the shop itself for a late payment whose stock
was gone) is first recorded as a Refund row (status pending, `origin` saying what made it) with an
idempotency key derived from the order and the refund's sequence number ("order-<id>-refund-<n>"), which
is also sent in the refund's metadata; then it is sent to Stripe. The same form sent twice finds the same
row and the same key, so Stripe creates one refund; a refund whose call was interrupted is re-sent with
its original key by `flask payments reconcile` while Stripe still honours it (IDEMPOTENCY_KEY_LIFETIME).

The order moves only from what Stripe reports about refunds (events, or one list call when an event
lacks them), whoever made the refund. A refund's status follows Stripe's lifecycle
(pending/requires_action -> succeeded -> failed/canceled) and never steps back for an older snapshot, so
the order of the overlapping events (`charge.refunded`, `charge.refund.updated`, `refund.created`,
`refund.updated`, `refund.failed`) and duplicates change nothing. The order's refunded_cents is the sum of
its succeeded refunds: a card refund that fails after succeeding gives the amount back (the order leaves
REFUNDED) and flags the order for staff.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shopapp import currencies
from shopapp.extensions import db
from shopapp.gateway import GatewayBusy, GatewayError, GatewayRejected, get_gateway
from shopapp.models import (
    PAID_STATUSES,
    REFUND_IN_FLIGHT,
    REFUNDABLE_STATUSES,
    Order,
    OrderStatus,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services import outbox
from shopapp.services.catalog import format_money
from shopapp.services.ids import parse_ascii_int
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.refunds")

MAX_REASON_LENGTH = 500
# Stripe metadata values are limited to 500 characters.
METADATA_KEY = "refund_key"
# Stripe keeps an idempotency key for at least 24 hours; a request with a key it has pruned makes a new
# object (API reference, "Idempotent requests": "Keys are eligible to be removed from the system
# automatically after they're at least 24 hours old"). A refund recorded longer ago than this is never
# re-sent: it could make a second refund.
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)
OUTSIDE_ACTOR = "outside the shop (Stripe)"


class RefundError(ValueError):
    """A user-facing reason a refund was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RefundNotApplicable(RuntimeError):
    """A refund event for an order that is not (yet) known to be paid: fail it so it is retried or replayed."""


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
    """The idempotency key of the order's n-th refund request (staff or automatic)."""
    return f"order-{order_id}-refund-{sequence}"


def next_refund_sequence(session: Session, order_id: int) -> int:
    """The sequence number the next refund form for this order carries (1 for the first)."""
    count = session.scalar(
        select(func.count(Refund.id)).where(Refund.order_id == order_id, Refund.idempotency_key.is_not(None))
    )
    return int(count or 0) + 1


def _sum_refunds(session: Session, order_id: int, statuses: frozenset[RefundStatus]) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.order_id == order_id, Refund.status.in_(statuses)
        )
    )
    return int(total or 0)


def pending_refund_cents(session: Session, order_id: int) -> int:
    """Refunds in flight (pending or requires_action): they count against what remains, not as refunded."""
    return _sum_refunds(session, order_id, REFUND_IN_FLIGHT)


def succeeded_refund_cents(session: Session, order_id: int) -> int:
    """Refunds Stripe reports succeeded: what the order's refunded_cents settles to."""
    return _sum_refunds(session, order_id, frozenset({RefundStatus.SUCCEEDED}))


def remaining_refundable_cents(session: Session, order: Order) -> int:
    """Paid minus refunded minus refunds still in flight, in cents; 0 unless the order is refundable."""
    if order.status not in REFUNDABLE_STATUSES:
        return 0
    refunded = max(order.refunded_cents, succeeded_refund_cents(session, order.id))
    return max(0, order.total_cents - refunded - pending_refund_cents(session, order.id))


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


def _lock_order(session: Session, order_id: int) -> Order | None:
    # Serialises refund requests and refund events for one order (SQLite: BEGIN IMMEDIATE already does).
    return session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


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
    key = refund_key(order.id, next_refund_sequence(session, order.id))
    refund = Refund(
        order_id=order.id,
        idempotency_key=key,
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
    key = refund_key(order_id, sequence)
    with write_transaction() as session:
        order = _lock_order(session, order_id)
        if order is None:
            raise RefundError("That order does not exist.", status=404)
        amount_cents = to_cents(amount, order.currency)
        existing = session.scalar(select(Refund).where(Refund.idempotency_key == key))
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


# ---------------------------------------------------------------------------------------------
# Applying Stripe's refund events (called by the webhook service inside its transaction)


class RefundNotOurs(LookupError):
    """A refund or charge that names no payment of this shop: acknowledged and ignored."""


def _metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    # Stripe always sends an object here; a signed event with anything else names no order of ours.
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _payment_intent_of(obj: Mapping[str, Any]) -> str | None:
    pi = obj.get("payment_intent")
    if isinstance(pi, Mapping):
        pi = pi.get("id")
    return str(pi) if pi else None


# Set by the webhook's preparer on a refund or charge whose payment Stripe says no session of this shop made.
NOT_OURS = "_shop_payment_not_ours"


def unknown_payment_intent(obj: Mapping[str, Any]) -> str | None:
    """The payment intent of a refund or charge that no paid order has and whose metadata names no order;
    None when the shop knows it (or there is nothing to ask about). A plain read, ended before returning."""
    payment_intent = _payment_intent_of(obj)
    if payment_intent is None or parse_ascii_int(str(_metadata_of(obj).get("order_id") or "")) is not None:
        return None
    known = db.session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent))
    db.session.commit()
    return None if known is not None else payment_intent


def mark_not_ours(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` marked as a payment this shop never took: its handler acknowledges and ignores it."""
    return {**obj, NOT_OURS: True}


def _order_for(session: Session, obj: Mapping[str, Any]) -> Order:
    """The order a refund or charge belongs to, locked; RefundNotApplicable when it is not known to be paid."""
    if obj.get(NOT_OURS) is True:
        raise RefundNotOurs("Stripe has no Checkout Session of this shop for its payment")
    payment_intent = _payment_intent_of(obj)
    order_id = None
    if payment_intent:
        order_id = session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent))
    if order_id is None:
        named = str(_metadata_of(obj).get("order_id") or "")
        order_id = parse_ascii_int(named)
    if order_id is None and payment_intent is None:
        raise RefundNotOurs("names neither a payment intent nor an order")
    order = _lock_order(session, order_id) if order_id is not None else None
    if order is None:
        # Most likely the payment's own event has not been applied yet (lost or late webhook): failing makes
        # Stripe retry, and `flask payments replay --failed` applies it once reconcile has healed the order.
        raise RefundNotApplicable(f"no paid order is known for payment intent {payment_intent}")
    if order.status not in PAID_STATUSES:
        raise RefundNotApplicable(f"order {order.id} is {order.status.value}, not paid")
    return order


def _status_of(obj: Mapping[str, Any]) -> RefundStatus | None:
    try:
        return RefundStatus(str(obj.get("status")))
    except ValueError:
        return None  # a status this shop does not know: keep what it knew


def _row_for(session: Session, order: Order, stripe_id: str, metadata: Mapping[str, Any]) -> Refund | None:
    row = session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_id))
    if row is None and metadata.get(METADATA_KEY):
        # The shop's own refund, announced before the shop stored Stripe's id (the create call in flight).
        row = session.scalar(
            select(Refund).where(
                Refund.idempotency_key == str(metadata[METADATA_KEY]),
                Refund.order_id == order.id,
                Refund.stripe_refund_id.is_(None),
            )
        )
        if row is not None:
            row.stripe_refund_id = stripe_id
    return row


def _record_refund(session: Session, order: Order, obj: Mapping[str, Any], actor: str) -> bool:
    """Create or update the Refund row for one Stripe refund object; whether anything changed."""
    stripe_id = str(obj.get("id") or "")
    if not stripe_id.startswith(("re_", "pyr_")):
        return False
    status = _status_of(obj)
    amount = obj.get("amount")
    amount = amount if isinstance(amount, int) else 0
    metadata = _metadata_of(obj)
    row = _row_for(session, order, stripe_id, metadata)
    if row is None:
        if amount <= 0 or status is None:
            return False
        row = Refund(
            order_id=order.id,
            stripe_refund_id=stripe_id,
            amount_cents=amount,
            status=RefundStatus.PENDING,
            origin=RefundOrigin.OUTSIDE_SHOP,
            reason=str(metadata.get("reason") or obj.get("reason") or ""),
            requested_by=OUTSIDE_ACTOR,
        )
        session.add(row)
        order_rules.record_order_event(
            session,
            order,
            actor=actor,
            note=f"Refund {stripe_id} of {format_money(amount, order.currency)} made outside the shop",
        )
        session.flush()
        _apply_status(session, order, row, status, obj.get("failure_reason"), actor)
        return True
    changed = _apply_status(session, order, row, status, obj.get("failure_reason"), actor)
    session.flush()
    return changed


def _apply_status(
    session: Session, order: Order, row: Refund, status: RefundStatus | None, failure_reason: Any, actor: str
) -> bool:
    """Move the row along Stripe's lifecycle; an older snapshot (lower rank) or a repeat changes nothing."""
    old = row.status
    if status is None or status == old or status.rank < old.rank:
        return False
    if old.rank == status.rank == RefundStatus.FAILED.rank:
        return False  # failed and canceled are both final
    row.status = status
    money = format_money(row.amount_cents, order.currency)
    if status == RefundStatus.FAILED:
        reason = str(failure_reason or "unknown")
        row.failure_reason = reason
        # The customer did not get the money back: the amount is refundable again and staff must decide.
        after = "after it had succeeded" if old == RefundStatus.SUCCEEDED else "at Stripe"
        order_rules.flag_for_review(
            session,
            order,
            f"refund {row.stripe_refund_id} of {money} failed {after} ({reason}); the amount is refundable again",
            actor=actor,
        )
    elif status == RefundStatus.CANCELED:
        order_rules.record_order_event(
            session, order, actor=actor, note=f"Refund {row.stripe_refund_id} of {money} was canceled"
        )
    elif status == RefundStatus.REQUIRES_ACTION:
        order_rules.record_order_event(
            session,
            order,
            actor=actor,
            note=f"Refund {row.stripe_refund_id} of {money} requires action (Stripe asks the customer for details)",
        )
    elif status == RefundStatus.SUCCEEDED:
        outbox.enqueue_refund_notice(row)  # same transaction as Stripe's confirmation; one notice per refund
    return True


def _settle(session: Session, order: Order, actor: str) -> str:
    """Set refunded_cents to the sum of succeeded refunds and the status with it (compare-and-set)."""
    target = succeeded_refund_cents(session, order.id)
    if target > order.total_cents:
        if not order.needs_review:
            order_rules.flag_for_review(
                session, order, f"Stripe reports {target} refunded on a total of {order.total_cents}", actor=actor
            )
        target = order.total_cents
    if target == order.refunded_cents:
        return "no-op"
    if target == 0:
        new_status = OrderStatus.PAID
    elif target == order.total_cents:
        new_status = OrderStatus.REFUNDED
    else:
        new_status = OrderStatus.PARTIALLY_REFUNDED
    won = order_rules.transition(
        session,
        order,
        new_status,
        actor=actor,
        note=f"Refunded {format_money(target, order.currency)} of {format_money(order.total_cents, order.currency)}",
        values={"refunded_cents": target},
        expected={"refunded_cents": order.refunded_cents},
    )
    if not won:
        # Another event moved the order between our read and write; failing lets Stripe retry with fresh data.
        raise RefundNotApplicable(f"order {order.id} changed concurrently; retry")
    log.info("Order %s: %s, refunded %s (%s)", order.id, new_status.value, target, actor)
    return "applied"


def apply_refund_event(session: Session, refund: Mapping[str, Any], actor: str) -> tuple[str, int | None]:
    """Handler for refund.created / refund.updated / refund.failed / charge.refund.updated (a Refund object)."""
    try:
        order = _order_for(session, refund)
    except RefundNotOurs:
        return "ignored", None
    changed = _record_refund(session, order, refund, actor)
    settled = _settle(session, order, actor)
    return ("applied" if changed or settled == "applied" else "no-op"), order.id


def _listed_refunds(charge: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    listed = charge.get("refunds")
    if not isinstance(listed, Mapping) or not isinstance(listed.get("data"), list) or listed.get("has_more"):
        return None
    return [refund for refund in listed["data"] if isinstance(refund, Mapping)]


def complete_charge(charge: Mapping[str, Any]) -> Mapping[str, Any]:
    """Before `charge.refunded` is applied: add the charge's refunds when the event does not list them.

    Since API version 2022-11-15 a Charge includes `refunds` only when expanded, so the event says how
    much was refunded but not which refunds, nor their status. Then one Stripe call lists them, always:
    `amount_refunded` cannot tell a new refund from a known one whose failure is not announced yet (a
    failed refund gives its amount back to the charge, so a new refund of the same amount leaves the sum
    the shop believes unchanged). Duplicates of the event are answered before this runs, so it costs one
    call per distinct `charge.refunded`. Runs outside the write transaction (no Stripe call while holding
    it). Raises GatewayError when Stripe cannot answer (the event is then retried).
    """
    if _listed_refunds(charge) is not None or not str(charge.get("id") or "").startswith(("ch_", "py_")):
        return charge
    payment_intent = _payment_intent_of(charge)
    if payment_intent is None:
        return charge  # a Checkout payment always has one: not a charge of ours
    order_id = db.session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent))
    db.session.commit()  # end the read before calling Stripe
    if order_id is None:
        return charge  # not an order of ours (or not paid yet): the handler says which
    refunds = get_gateway().list_refunds(charge=str(charge["id"]))
    return {**charge, "refunds": {"object": "list", "data": refunds, "has_more": False}}


def apply_charge_refunded(session: Session, charge: Mapping[str, Any], actor: str) -> tuple[str, int | None]:
    """Handler for charge.refunded: record the refunds it lists (see complete_charge), then settle."""
    try:
        order = _order_for(session, charge)
    except RefundNotOurs:
        return "ignored", None
    if str(charge.get("currency") or order.currency).lower() != order.currency.lower():
        if not order.needs_review:
            order_rules.flag_for_review(
                session, order, f"refund in {charge.get('currency')} on a {order.currency} order", actor=actor
            )
        return "flagged", order.id
    changed = False
    for refund in _listed_refunds(charge) or []:
        changed = _record_refund(session, order, refund, actor) or changed
    settled = _settle(session, order, actor)
    return ("applied" if changed or settled == "applied" else "no-op"), order.id
