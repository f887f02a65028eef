"""Disputes and early fraud warnings: Stripe's events record facts of the order; staff answer with evidence.

Rules and their sources (docs.stripe.com): "Disputes: responding" (evidence fields, `submit=false` stages,
`submit=true` sends; the due date is `evidence_details.due_by`), "Early fraud warnings" (refund an actionable
warning to avoid a dispute), the Dispute object (`is_charge_refundable`, `balance_transactions` with the funds
withdrawn and reinstated). A dispute of a payment no session of this shop made is acknowledged and ignored,
like such a refund (webhooks.recognise_payment).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.gateway import GatewayError, GatewayUnavailable, get_gateway
from shopapp.models import (
    ChargePaymentMethod,
    Dispute,
    DisputeStanding,
    DisputeStatus,
    EarlyFraudWarning,
    EventOutcome,
    EvidenceState,
    MailKind,
    Order,
    OutboxMessage,
    User,
)
from shopapp.models.base import utcnow
from shopapp.services import brand, outbox
from shopapp.services import orders as order_rules
from shopapp.services.addresses import address_lines
from shopapp.services.catalog import format_money
from shopapp.services.clock import local_day, local_time
from shopapp.services.mail import message_id
from shopapp.services.refunds import RefundNotApplicable
from shopapp.services.refunds.events import NOT_OURS
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.disputes")

# Set by the webhook on dispute and warning objects: the `created` of the event that carried the snapshot.
EVENT_CREATED = "_shop_event_created"
REMINDER_BEFORE_DUE = timedelta(days=3)
# The evidence fields the admin page offers (text fields of Stripe's DisputeUpdateParams.evidence).
EVIDENCE_FIELDS = (
    "product_description",
    "customer_name",
    "customer_email_address",
    "billing_address",
    "shipping_address",
    "shipping_carrier",
    "shipping_tracking_number",
    "shipping_date",
    "service_date",
    "customer_communication_text",
    "uncategorized_text",
)
_SENT_FIELDS = tuple(f for f in EVIDENCE_FIELDS if f != "customer_communication_text")
MAX_EVIDENCE_FIELD = 20_000


class DisputeError(ValueError):
    """A user-facing reason an evidence request was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------ applying Stripe's events


def _staff_address() -> str:
    """Where dispute and fraud notices go: the brand's order address, else its contact address (a dispute is
    money at stake with a deadline: unlike a new-order notice, it is never left unsent)."""
    current = brand.cached_brand()
    return current.order_email or current.contact_email


def _due_context(row: Dispute) -> dict[str, Any]:
    # The due date as it was when the notice was queued (the order's own changes once the dispute closes).
    return {"due_by": row.due_by.isoformat() if row.due_by else None}


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _order_for(session: Session, obj: Mapping[str, Any]) -> Order | None:
    """The paid order whose payment `obj` (a dispute or warning) concerns, locked; None when not ours.

    Found by PaymentIntent, else by the charge (ChargePaymentMethod, from `charge.succeeded`). Raises
    RefundNotApplicable when the payment is ours but its order is not known to be paid yet (retried)."""
    if obj.get(NOT_OURS) is True:
        return None
    payment_intent = _id_of(obj.get("payment_intent"))
    charge = _id_of(obj.get("charge"))
    if payment_intent is None and charge is not None:
        payment_intent = session.scalar(
            select(ChargePaymentMethod.stripe_payment_intent_id).where(ChargePaymentMethod.stripe_charge_id == charge)
        )
    if payment_intent is None:
        return None
    order = session.scalar(select(Order).where(Order.stripe_payment_intent_id == payment_intent).with_for_update())
    if order is None or order.paid_at is None:
        raise RefundNotApplicable(f"no paid order is known yet for payment intent {payment_intent}")
    return order


def _status_of(obj: Mapping[str, Any]) -> DisputeStatus | None:
    try:
        return DisputeStatus(str(obj.get("status")))
    except ValueError:
        return None


def _money_moves(row: Dispute, obj: Mapping[str, Any]) -> None:
    """Withdrawn and reinstated funds from the snapshot's balance transactions: set, never added, and never
    lowered, so duplicates and older snapshots count once."""
    for txn in obj.get("balance_transactions") or []:
        if not isinstance(txn, Mapping):
            continue
        amount, fee = int(txn.get("amount") or 0), int(txn.get("fee") or 0)
        if txn.get("reporting_category") == "dispute_reversal" or amount > 0:
            row.reinstated_cents = max(row.reinstated_cents, amount)
            row.reinstated_fee_cents = max(row.reinstated_fee_cents, -fee)
        else:
            row.withdrawn_cents = max(row.withdrawn_cents, -amount)
            row.withdrawn_fee_cents = max(row.withdrawn_fee_cents, fee)


def _due_by(obj: Mapping[str, Any]) -> datetime | None:
    details = obj.get("evidence_details")
    due = details.get("due_by") if isinstance(details, Mapping) else None
    return datetime.fromtimestamp(int(due), UTC) if due else None


def _evidence_state(obj: Mapping[str, Any]) -> EvidenceState:
    details = obj.get("evidence_details")
    if not isinstance(details, Mapping):
        return EvidenceState.NONE
    if int(details.get("submission_count") or 0) > 0:
        return EvidenceState.SUBMITTED
    return EvidenceState.STAGED if details.get("has_evidence") else EvidenceState.NONE


_EVIDENCE_RANK = {EvidenceState.NONE: 0, EvidenceState.STAGED: 1, EvidenceState.SUBMITTED: 2}


def record_dispute(session: Session, order: Order, obj: Mapping[str, Any], created: int, *, actor: str) -> Dispute:
    """Record what a dispute snapshot says about `order` (idempotent; never against a stronger fact).

    A snapshot applies when its status ranks higher (closed > under review > needs response) or ranks the same
    and is not older (`created` of its event) than the one applied; money moves and the evidence state only
    grow. Returns the row; the caller settles the order.
    """
    stripe_id = str(obj["id"])
    status = _status_of(obj)
    row = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_id))
    if row is None:
        row = Dispute(
            stripe_dispute_id=stripe_id,
            order_id=order.id,
            stripe_charge_id=_id_of(obj.get("charge")) or "",
            stripe_payment_intent_id=_id_of(obj.get("payment_intent")),
            amount_cents=int(obj.get("amount") or 0),
            currency=str(obj.get("currency") or order.currency),
            reason=str(obj.get("reason") or "general")[:64],
            status=status or DisputeStatus.NEEDS_RESPONSE,
            due_by=_due_by(obj),
            is_charge_refundable=bool(obj.get("is_charge_refundable")),
            evidence_state=EvidenceState.NONE,
            last_event_created=created,
        )
        session.add(row)
        session.flush()
        due = local_time(row.due_by)
        order_rules.record_order_event(
            session,
            order,
            actor=actor,
            note=f"Dispute {stripe_id} opened ({row.reason}, {format_money(row.amount_cents, row.currency)})"
            + (f": respond by {due}" if due and not row.status.is_closed else ""),
        )
        outbox.enqueue_staff_notice(
            order, MailKind.DISPUTE_OPENED, f"dispute-{stripe_id}-opened", _staff_address(), _due_context(row)
        )
    elif status is not None and (
        status.rank > row.status.rank or (status.rank == row.status.rank and created >= row.last_event_created)
    ):
        if status != row.status:
            order_rules.record_order_event(
                session, order, actor=actor, note=f"Dispute {stripe_id}: {row.status.value} -> {status.value}"
            )
        row.status = status
        row.amount_cents = int(obj.get("amount") or row.amount_cents)
        row.due_by = _due_by(obj) or row.due_by
        row.is_charge_refundable = bool(obj.get("is_charge_refundable"))
        row.last_event_created = created
    state = _evidence_state(obj)
    if _EVIDENCE_RANK[state] > _EVIDENCE_RANK[row.evidence_state]:
        row.evidence_state = state
    _money_moves(row, obj)
    if row.status.is_closed:
        outbox.enqueue_staff_notice(order, MailKind.DISPUTE_CLOSED, f"dispute-{stripe_id}-closed", _staff_address())
    session.flush()
    return row


def apply_dispute_event(session: Session, obj: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler of the five `charge.dispute.*` events: record the dispute's snapshot on its order, settle it."""
    order = _order_for(session, obj)
    if order is None or not obj.get("id"):
        return EventOutcome.IGNORED, None
    record_dispute(session, order, obj, int(obj.get(EVENT_CREATED) or 0), actor=actor)
    order_rules.settle(session, order, actor=actor, disputes=True)
    return EventOutcome.APPLIED, order.id


def apply_fraud_warning_event(session: Session, obj: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler of `radar.early_fraud_warning.created/updated`: flag the order, tell staff once."""
    order = _order_for(session, obj)
    if order is None or not obj.get("id"):
        return EventOutcome.IGNORED, None
    stripe_id = str(obj["id"])
    created = int(obj.get(EVENT_CREATED) or 0)
    row = session.scalar(select(EarlyFraudWarning).where(EarlyFraudWarning.stripe_warning_id == stripe_id))
    if row is None:
        row = EarlyFraudWarning(
            stripe_warning_id=stripe_id,
            order_id=order.id,
            stripe_charge_id=_id_of(obj.get("charge")) or "",
            fraud_type=str(obj.get("fraud_type") or "misc")[:64],
            actionable=bool(obj.get("actionable")),
            last_event_created=created,
        )
        session.add(row)
        order_rules.record_order_event(
            session, order, actor=actor, note=f"Early fraud warning {stripe_id} ({row.fraud_type}) from the card issuer"
        )
        order_rules.flag_for_review(
            session,
            order,
            f"{order_rules.FRAUD_WARNING_REVIEW} ({row.fraud_type}): consider refunding to avoid a dispute",
            actor=actor,
        )
        outbox.enqueue_staff_notice(order, MailKind.FRAUD_WARNING, f"efw-{stripe_id}", _staff_address())
    elif not obj.get("actionable"):
        row.actionable = False  # never true again (Stripe: disputed or fully refunded)
    row.last_event_created = max(row.last_event_created, created)
    order.fraud_warning = True
    session.flush()
    return EventOutcome.APPLIED, order.id


def actionable_warning(order_id: int) -> EarlyFraudWarning | None:
    """The order's early fraud warning that a refund could still answer, if any."""
    return db.session.scalar(
        select(EarlyFraudWarning).where(EarlyFraudWarning.order_id == order_id, EarlyFraudWarning.actionable.is_(True))
    )


# ------------------------------------------------------------------ what the order shows


# What staff read of an open dispute once the shop has answered it (evidence submitted, or Stripe no longer
# asks for any): the due date is no longer theirs to meet.
AWAITING_DECISION = "evidence submitted, awaiting the card issuer's decision"


def staff_label(order: Order) -> str | None:
    """What staff read of an order's disputes: "Disputed: respond by 4 Dec" (the due date in the shop's time
    zone) while evidence is awaited, "Disputed: evidence submitted, awaiting ..." after, "Dispute won",
    "Dispute lost: 94.97 taken back"; None without a dispute. The order's due date is derived (orders.settle)
    from its open disputes that still await evidence."""
    if order.dispute_standing == DisputeStanding.OPEN:
        due = local_day(order.dispute_due_by)
        return f"Disputed: respond by {due}" if due else f"Disputed: {AWAITING_DECISION}"
    if order.dispute_standing == DisputeStanding.WON:
        return "Dispute won"
    if order.dispute_standing == DisputeStanding.LOST:
        return f"Dispute lost: {format_money(order.dispute_lost_cents, order.currency)} taken back (amount and fee)"
    return None


def order_disputes(order_id: int) -> list[Dispute]:
    """The order's disputes, oldest first."""
    return list(db.session.scalars(select(Dispute).where(Dispute.order_id == order_id).order_by(Dispute.id)))


@dataclass(frozen=True)
class OpenDispute:
    """One open dispute for the dashboard: soonest due first."""

    dispute_id: int
    order_id: int
    amount: str
    reason: str
    due: str
    evidence_state: EvidenceState
    awaits_evidence: bool  # False: answered, the card issuer decides (the due date no longer matters)

    @property
    def deadline(self) -> str:
        """What the lists show for when: "Respond by <due>" while evidence is awaited, else AWAITING_DECISION."""
        return f"Respond by {self.due}" if self.awaits_evidence else AWAITING_DECISION.capitalize()


def open_disputes(limit: int = 20) -> list[OpenDispute]:
    """Open disputes, soonest evidence due date first."""
    rows = db.session.scalars(
        select(Dispute)
        .where(Dispute.status.in_([s for s in DisputeStatus if not s.is_closed]))
        .order_by(Dispute.due_by.asc(), Dispute.id)
        .limit(limit)
    )
    return [
        OpenDispute(
            dispute_id=r.id,
            order_id=r.order_id,
            amount=format_money(r.amount_cents, r.currency),
            reason=r.reason,
            due=local_time(r.due_by),
            evidence_state=r.evidence_state,
            awaits_evidence=r.awaits_evidence,
        )
        for r in rows
    ]


# ------------------------------------------------------------------ reminders (cron)


def send_due_reminders(now: datetime | None = None) -> int:
    """Queue one staff reminder per open dispute due within 3 days with no evidence submitted (dedupe key per
    dispute: running it again, or from two machines, queues nothing more). Returns how many were queued."""
    now = now or utcnow()
    queued = 0
    with write_transaction() as session:
        rows = session.scalars(
            select(Dispute).where(
                Dispute.status.in_([DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WARNING_NEEDS_RESPONSE]),
                Dispute.evidence_state != EvidenceState.SUBMITTED,
                Dispute.due_by.is_not(None),
                Dispute.due_by <= now + REMINDER_BEFORE_DUE,
            )
        ).all()
        for row in rows:
            order = session.get(Order, row.order_id)
            if order is not None and outbox.enqueue_staff_notice(
                order,
                MailKind.DISPUTE_DUE_SOON,
                f"dispute-{row.stripe_dispute_id}-due-soon",
                _staff_address(),
                _due_context(row),
            ):
                queued += 1
    return queued


# ------------------------------------------------------------------ evidence


def _charged_besides_items(order: Order) -> list[str]:
    """The receipt's lines after the items, as the order pages show them (templates/_macros.html amount_rows):
    subtotal, discount, shipping and tax, only when Stripe charged any; so the evidence adds up to the total."""
    if not order.has_extras:
        return []

    def money(cents: int) -> str:
        return format_money(cents, order.currency)

    lines = [f"subtotal {money(order.subtotal_cents)}"]
    if order.amount_discount_cents:
        code = f" ({order.promotion_code})" if order.promotion_code else ""
        lines.append(f"discount{code} -{money(order.amount_discount_cents)}")
    if order.amount_shipping_cents or order.shipping_rate_name:
        rate = f" ({order.shipping_rate_name})" if order.shipping_rate_name else ""
        lines.append(f"shipping{rate} {money(order.amount_shipping_cents)}")
    if order.amount_tax_cents:
        included = " (included)" if order.tax_behavior == "inclusive" else ""
        lines.append(f"tax{included} {money(order.amount_tax_cents)}")
    return lines


def prefill_evidence(dispute: Dispute) -> dict[str, str]:
    """Stripe's evidence fields filled from what the shop knows of the order: items and amounts, the shopper,
    shipping address, carrier and tracking, the emails sent (dates and Message-IDs) and the order's timeline;
    once staff sent evidence (a draft, or the submission), what they sent."""
    if dispute.evidence_json:
        saved = json.loads(dispute.evidence_json)
        return {name: str(saved.get(name, "")) for name in EVIDENCE_FIELDS}
    order = db.session.get(Order, dispute.order_id)
    assert order is not None
    shopper = db.session.get(User, order.user_id)
    lines = [
        f"{item.quantity} x {item.product_name} at {format_money(item.unit_price_cents, order.currency)}"
        for item in order.items
    ]
    address = address_lines(order.shipping_address)
    sent = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id).order_by(OutboxMessage.id)
    ).all()
    emails = [
        f"{local_time(m.sent_at or m.created_at)} {m.kind.value.replace('_', ' ')} to {m.recipient}, "
        f"Message-ID {message_id(m.dedupe_key)}{'' if m.sent_at else ' (queued)'}"
        for m in sent
        if m.recipient == (shopper.email if shopper else None)
    ]
    timeline = [f"{local_time(e.created_at)} {e.note or (e.to_status or '')}" for e in order.events]
    total = format_money(order.total_cents, order.currency)
    receipt = f"Order #{order.id}, paid {local_time(order.paid_at)}, total {total}: " + "; ".join(
        lines + _charged_besides_items(order)
    )
    return {
        "product_description": "; ".join(lines),
        "customer_name": address[0] if address else "",
        "customer_email_address": shopper.email if shopper else "",
        "billing_address": "",
        "shipping_address": ", ".join(address[1:]) if len(address) > 1 else "",
        "shipping_carrier": order.shipping_carrier,
        "shipping_tracking_number": order.tracking_number,
        "shipping_date": local_time(order.shipped_at),
        "service_date": "",
        "customer_communication_text": "\n".join(emails),
        "uncategorized_text": "Receipt: " + receipt + "\n\nOrder timeline:\n" + "\n".join(timeline),
    }


def _evidence_to_send(evidence: Mapping[str, str]) -> dict[str, str]:
    sent = {name: str(evidence.get(name, "")).strip() for name in _SENT_FIELDS}
    communication = str(evidence.get("customer_communication_text", "")).strip()
    if communication:
        # Stripe's customer_communication takes a File; the emails' dates and Message-IDs go in the text.
        sent["uncategorized_text"] = sent["uncategorized_text"] + "\n\nEmails sent to the customer:\n" + communication
    for name, value in sent.items():
        if len(value) > MAX_EVIDENCE_FIELD:
            raise DisputeError(f"{name.replace('_', ' ').capitalize()} is longer than {MAX_EVIDENCE_FIELD} characters.")
    return {name: value for name, value in sent.items() if value}


def send_evidence(dispute_id: int, evidence: Mapping[str, str], *, submit: bool, version: int, actor: str) -> Dispute:
    """Stage (`submit=False`, "Save draft") or submit evidence for a dispute, once.

    `version` is the evidence_version the form was rendered with: the idempotency key is derived from it and
    the action, so a double click or a retry sends one request at Stripe, and a form older than the last
    send is refused (409). Raises DisputeError with a message for staff (503 when Stripe is unreachable).
    """
    fields = _evidence_to_send(evidence)
    with write_transaction() as session:
        row = session.get(Dispute, dispute_id)
        if row is None:
            raise DisputeError("That dispute does not exist.", status=404)
        if not row.awaits_evidence:
            raise DisputeError("Evidence for this dispute was already submitted; Stripe takes it once.", status=409)
        if version not in (row.evidence_version, row.evidence_version - 1):
            raise DisputeError("This form is out of date. Reload the dispute and try again.", status=409)
        stripe_id = row.stripe_dispute_id
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
        key = f"dispute-{stripe_id}-v{version}-{'submit' if submit else 'draft'}-{digest}"
    try:
        answer = get_gateway().update_dispute(stripe_id, fields, submit=submit, idempotency_key=key)
    except GatewayUnavailable as error:
        raise DisputeError(f"Stripe could not be reached; send the same form again: {error}", status=503) from error
    except GatewayError as error:
        raise DisputeError(f"Stripe refused the evidence: {error}", status=409) from error
    with write_transaction() as session:
        row = session.get(Dispute, dispute_id)
        order = session.get(Order, row.order_id) if row is not None else None
        assert row is not None and order is not None
        if row.evidence_version == version:
            row.evidence_version = version + 1
            row.evidence_json = json.dumps({name: str(evidence.get(name, "")) for name in EVIDENCE_FIELDS})
            order_rules.record_order_event(
                session,
                order,
                actor=actor,
                note=f"Dispute {stripe_id}: evidence {'submitted' if submit else 'saved as draft'}",
            )
        record_dispute(session, order, answer, row.last_event_created, actor=actor)
        order_rules.settle(session, order, actor=actor, disputes=True)
        session.flush()
        session.expunge(row)
        return row
