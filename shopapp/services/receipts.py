"""What paid an order, for its receipt: the card brand and last 4 (or the bank account's last 4) of the charge.

Where it comes from (real Stripe, no Stripe call while answering a webhook):

1. `charge.succeeded` (subscribed in services/webhooks.py): its Charge carries
   `payment_method_details.type` and, for a card, `payment_method_details.card.brand` / `.last4` (the SDK's
   `Charge.PaymentMethodDetails.Card`), plus `payment_intent`. The handler records that as a fact keyed by
   the charge (unique: a redelivery is a no-op) and its PaymentIntent (models.ChargePaymentMethod).
   Stripe does not order its events: `charge.succeeded` often comes before `checkout.session.completed`, which
   is what tells the shop which PaymentIntent paid its order. Keying the fact by PaymentIntent instead of by
   order makes both orders settle the same, with no retry: the order shows the fact through its
   `stripe_payment_intent_id` whenever both are known (`payment_method_for`).
2. The receipt email is composed when the outbox sends it (services/mail.py), possibly before
   `charge.succeeded` arrived (or when the endpoint was subscribed before this event type was added).
   Then, outside any webhook request, `payment_method_for_receipt` asks Stripe once for the PaymentIntent
   with `latest_charge` expanded (present from API 2022-11-15 on, and at the SDK's pin) and records the same
   fact. If Stripe cannot answer, the receipt goes without the line rather than wait: the order page shows it
   as soon as the event arrives.

Only succeeded charges are recorded (a declined attempt before the paying one is not "how you paid"); the
newest succeeded charge of an intent wins. Nothing else of the card is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.gateway import GatewayError, get_gateway
from shopapp.models import ChargePaymentMethod, EventOutcome, Order
from shopapp.services.ids import parse_ascii_int
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.receipts")

# Stripe's card brand values (Charge.payment_method_details.card.brand) as shoppers know them.
BRAND_NAMES = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "link": "Link",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


@dataclass(frozen=True)
class PaymentMethodSummary:
    """What paid: Stripe's `payment_method_details.type`, the card brand ("visa", "" for non-cards) and last 4."""

    type: str
    brand: str
    last4: str

    @property
    def label(self) -> str:
        """ "Visa ending in 4242", "Bank account ending in 6789", or the type's words for anything else."""
        if self.type == "card":
            name = BRAND_NAMES.get(self.brand) or gettext("Card")
        elif self.type == "us_bank_account":
            name = gettext("Bank account")
        else:
            name = self.type.replace("_", " ").capitalize()
        return gettext("%(name)s ending in %(last4)s", name=name, last4=self.last4) if self.last4 else name


def _details(charge: Mapping[str, Any]) -> tuple[str, str, str] | None:
    details = charge.get("payment_method_details")
    if not isinstance(details, Mapping) or not isinstance(details.get("type"), str):
        return None
    method_type = str(details["type"])[:40]
    specific = details.get(method_type)
    specific = specific if isinstance(specific, Mapping) else {}
    brand = specific.get("brand") if method_type == "card" else ""
    last4 = specific.get("last4")
    return method_type, str(brand or "")[:40], str(last4 or "")[-4:]


def record_charge(session: Session, charge: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler of `charge.succeeded`: record what paid the charge, within the caller's transaction.

    Returns (APPLIED, order id or None) for a new fact, (NO_OP, ...) for a charge already recorded, and
    (IGNORED, None) for a charge that did not succeed, names no PaymentIntent or has no
    payment_method_details. Never raises for a charge of another integration: the fact is harmless and
    matches no order.
    """
    charge_id, payment_intent = charge.get("id"), charge.get("payment_intent")
    if isinstance(payment_intent, Mapping):  # expanded
        payment_intent = payment_intent.get("id")
    details = _details(charge)
    if charge.get("status") != "succeeded" or not isinstance(charge_id, str) or not isinstance(payment_intent, str):
        return EventOutcome.IGNORED, None
    if details is None:
        return EventOutcome.IGNORED, None
    order_id = session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent).limit(1))
    known = session.scalar(select(ChargePaymentMethod.id).where(ChargePaymentMethod.stripe_charge_id == charge_id))
    if known is not None:
        return EventOutcome.NO_OP, order_id
    created = charge.get("created")
    session.add(
        ChargePaymentMethod(
            stripe_charge_id=charge_id,
            stripe_payment_intent_id=payment_intent,
            type=details[0],
            brand=details[1],
            last4=details[2],
            charged_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else datetime.now(UTC),
        )
    )
    session.flush()  # a concurrent twin fails here on the unique charge id (answered as a duplicate)
    log.info("Charge %s of %s paid by %s (%s)", charge_id, payment_intent, details[0], actor)
    return EventOutcome.APPLIED, order_id


def record_invoice(session: Session, invoice: Mapping[str, Any], actor: str) -> tuple[EventOutcome, int | None]:
    """Handler of `invoice.paid` / `invoice.finalized` (issue 23, `invoice_creation`): keep the paid invoice's
    hosted page and PDF on the order its metadata names (`invoice_data.metadata.order_id`, set by checkout), so the
    order page and the receipt link them. No Stripe call: the Invoice carries both URLs (`hosted_invoice_url`,
    `invoice_pdf`; null until finalized). An invoice for an order already holding another invoice id changes
    nothing (NO_OP); one naming no order of the shop is IGNORED."""
    metadata = invoice.get("metadata") if isinstance(invoice.get("metadata"), Mapping) else {}
    order_id = parse_ascii_int(str((metadata or {}).get("order_id") or ""))
    invoice_id, hosted, pdf = invoice.get("id"), invoice.get("hosted_invoice_url"), invoice.get("invoice_pdf")
    if order_id is None or not isinstance(invoice_id, str) or not isinstance(hosted, str):
        return EventOutcome.IGNORED, None
    order = session.get(Order, order_id)
    if order is None:
        return EventOutcome.IGNORED, None
    if order.stripe_invoice_id not in (None, invoice_id):
        return EventOutcome.NO_OP, order.id
    if (order.stripe_invoice_id, order.invoice_url, order.invoice_pdf_url) == (invoice_id, hosted, pdf):
        return EventOutcome.NO_OP, order.id
    order.stripe_invoice_id, order.invoice_url = invoice_id, hosted
    order.invoice_pdf_url = pdf if isinstance(pdf, str) else None
    log.info("Order %s: invoice %s (%s)", order.id, invoice_id, actor)
    return EventOutcome.APPLIED, order.id


def payment_method_for(order: Order) -> PaymentMethodSummary | None:
    """What paid `order` (its PaymentIntent's newest succeeded charge), or None while not known."""
    if not order.stripe_payment_intent_id:
        return None
    row = db.session.scalars(
        select(ChargePaymentMethod)
        .where(ChargePaymentMethod.stripe_payment_intent_id == order.stripe_payment_intent_id)
        .order_by(ChargePaymentMethod.charged_at.desc(), ChargePaymentMethod.id.desc())
        .limit(1)
    ).first()
    return PaymentMethodSummary(row.type, row.brand, row.last4) if row is not None else None


def payment_method_for_receipt(order: Order) -> PaymentMethodSummary | None:
    """`payment_method_for(order)`, asking Stripe once (PaymentIntent with latest_charge expanded) and recording
    the answer when no `charge.succeeded` has arrived yet. For the outbox sender only: never in a web request.
    None when the order is not paid or Stripe cannot answer (logged; the receipt goes without it)."""
    known = payment_method_for(order)
    if known is not None or not order.stripe_payment_intent_id or not order.is_paid:
        return known
    try:
        intent = get_gateway().retrieve_payment_intent(order.stripe_payment_intent_id)
    except GatewayError as error:
        log.warning("Receipt of order %s: Stripe could not say what paid it: %s", order.id, error)
        return None
    charge = intent.get("latest_charge")
    if not isinstance(charge, Mapping):
        return None
    charge = {**charge, "payment_intent": order.stripe_payment_intent_id}
    details = _details(charge)
    if details is None or charge.get("status") != "succeeded":
        return None
    try:
        with write_transaction() as session:
            record_charge(session, charge, f"receipt of order {order.id}")
    except IntegrityError:
        pass  # its charge.succeeded was recorded meanwhile: the same fact
    return PaymentMethodSummary(*details)
