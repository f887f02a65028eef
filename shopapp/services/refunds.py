"""Refunds: staff ask Stripe for them; Stripe's refund events (and only those) change the order.

A refund request is a Refund row (status "pending") with an idempotency key derived from the order and
the refund's sequence number, which the refund form carries: the same form sent twice finds the same
row and the same key, so Stripe creates one refund. The order's refunded_cents and its status
(PARTIALLY_REFUNDED / REFUNDED) move when `charge.refunded`, `refund.created` or `refund.updated`
arrive, whoever made the refund (the shop or someone in Stripe's dashboard); applying an event twice,
or an older snapshot after a newer one, changes nothing because the total only moves forward.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shopapp.gateway import GatewayError, GatewayRejected, get_gateway
from shopapp.models import Order, OrderStatus, Refund
from shopapp.services import orders as order_rules
from shopapp.services import outbox
from shopapp.services.catalog import format_money
from shopapp.services.ids import parse_ascii_int
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.refunds")

REFUNDABLE_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
SETTLED_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
MAX_REASON_LENGTH = 500
# Stripe metadata values are limited to 500 characters.
METADATA_KEY = "refund_key"


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


@dataclass(frozen=True)
class _Ask:
    refund_id: int
    payment_intent: str
    amount_cents: int
    currency: str
    key: str
    metadata: dict[str, str]
    stripe_refund_id: str | None


def refund_key(order_id: int, sequence: int) -> str:
    """The idempotency key of the order's n-th refund request."""
    return f"order-{order_id}-refund-{sequence}"


def next_refund_sequence(session: Session, order_id: int) -> int:
    """The sequence number the next refund form for this order carries (1 for the first)."""
    count = session.scalar(
        select(func.count(Refund.id)).where(Refund.order_id == order_id, Refund.idempotency_key.is_not(None))
    )
    return int(count or 0) + 1


def pending_refund_cents(session: Session, order_id: int) -> int:
    """Refunds asked of Stripe but not yet confirmed by an event (they count against what remains)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.order_id == order_id, Refund.status == "pending"
        )
    )
    return int(total or 0)


def remaining_refundable_cents(session: Session, order: Order) -> int:
    """Paid minus already refunded minus refunds still in flight; 0 unless the order is paid."""
    if order.status not in REFUNDABLE_STATUSES:
        return 0
    return max(0, order.total_cents - order.refunded_cents - pending_refund_cents(session, order.id))


def to_cents(amount: Decimal | str) -> int:
    """A positive amount in currency units (at most two decimals) as integer cents; RefundError otherwise."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise RefundError("Enter the amount as a number, e.g. 12.50.") from None
    cents = value * 100
    if not value.is_finite() or cents != cents.to_integral_value():
        raise RefundError("An amount can have at most two decimal places.")
    if cents <= 0:
        raise RefundError("The refund amount must be more than zero.")
    return int(cents)


def _lock_order(session: Session, order_id: int) -> Order | None:
    # Serialises refund requests and refund events for one order (SQLite: BEGIN IMMEDIATE already does).
    return session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


def _plan_refund(order_id: int, amount_cents: int, reason: str, requested_by: str, sequence: int) -> _Ask:
    """Record the request (or find the earlier identical one) in one transaction, before Stripe is called."""
    key = refund_key(order_id, sequence)
    with write_transaction() as session:
        order = _lock_order(session, order_id)
        if order is None:
            raise RefundError("That order does not exist.", status=404)
        existing = session.scalar(select(Refund).where(Refund.idempotency_key == key))
        if existing is not None:
            if existing.order_id != order.id or existing.amount_cents != amount_cents:
                raise RefundError(
                    "This refund form is out of date (another refund was requested meanwhile). "
                    "Reload the order and try again.",
                    status=409,
                )
            if existing.status == "failed":
                raise RefundError("Stripe refused this refund earlier. Reload the order to try again.", status=409)
            assert order.stripe_payment_intent_id is not None
            return _Ask(
                existing.id,
                order.stripe_payment_intent_id,
                amount_cents,
                order.currency,
                key,
                _metadata(order.id, key, existing.reason),
                existing.stripe_refund_id,
            )
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
        refund = Refund(
            order_id=order.id,
            idempotency_key=key,
            amount_cents=amount_cents,
            status="pending",
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
        return _Ask(
            refund.id,
            order.stripe_payment_intent_id,
            amount_cents,
            order.currency,
            key,
            _metadata(order.id, key, reason),
            None,
        )


def _metadata(order_id: int, key: str, reason: str) -> dict[str, str]:
    return {"order_id": str(order_id), METADATA_KEY: key, "reason": reason[:MAX_REASON_LENGTH]}


def request_refund(
    order_id: int, amount: Decimal | str, reason: str, *, requested_by: str, sequence: int
) -> RefundRequested:
    """Ask Stripe to refund `amount` of a paid order; the order itself changes when Stripe's events arrive.

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
    amount_cents = to_cents(amount)
    ask = _plan_refund(order_id, amount_cents, reason, requested_by, sequence)
    if ask.stripe_refund_id is not None:
        log.info("Order %s: refund %s already requested (%s)", order_id, ask.key, ask.stripe_refund_id)
        return RefundRequested(ask.refund_id, ask.stripe_refund_id, amount_cents, ask.currency, repeated=True)
    try:
        created = get_gateway().create_refund(ask.payment_intent, amount_cents, ask.key, ask.metadata)
    except GatewayRejected as error:
        _mark_refused(ask.refund_id, str(error), requested_by)
        raise RefundError(f"Stripe refused the refund: {error}") from error
    except GatewayError as error:
        # Outcome unknown: the row stays pending; sending the same form again retries with the same key.
        log.warning("Order %s: refund %s not confirmed (%s)", order_id, ask.key, type(error).__name__)
        raise RefundError(
            "Stripe could not be reached, so it is not known whether the refund was made. "
            "Send the same form again in a moment: it cannot refund twice.",
            status=503,
        ) from error
    stripe_refund_id = str(created["id"])
    with write_transaction() as session:
        # The webhook may already have attached this Stripe id (found by our key in the metadata).
        session.execute(
            update(Refund)
            .where(Refund.id == ask.refund_id, Refund.stripe_refund_id.is_(None))
            .values(stripe_refund_id=stripe_refund_id)
            .execution_options(synchronize_session=False)
        )
    log.info("Order %s: refund %s created as %s", order_id, ask.key, stripe_refund_id)
    return RefundRequested(ask.refund_id, stripe_refund_id, amount_cents, ask.currency, repeated=False)


def _mark_refused(refund_id: int, message: str, actor: str) -> None:
    with write_transaction() as session:
        refund = session.get(Refund, refund_id)
        if refund is None or refund.status != "pending":
            return
        refund.status = "failed"
        order = session.get(Order, refund.order_id)
        if order is not None:
            order_rules.record_order_event(session, order, actor=actor, note=f"Stripe refused the refund: {message}")


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


def _order_for(session: Session, obj: Mapping[str, Any]) -> Order:
    """The order a refund or charge belongs to, locked; RefundNotApplicable when it is not known to be paid."""
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
    if order.status not in SETTLED_STATUSES:
        raise RefundNotApplicable(f"order {order.id} is {order.status.value}, not paid")
    return order


def _record_refund(session: Session, order: Order, obj: Mapping[str, Any], actor: str) -> None:
    """Create or update the Refund row for one Stripe refund object."""
    stripe_id = str(obj.get("id") or "")
    if not stripe_id.startswith("re_"):
        return
    status = str(obj.get("status") or "pending")
    amount = obj.get("amount")
    amount = amount if isinstance(amount, int) else 0
    metadata = _metadata_of(obj)
    row = session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_id))
    if row is None and metadata.get(METADATA_KEY):
        row = session.scalar(
            select(Refund).where(Refund.idempotency_key == str(metadata[METADATA_KEY]), Refund.order_id == order.id)
        )
        if row is not None:
            row.stripe_refund_id = stripe_id
    if row is None:
        if amount <= 0:
            return
        row = Refund(
            order_id=order.id,
            stripe_refund_id=stripe_id,
            amount_cents=amount,
            status=status,
            reason=str(metadata.get("reason") or obj.get("reason") or ""),
            requested_by="outside the shop (Stripe)",
        )
        session.add(row)
        order_rules.record_order_event(
            session,
            order,
            actor=actor,
            note=f"Refund {stripe_id} of {format_money(amount, order.currency)} made outside the shop",
        )
        session.flush()
        if status == "succeeded":
            outbox.enqueue_refund_notice(row)  # same transaction; one notice per refund
        return
    if row.status == status:
        return
    if row.status == "succeeded" and status in ("failed", "canceled"):
        # Money Stripe had returned did not reach the customer: the total never moves back, so staff decide.
        order_rules.flag_for_review(session, order, f"refund {stripe_id} {status} after it had succeeded", actor=actor)
    row.status = status
    session.flush()
    if status == "succeeded":
        outbox.enqueue_refund_notice(row)  # same transaction; one notice per refund


def _settle(session: Session, order: Order, actor: str, stripe_refunded: int | None) -> str:
    """Move refunded_cents forward to what Stripe has confirmed and the status with it (compare-and-set)."""
    confirmed = int(
        session.scalar(
            select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.order_id == order.id, Refund.status == "succeeded"
            )
        )
        or 0
    )
    target = max(order.refunded_cents, confirmed, stripe_refunded or 0)
    if target > order.total_cents:
        if not order.needs_review:
            order_rules.flag_for_review(
                session, order, f"Stripe reports {target} refunded on a total of {order.total_cents}", actor=actor
            )
        target = order.total_cents
    if target == order.refunded_cents:
        return "no-op"
    new_status = OrderStatus.REFUNDED if target == order.total_cents else OrderStatus.PARTIALLY_REFUNDED
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
    """Handler for refund.created / refund.updated: record the refund, then settle the order."""
    try:
        order = _order_for(session, refund)
    except RefundNotOurs:
        return "ignored", None
    _record_refund(session, order, refund, actor)
    return _settle(session, order, actor, None), order.id


def apply_charge_refunded(session: Session, charge: Mapping[str, Any], actor: str) -> tuple[str, int | None]:
    """Handler for charge.refunded: record any refunds it lists, then settle to its amount_refunded."""
    try:
        order = _order_for(session, charge)
    except RefundNotOurs:
        return "ignored", None
    listed = charge.get("refunds")
    if isinstance(listed, Mapping):
        for refund in listed.get("data") or []:
            if isinstance(refund, Mapping):
                _record_refund(session, order, refund, actor)
    if str(charge.get("currency") or order.currency).lower() != order.currency.lower():
        if not order.needs_review:
            order_rules.flag_for_review(
                session, order, f"refund in {charge.get('currency')} on a {order.currency} order", actor=actor
            )
        return "flagged", order.id
    amount_refunded = charge.get("amount_refunded")
    # Stripe sends an integer; anything else is treated as absent (settle from the refunds we know).
    return _settle(session, order, actor, amount_refunded if isinstance(amount_refunded, int) else None), order.id
