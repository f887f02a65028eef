"""Applying Stripe's refund events (called by the webhook service inside its transaction).

A refund's status follows Stripe's lifecycle (pending/requires_action -> succeeded -> failed/canceled) and
never steps back for an older snapshot, so the order of the overlapping events (`charge.refunded`,
`charge.refund.updated`, `refund.created`, `refund.updated`, `refund.failed`) and duplicates change nothing.
Each refund is a fact (a Refund row); the order's status and refunded amount are derived from them by
orders.settle: a refund that fails after succeeding changes the refund's state, never the payment's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.gateway import get_gateway
from shopapp.models import (
    REFUND_IN_FLIGHT,
    EventOutcome,
    Order,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from shopapp.services import orders as order_rules
from shopapp.services import outbox
from shopapp.services.catalog import format_money
from shopapp.services.ids import parse_ascii_int

log = logging.getLogger("shopapp.refunds")


METADATA_KEY = "refund_key"
# Stripe keeps an idempotency key for at least 24 hours; a request with a key it has pruned makes a new
# object (API reference, "Idempotent requests": "Keys are eligible to be removed from the system
# automatically after they're at least 24 hours old"). A refund recorded longer ago than this is never
# re-sent: it could make a second refund.


OUTSIDE_ACTOR = "outside the shop (Stripe)"


class RefundNotApplicable(RuntimeError):
    """A refund event for an order that is not (yet) known to be paid: fail it so it is retried or replayed."""


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


succeeded_refund_cents = order_rules.succeeded_refund_cents


def _lock_order(session: Session, order_id: int) -> Order | None:
    # Serialises refund requests and refund events for one order (SQLite: BEGIN IMMEDIATE already does).
    return session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


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
    if order.paid_at is None:
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


def _settle(session: Session, order: Order, actor: str) -> bool:
    """Derive the order's status and refunded amount from its facts (orders.settle); whether it changed.

    Stripe reporting more refunded than paid is flagged (the amount shown is capped at the total)."""
    succeeded = succeeded_refund_cents(session, order.id)
    if succeeded > order.total_cents and not order.needs_review:
        order_rules.flag_for_review(
            session, order, f"Stripe reports {succeeded} refunded on a total of {order.total_cents}", actor=actor
        )
    refunded = min(succeeded, order.total_cents)
    note = f"Refunded {format_money(refunded, order.currency)} of {format_money(order.total_cents, order.currency)}"
    try:
        changed = order_rules.settle(session, order, actor=actor, note=note)
    except order_rules.ConcurrentChange as error:
        # Another event moved the order between our read and write; failing lets Stripe retry with fresh data.
        raise RefundNotApplicable(str(error)) from error
    if changed:
        log.info("Order %s: %s, refunded %s (%s)", order.id, order.status.value, refunded, actor)
    return changed


def apply_refund_event(session: Session, refund: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler for refund.created / refund.updated / refund.failed / charge.refund.updated (a Refund object)."""
    try:
        order = _order_for(session, refund)
    except RefundNotOurs:
        return EventOutcome.IGNORED, None
    changed = _record_refund(session, order, refund, actor)
    settled = _settle(session, order, actor)
    return (EventOutcome.APPLIED if changed or settled else EventOutcome.NO_OP), order.id


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


def apply_charge_refunded(session: Session, charge: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler for charge.refunded: record the refunds it lists (see complete_charge), then settle."""
    try:
        order = _order_for(session, charge)
    except RefundNotOurs:
        return EventOutcome.IGNORED, None
    if str(charge.get("currency") or order.currency).lower() != order.currency.lower():
        if not order.needs_review:
            order_rules.flag_for_review(
                session, order, f"refund in {charge.get('currency')} on a {order.currency} order", actor=actor
            )
        return EventOutcome.FLAGGED, order.id
    changed = False
    for refund in _listed_refunds(charge) or []:
        changed = _record_refund(session, order, refund, actor) or changed
    settled = _settle(session, order, actor)
    return (EventOutcome.APPLIED if changed or settled else EventOutcome.NO_OP), order.id
