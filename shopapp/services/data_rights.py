"""A shopper's data rights: a copy of their data, and deleting their account (GDPR arts. 15, 17 and 20).

Deleting keeps the orders, their amounts, items, refunds and payment references: a shop must keep its
books (sales and refunds, for tax; typically 6 to 10 years, e.g. HGB section 257 / UK Companies Act
s.388) and the law allows keeping data a legal obligation requires (GDPR art. 17(3)(b)). What identifies
the person goes: the email (replaced by deleted-<id>@deleted.invalid), the password, every session, the
two-factor secret and recovery codes, the name and street on shipping addresses (the country stays, for
VAT), and the recipient and content of queued or sent emails.

An account cannot be deleted while it has an open order, because the shop still owes the shopper
something or may still be paid. "Open" means any of:
- PENDING: a Checkout Session may still complete (Stripe could report a payment after the deletion);
- paid with a shipping address and not shipped yet: goods are owed, and the address is needed;
- a refund still in flight (pending or requires_action at Stripe): money is on its way back;
- flagged for staff review (needs_review): someone must look at it with the shopper;
- disputed (a dispute of its payment is open, services/disputes.py): the bank is still deciding, and the
  evidence may need the shopper's details.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from shopapp.extensions import db
from shopapp.models import (
    MailStatus,
    Order,
    OrderStatus,
    OutboxMessage,
    RecoveryCode,
    RefundStatus,
    User,
)
from shopapp.models.base import utcnow
from shopapp.models.user import new_session_token
from shopapp.services.tx import write_transaction

KEPT_REASON = _l(
    "Your orders, their amounts and refunds are kept, without your name, email or street address: the law "
    "requires a shop to keep its sales records (for tax) for several years."
)
ANONYMOUS_DOMAIN = "deleted.invalid"  # .invalid never resolves (RFC 2606): no mail can reach it
PAID_AWAITING_SHIPMENT = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


class AccountDeletionRefused(ValueError):
    """Deletion refused; `reasons` lists each open order and why, for the page."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class OpenOrder:
    """An order that blocks deletion, with why."""

    order_id: int
    reason: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_data(user_id: int) -> dict[str, Any]:
    """Everything the shop holds about the account, as JSON-ready data: account, orders (items, refunds,
    shipping address), the addresses used, and the emails queued or sent to it."""
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    orders = db.session.scalars(select(Order).where(Order.user_id == user_id).order_by(Order.id)).all()
    emails = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.user_id == user_id).order_by(OutboxMessage.id)
    ).all()
    addresses: list[Any] = []
    for order in orders:
        if order.shipping_address:
            address = json.loads(order.shipping_address)
            if address not in addresses:
                addresses.append(address)
    return {
        "account": {
            "email": user.email,
            "created_at": _iso(user.created_at),
            "staff": user.is_staff,
            "two_factor_enabled": user.totp_secret is not None,
        },
        "orders": [
            {
                "number": order.id,
                "status": order.status.value,
                "currency": order.currency,
                "total_cents": order.total_cents,
                "refunded_cents": order.refunded_cents,
                "created_at": _iso(order.created_at),
                "paid_at": _iso(order.paid_at),
                "shipped_at": _iso(order.shipped_at),
                "shipping_address": json.loads(order.shipping_address) if order.shipping_address else None,
                "items": [
                    {"product": i.product_name, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}
                    for i in order.items
                ],
                "refunds": [
                    {"amount_cents": r.amount_cents, "status": r.status.value, "created_at": _iso(r.created_at)}
                    for r in order.refunds
                ],
                "stripe_checkout_session": order.stripe_session_id,
            }
            for order in orders
        ],
        "addresses": addresses,
        "emails": [
            {
                "kind": m.kind.value,
                "to": m.recipient,
                "status": m.status.value,
                "created_at": _iso(m.created_at),
                "sent_at": _iso(m.sent_at),
                "order": m.order_id,
            }
            for m in emails
        ],
    }


def open_orders(user_id: int) -> list[OpenOrder]:
    """The account's orders that block deletion (see the module's definition of "open")."""
    found: list[OpenOrder] = []
    for order in db.session.scalars(select(Order).where(Order.user_id == user_id).order_by(Order.id)):
        if order.status == OrderStatus.PENDING:
            found.append(OpenOrder(order.id, "waiting for payment (cancel it, or wait until it expires)"))
        elif order.dispute_open:
            found.append(OpenOrder(order.id, "your bank is reviewing its payment (a dispute is open)"))
        elif order.status in PAID_AWAITING_SHIPMENT and order.shipping_address and order.shipped_at is None:
            found.append(OpenOrder(order.id, "paid and not shipped yet"))
        elif any(r.status in (RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION) for r in order.refunds):
            found.append(OpenOrder(order.id, "a refund is still on its way"))
        elif order.needs_review:
            found.append(OpenOrder(order.id, "our staff are looking into it"))
    return found


def delete_account(user_id: int) -> None:
    """Anonymise the account and end its sessions; orders and amounts stay. Refused (AccountDeletionRefused)
    while an order is open, and for staff accounts (another staff member removes the staff right first)."""
    with write_transaction() as session:
        user = session.get(User, user_id)
        if user is None or user.anonymised_at is not None:
            raise AccountDeletionRefused(["This account no longer exists."])
        if user.is_staff:
            raise AccountDeletionRefused(
                ["Staff accounts are closed by another staff member removing the staff right first."]
            )
        blocking = open_orders(user_id)
        if blocking:
            raise AccountDeletionRefused([f"Order #{o.order_id}: {o.reason}" for o in blocking])
        anonymous = f"deleted-{user.id}@{ANONYMOUS_DOMAIN}"
        user.email = anonymous
        # Not a hash argon2 can ever match ("!" is outside its alphabet): no password logs in again.
        user.password_hash = "!deleted-" + secrets.token_hex(16)
        user.session_token = new_session_token()  # every session and remember-me cookie ends
        user.totp_secret = None
        user.totp_last_step = None
        user.anonymised_at = utcnow()
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        for order in session.scalars(
            select(Order).where(Order.user_id == user_id, Order.shipping_address.is_not(None))
        ):
            country = (json.loads(order.shipping_address or "{}").get("address") or {}).get("country")
            order.shipping_address = json.dumps({"name": "", "address": {"country": country}}, sort_keys=True)
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.user_id == user_id, OutboxMessage.status.in_((MailStatus.PENDING, MailStatus.FAILED)))
            .values(status=MailStatus.FAILED, last_error="account deleted", recipient=anonymous, context="{}")
        )
        session.execute(
            update(OutboxMessage).where(OutboxMessage.user_id == user_id).values(recipient=anonymous, context="{}")
        )
