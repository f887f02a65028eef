"""Webhook events: stored once, applied in the same transaction as their effect."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopapp.database import PlainRead
from shopapp.gateway import GatewayError, WebhookPayloadError, WebhookSignatureError, get_gateway
from shopapp.models import EventOutcome, PaymentEvent
from shopapp.models.base import utcnow
from shopapp.services.checkout import (
    OrderNotFound,
    SessionNotOurs,
    after_commit,
    apply_session,
    finalize_checkout,
    order_id_for_session,
)
from shopapp.services.disputes import EVENT_CREATED, apply_dispute_event, apply_fraud_warning_event
from shopapp.services.orders import ConcurrentChange
from shopapp.services.receipts import record_charge, record_invoice
from shopapp.services.refunds import (
    RefundNotApplicable,
    apply_charge_refunded,
    apply_refund_event,
    complete_charge,
    mark_not_ours,
    unknown_payment_intent,
)
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.webhooks")

# A handler records what the event says within the caller's transaction and returns the member stored on
# PaymentEvent.outcome, with the order it concerned.
Handler = Callable[[Session, Mapping[str, Any], str], tuple[EventOutcome, int | None]]


class WebhookSignatureInvalid(ValueError):
    """The payload or its Stripe-Signature header did not verify (or no webhook secret is set): answer 400."""


class MalformedEvent(ValueError):
    """A correctly signed body that is not a Stripe event we can store (no usable id or type): answer 400."""


class WebhookProcessingError(Exception):
    """Applying an event failed; it was rolled back and recorded, and Stripe should retry."""


class WebhookNotReady(WebhookProcessingError):
    """The event refers to an order or payment this shop does not know (yet); Stripe should retry later."""


@dataclass(frozen=True)
class WebhookResult:
    """What happened to one delivery."""

    event_id: str
    outcome: EventOutcome
    duplicate: bool = False


def _checkout_handler(payment_failed: bool = False) -> Handler:
    def handle(session: Session, obj: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
        try:
            outcome, order_id = apply_session(session, obj, actor=actor, payment_failed=payment_failed)
        except SessionNotOurs:
            return EventOutcome.IGNORED, None
        return outcome.event_outcome, order_id

    return handle


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_handler(),
    "checkout.session.async_payment_succeeded": _checkout_handler(),
    "checkout.session.async_payment_failed": _checkout_handler(payment_failed=True),
    "checkout.session.expired": _checkout_handler(),
    # Refunds move the order only when Stripe reports them, whoever made them. Which of these an endpoint
    # receives depends on its API version (card refunds: refund.* only from 2024-10-28.acacia on), and they
    # overlap: each is applied along the refund's lifecycle, so any subset, in any order, settles the same.
    # What paid (card brand and last 4) for the receipt, keyed by PaymentIntent so that it may come before or
    # after the session's event (services/receipts.py). No Stripe call: the Charge carries it.
    "charge.succeeded": record_charge,
    # Issue 23: the paid invoice Stripe made for an order (invoice_creation): its hosted page and PDF.
    "invoice.finalized": record_invoice,
    "invoice.paid": record_invoice,
    "charge.refunded": apply_charge_refunded,
    "charge.refund.updated": apply_refund_event,
    "refund.created": apply_refund_event,
    "refund.updated": apply_refund_event,
    "refund.failed": apply_refund_event,
    # Disputes and early fraud warnings are facts of their order, found by PaymentIntent or charge; one of
    # a payment no session of ours made is acknowledged and ignored (services/disputes.py).
    "charge.dispute.created": apply_dispute_event,
    "charge.dispute.updated": apply_dispute_event,
    "charge.dispute.closed": apply_dispute_event,
    "charge.dispute.funds_withdrawn": apply_dispute_event,
    "charge.dispute.funds_reinstated": apply_dispute_event,
    "radar.early_fraud_warning.created": apply_fraud_warning_event,
    "radar.early_fraud_warning.updated": apply_fraud_warning_event,
}
# Handlers that order snapshots by their event's `created` (passed in the object as EVENT_CREATED).
_TIMED = frozenset(t for t, h in HANDLERS.items() if h in (apply_dispute_event, apply_fraud_warning_event))
# The event types the shop subscribes its webhook endpoint to: exactly those it has handlers for.
SUBSCRIBED_EVENTS: tuple[str, ...] = tuple(HANDLERS)


# Run before the write transaction for these types: completes an event that lacks what the handler needs
# with a Stripe call (never made while holding the database's write lock).
def recognise_payment(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Preparer for refund events: settle who took the payment a refund or charge names, if the shop does not know.

    A refund can announce a payment whose own event is late or lost (the order still PENDING): the Checkout
    Session that made it names the order, so it is settled first from that fresh snapshot (finalize_checkout,
    as reconcile would), then the refund applies in the same delivery. A payment no session of the shop made
    (another integration on the same Stripe account) is marked so the handler acknowledges it: answering
    non-2xx would have Stripe retry it for days and flag, then disable, the endpoint. One Stripe call, only for
    a payment intent no paid order has. Raises GatewayError when Stripe cannot answer (retried).
    """
    payment_intent = unknown_payment_intent(obj)
    if payment_intent is None:
        return obj
    ours = False
    for checkout_session in get_gateway().list_checkout_sessions(payment_intent=payment_intent):
        try:
            order_id_for_session(checkout_session)
            finalize_checkout(checkout_session, actor="webhook (a refund arrived before its payment's event)")
        except SessionNotOurs:
            continue
        except OrderNotFound:
            pass  # names an order of ours not committed yet: the handler asks Stripe to retry
        ours = True
    return obj if ours else mark_not_ours(obj)


def _prepare_charge_refunded(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return complete_charge(recognise_payment(obj))


PREPARERS: dict[str, Callable[[Mapping[str, Any]], Mapping[str, Any]]] = {
    "charge.refunded": _prepare_charge_refunded,
    "charge.refund.updated": recognise_payment,
    "refund.created": recognise_payment,
    "refund.updated": recognise_payment,
    "refund.failed": recognise_payment,
    **dict.fromkeys(_TIMED, recognise_payment),
}


# Every delivery runs it first: a plain read (database.PlainRead) of the table's columns.
_events = PaymentEvent.__table__.c
_OUTCOME_OF_EVENT = PlainRead(select(_events.outcome).where(_events.stripe_event_id == bindparam("event_id")))
# Its outcome once applied, on the row _insert_event stored (error stays NULL, as stored).
_RECORD_OUTCOME = (
    update(cast(Table, PaymentEvent.__table__))
    .where(_events.id == bindparam("b_id"))
    .values(outcome=bindparam("outcome"), order_id=bindparam("order_id"), processed_at=bindparam("processed_at"))
)


@functools.cache
def _insert_event(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id, built once per dialect: the new row's id,
    or None when the event is stored already. A concurrent twin waits for the first one's commit (PostgreSQL's
    unique index; SQLite's one writer), then inserts nothing and reads the stored row."""
    table = cast(Table, PaymentEvent.__table__)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {
        name: bindparam(name, type_=table.c[name].type)
        for name in ("stripe_event_id", "type", "payload", "received_at")
    }
    return insert(table).values(values).on_conflict_do_nothing(index_elements=["stripe_event_id"]).returning(table.c.id)


def receive_webhook(payload: bytes, signature: str | None) -> WebhookResult:
    """Verify a delivery and process it.

    Raises WebhookSignatureInvalid or MalformedEvent (400), WebhookNotReady (409) or WebhookProcessingError
    (5xx).
    """
    try:
        event = get_gateway().parse_event(payload, signature)
    except WebhookPayloadError as error:  # authentic, but beyond the parse limits (depth, keys, items)
        raise MalformedEvent(str(error)) from error
    except WebhookSignatureError as error:
        raise WebhookSignatureInvalid(str(error)) from error
    # A NUL (JSON-escaped; a raw one is invalid JSON) could reach a text column, which PostgreSQL refuses.
    if b"\\u0000" in payload:
        raise MalformedEvent("the event contains a NUL character")
    event_id, event_type = event.get("id"), event.get("type")
    # Checked before anything is stored: the id and type columns hold at most 255 and 100 characters.
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255 or "\x00" in event_id:
        raise MalformedEvent("the event has no usable id")
    if not isinstance(event_type, str) or len(event_type) > 100 or "\x00" in event_type:
        raise MalformedEvent("the event has no usable type")
    return process_event(event, payload.decode("utf-8"))


def not_this_accounts(event: Mapping[str, Any], livemode: bool) -> str | None:
    """Why a verified event is not about this shop's own account and mode, or None when it is.

    An event with `account` set happened on a connected account (Connect; `stripe listen` forwards those to
    the same URL unless told otherwise); one whose `livemode` differs from the keys' mode belongs to the
    other mode (a test-mode copy of the shop, or live events reaching a staging endpoint). Neither is a fact
    about this shop's orders, whatever its metadata names (Stripe's Event object: `account`, `livemode`).
    """
    if event.get("account"):
        return f"from connected account {event.get('account')}"
    if "livemode" in event and bool(event.get("livemode")) != livemode:
        return f"livemode {event.get('livemode')} while the shop's keys are {'live' if livemode else 'test'}"
    return None


def process_event(event: Mapping[str, Any], raw: str | None = None, *, replay: bool = False) -> WebhookResult:
    """Store the event and apply it exactly once; a duplicate of an already processed event is a no-op."""
    event_id = str(event["id"])
    event_type = str(event.get("type", ""))
    data = event.get("data") or {}
    obj = data.get("object") if isinstance(data, Mapping) else None
    handler = HANDLERS.get(event_type)
    stranger = not_this_accounts(event, get_gateway().livemode)
    if stranger is not None:
        log.warning("Event %s (%s) ignored: %s", event_id, event_type, stranger)
        handler, obj = None, None
    actor = f"{'replay' if replay else 'webhook'} {event_id} ({event_type})"
    if not replay:
        # Stripe redelivers often: answer a known duplicate from a plain read, without taking the
        # write lock (BEGIN IMMEDIATE on SQLite) that would queue it behind every real payment.
        known = _OUTCOME_OF_EVENT.first(event_id=event_id)
        outcome = known[0] if known is not None else None
        if outcome is not None and outcome != EventOutcome.FAILED:
            # Debug, not info: a redelivery changes nothing (the stored event shows what happened), and
            # writing a log line was a tenth of answering one.
            log.debug("Duplicate event %s (%s): already %s", event_id, event_type, outcome)
            return WebhookResult(event_id, outcome, duplicate=True)
    if event_type in _TIMED and isinstance(obj, Mapping):
        obj = {**obj, EVENT_CREATED: event.get("created")}
    prepare = PREPARERS.get(event_type)
    if prepare is not None and isinstance(obj, Mapping):
        try:
            obj = prepare(obj)
        except GatewayError as error:
            log.warning("Event %s (%s): Stripe could not complete it: %s", event_id, event_type, error)
            _record_failure(event_id, event_type, raw if raw is not None else json.dumps(event), error)
            raise WebhookProcessingError(str(error)) from error
    try:
        with write_transaction() as session:
            # Stored in one statement; the existing row is read only when the event is known already.
            stored_id = session.scalar(
                _insert_event(session.get_bind().dialect.name),
                {
                    "stripe_event_id": event_id,
                    "type": event_type,
                    "payload": raw if raw is not None else json.dumps(event),
                    "received_at": utcnow(),
                },
            )
            row = None
            if stored_id is None:
                row = session.scalar(select(PaymentEvent).where(PaymentEvent.stripe_event_id == event_id))
                if row is None:  # deleted between the two statements: failed, and Stripe retries it
                    raise RuntimeError(f"event {event_id} was stored and is gone")
                if row.outcome != EventOutcome.FAILED and not replay:
                    log.info("Duplicate event %s (%s): already %s", event_id, event_type, row.outcome)
                    return WebhookResult(event_id, row.outcome, duplicate=True)
            if handler is None or not isinstance(obj, Mapping):
                outcome, order_id = EventOutcome.IGNORED, None
            else:
                outcome, order_id = handler(session, obj, actor)
            if row is None:
                session.execute(
                    _RECORD_OUTCOME,
                    {"b_id": stored_id, "outcome": outcome, "order_id": order_id, "processed_at": utcnow()},
                )
            else:
                row.outcome = outcome
                row.order_id, row.processed_at, row.error = order_id, utcnow(), None
        log.info("Event %s (%s): %s", event_id, event_type, outcome)
    except IntegrityError:
        log.info("Duplicate event %s (%s) arrived concurrently", event_id, event_type)
        return WebhookResult(event_id, EventOutcome.DUPLICATE, duplicate=True)
    except (OrderNotFound, RefundNotApplicable, ConcurrentChange) as error:
        # Not an error of ours: the event is ahead of what it refers to (its order not committed yet, a
        # refund before its payment). Kept as failed for replay, and refused so that Stripe tries again.
        log.warning("Event %s (%s) not applicable yet: %s", event_id, event_type, error)
        _record_failure(event_id, event_type, raw if raw is not None else json.dumps(event), error)
        raise WebhookNotReady(str(error)) from error
    except Exception as error:
        log.exception("Event %s (%s) failed; rolled back for a retry", event_id, event_type)
        _record_failure(event_id, event_type, raw if raw is not None else json.dumps(event), error)
        raise WebhookProcessingError(str(error)) from error
    after_commit(outcome, order_id)
    return WebhookResult(event_id, outcome)


def _record_failure(event_id: str, event_type: str, raw: str, error: Exception) -> None:
    """Keep the failed event (outcome=failed) for staff and replay; the effect itself was rolled back."""
    message = f"{type(error).__name__}: {error}"[:2000]
    try:
        with write_transaction() as session:
            row = session.scalar(select(PaymentEvent).where(PaymentEvent.stripe_event_id == event_id))
            if row is None:
                session.add(
                    PaymentEvent(
                        stripe_event_id=event_id,
                        type=event_type,
                        payload=raw,
                        outcome=EventOutcome.FAILED,
                        error=message,
                    )
                )
            elif row.outcome == EventOutcome.FAILED or row.processed_at is None:
                row.outcome, row.error = EventOutcome.FAILED, message
    except Exception as record_error:
        # The database itself may be what failed; the 5xx still makes Stripe retry.
        log.exception("Could not record the failure of event %s: %s", event_id, type(record_error).__name__)


def replay_events(event_ids: list[str]) -> list[WebhookResult]:
    """Re-run stored events by id (staff 'reprocess' and `flask payments replay`)."""
    results = []
    for event_id in event_ids:
        with write_transaction() as session:
            row = session.scalar(select(PaymentEvent).where(PaymentEvent.stripe_event_id == event_id))
            raw = row.payload if row is not None else None
        if raw is None:
            results.append(WebhookResult(event_id, EventOutcome.UNKNOWN))
            continue
        try:
            results.append(process_event(json.loads(raw), raw, replay=True))
        except WebhookProcessingError:
            results.append(WebhookResult(event_id, EventOutcome.FAILED))
    return results


def failed_event_ids() -> list[str]:
    """Ids of stored events whose processing failed."""
    with write_transaction() as session:
        return list(
            session.scalars(
                select(PaymentEvent.stripe_event_id)
                .where(PaymentEvent.outcome == EventOutcome.FAILED)
                .order_by(PaymentEvent.id)
            )
        )
