"""Orders, their items, their status history and their refunds."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow
from shopapp.models.product import Product
from shopapp.models.user import User


class OrderStatus(enum.StrEnum):
    """Where an order stands; stored as its lower-case value."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"

    @property
    def label(self) -> str:
        """Human wording for badges and admin lists, in the request's language (English on staff pages)."""
        return str(_STATUS_LABELS[self.value])


_STATUS_LABELS = {
    "pending": _l("Pending"),
    "paid": _l("Paid"),
    "failed": _l("Failed"),
    "expired": _l("Expired"),
    "canceled": _l("Canceled"),
    "partially_refunded": _l("Partially refunded"),
    "refunded": _l("Refunded"),
}

S = OrderStatus
# What an order shows is derived from its facts (derive_status below; written only by
# services/orders.py `settle`). This map is the guard on what that derivation and the closing moves may
# write. A payment Stripe confirms is real money, so a paid fact moves even a closed order (expired or
# canceled locally while the shopper paid, or a delayed payment reported failed before it succeeded) to PAID.
# The only way back to PAID from a refunded status is a refund Stripe reports failed or canceled after it
# had succeeded (card 4000 0000 0000 5126): the refund's fact changed, the payment's did not. No event about
# the payment can do it: "paid" is recorded once (paid_at, compare-and-set) and a repeat adds no fact.
# Nothing paid ever goes back to PENDING.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PAID, S.FAILED, S.EXPIRED, S.CANCELED}),
    # EXPIRED -> CANCELED only when the shopper's own cancel made Stripe expire the session and Stripe's
    # checkout.session.expired event was applied first (services/checkout.py `_close_session`): same closed
    # order, labelled with what actually happened. Nothing was paid and the stock was already released.
    S.EXPIRED: frozenset({S.PAID, S.CANCELED}),
    S.CANCELED: frozenset({S.PAID}),
    S.FAILED: frozenset({S.PAID}),
    S.PAID: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset({S.PAID, S.PARTIALLY_REFUNDED}),
}
FINAL_STATUSES = frozenset({S.PAID, S.FAILED, S.PARTIALLY_REFUNDED, S.REFUNDED})
# The one definition of "Stripe took this order's money" (whatever was refunded since) and of "some of it
# may still be refunded"; every check of either imports these.
PAID_STATUSES = frozenset({S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED})
REFUNDABLE_STATUSES = frozenset({S.PAID, S.PARTIALLY_REFUNDED})
# Statuses only derive_status may produce (from the paid fact and the refunds); closing moves name the others.
DERIVED_STATUSES = PAID_STATUSES


def derive_status(current: OrderStatus, paid: bool, total_cents: int, refunded_cents: int) -> OrderStatus:
    """What an order shows, from its facts: paid or not (Order.paid_at), and the sum of its succeeded refunds
    (cents, already capped at the total). An unpaid order keeps its closing fact (failed, expired, canceled)
    or stays pending; a paid one is PAID, PARTIALLY_REFUNDED or REFUNDED by its refunds alone."""
    if not paid:
        return current if current not in PAID_STATUSES else S.PENDING
    # A paid order of 0 (a 100%-off code: Stripe's no_payment_required) has nothing to refund: it stays PAID.
    if total_cents > 0 and refunded_cents >= total_cents:
        return S.REFUNDED
    return S.PARTIALLY_REFUNDED if refunded_cents > 0 else S.PAID


status_type = Enum(
    OrderStatus,
    native_enum=False,
    length=32,
    values_callable=lambda members: [m.value for m in members],
    validate_strings=True,
    name="order_status",
)


class Order(Base):
    """A shopper's purchase. Totals are computed from database prices when the order is made."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= total_cents", name="refund_within_total"),
        # "My orders" (newest first per user), and the admin/reconcile scans by status and age.
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_created_at", "created_at"),
        # The dashboard's paid-today/7-day figures and its 30-day revenue chart read paid orders by paid_at.
        Index("ix_orders_paid_at", "paid_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(status_type, default=OrderStatus.PENDING)
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # What was bought, canonical ("<product_id>x<qty>,..."), so a repeated submit can reuse this order.
    cart_key: Mapped[str] = mapped_column(String(255), default="", server_default="")
    stripe_session_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    # The hosted payment page of that session, so a repeated submit is answered without calling Stripe.
    checkout_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    # Each new Checkout Session for this order is a new attempt with its own idempotency key.
    checkout_attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Stripe reported the session complete but unpaid: a delayed payment method is still settling.
    payment_processing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # True while the order holds units of limited products (released on expiry/failure/cancel, consumed on PAID).
    stock_reserved: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The paid order's units were taken for good (set once, by the one caller that recorded the payment).
    stock_consumed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Paid after its hold was released and the units were gone: refunded automatically, never oversold.
    stock_shortfall: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0", index=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # SHA-256 of the exact line_items sent with the current Checkout Session (amounts, currency, names,
    # quantities): an open session is reused only while the cart would send Stripe the very same lines.
    line_items_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The shipping address Checkout collected (JSON of Stripe's shipping_details: name, address), if any.
    shipping_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    shipping_carrier: Mapped[str] = mapped_column(String(80), default="", server_default="")
    tracking_number: Mapped[str] = mapped_column(String(120), default="", server_default="")
    # When a success-page view last asked Stripe about this pending order: shared by every worker and node,
    # set by compare-and-set so that at most one retrieve per interval happens (services/checkout.py).
    stripe_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Derived from the order's Dispute facts by services/orders.py settle (never written elsewhere): "none",
    # "open", "won" or "lost" (models/dispute.py DisputeStanding), the open dispute's evidence due date, and
    # what lost disputes took back for good (amount plus Stripe's fee, from their balance transactions).
    dispute_standing: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    dispute_due_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispute_lost_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Stripe reported an early fraud warning on the payment (services/disputes.py).
    fraud_warning: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Issue 23: what Stripe charged besides the items, recorded with the payment (cents, the order's currency)
    # after the amount check (services/amounts.py) accepted them; total_cents then holds what was paid.
    amount_discount_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    amount_shipping_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    amount_tax_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "inclusive" (the items' prices contain amount_tax) or "exclusive" (added on top); None: no tax asked.
    tax_behavior: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The promotion code the shopper entered on Stripe's page (its code, as staff created it) and the chosen
    # shipping rate's name, copied so later edits never change a paid order.
    promotion_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    shipping_rate_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The paid invoice Stripe made for this order (invoice_creation): its id, hosted page and PDF.
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    invoice_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    invoice_pdf_url: Mapped[str | None] = mapped_column(Text, nullable=True)

    user: Mapped[User] = relationship()
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id", lazy="selectin"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id", lazy="select"
    )
    refunds: Mapped[list[Refund]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Refund.id", lazy="select"
    )
    attempts: Mapped[list[CheckoutAttempt]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="CheckoutAttempt.id", lazy="select"
    )

    @property
    def is_paid(self) -> bool:
        """True once Stripe took the money, whatever was refunded since (PAID_STATUSES)."""
        return self.status in PAID_STATUSES

    @property
    def is_shippable(self) -> bool:
        """Paid, not wholly refunded, not shipped yet and not held by an open dispute: the one definition staff
        pages and mark_shipped use. A paid order of 0 (a 100%-off code) has nothing to refund and ships like any
        other."""
        not_wholly_refunded = self.refunded_cents < self.total_cents or self.total_cents == 0
        return (
            self.status in REFUNDABLE_STATUSES
            and not_wholly_refunded
            and self.shipped_at is None
            and not self.dispute_open
        )

    @property
    def dispute_open(self) -> bool:
        """A dispute of this order's payment awaits Stripe's decision: no refund, no shipping meanwhile."""
        return self.dispute_standing == "open"

    @property
    def hold_reason(self) -> str | None:
        """Why a paid order is held from shipping, for staff; None when it is not held."""
        if self.dispute_open:
            return "Held: the payment is disputed. Do not ship until the dispute is decided."
        return None

    @property
    def subtotal_cents(self) -> int:
        """The items at the database prices copied onto them (unit price x quantity), before discount,
        shipping and exclusive tax: what the amount check holds Stripe's amount_subtotal to."""
        return sum(item.line_total_cents for item in self.items)

    @property
    def has_extras(self) -> bool:
        """Whether the order shows a breakdown (discount, shipping or tax) beside its total."""
        return bool(self.amount_discount_cents or self.amount_shipping_cents or self.amount_tax_cents)

    @property
    def is_final(self) -> bool:
        """True once Stripe has settled the order (paid, failed or refunded)."""
        return self.status in FINAL_STATUSES

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.status.value}>"

    def __str__(self) -> str:
        return f"Order #{self.id}"


class CheckoutAttempt(Base):
    """One Checkout Session the shop asked Stripe for, for one order: the only sessions that may pay it.

    The idempotency key has a random part, stored here before Stripe is called, so it is unique to this
    shop's attempt for ever (a restored backup or a second database on the same Stripe account makes
    other keys) and the same on every retry of this attempt. The key is also sent in the session's
    metadata (`attempt_key`), so an event that arrives before the session id was stored still proves the
    session is this attempt's.
    """

    __tablename__ = "checkout_attempts"
    __table_args__ = (UniqueConstraint("order_id", "number", name="uq_checkout_attempts_order_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_session_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Issue 23: what the shop asked Stripe for with this session (JSON of services/amounts.py `Terms`: promotion
    # codes allowed, shipping rates offered with their amounts, automatic tax on or off, tax behaviour), written
    # with the attempt before Stripe is called; the amount check holds the completed session to it.
    terms: Mapped[str | None] = mapped_column(Text, nullable=True)

    order: Mapped[Order] = relationship(back_populates="attempts")


class OrderItem(Base):
    """One line of an order; name and unit price are copied so later price edits never change it."""

    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_not_negative"),
        CheckConstraint("reserved_quantity >= 0 AND reserved_quantity <= quantity", name="reserved_quantity_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    product_name: Mapped[str] = mapped_column(String(120))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    # Units of a limited product this line held when the order was placed (0 for an unlimited product);
    # release and consume give back exactly this, whatever staff did to the product since.
    reserved_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()

    @property
    def line_total_cents(self) -> int:
        """Unit price times quantity."""
        return self.unit_price_cents * self.quantity

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_name}"


class OrderEvent(Base):
    """The order's timeline: every status change or notable payment fact, and who or what caused it."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # e.g. "webhook evt_123", "success page", "reconcile", "staff ann@example.com"
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")

    order: Mapped[Order] = relationship(back_populates="events")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.from_status}->{self.to_status} by {self.actor}"


class RefundStatus(enum.StrEnum):
    """A refund's status, Stripe's values (Refund.status in the API reference and stripe/_refund.py)."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def in_flight(self) -> bool:
        """Asked for and not settled: counts against what may still be refunded, not yet as refunded."""
        return self in REFUND_IN_FLIGHT

    @property
    def rank(self) -> int:
        """Position in the lifecycle: a snapshot of a lower rank never overwrites a higher one.

        pending/requires_action -> succeeded -> failed/canceled; a card refund can fail after succeeding.
        """
        return _REFUND_RANK[self]


REFUND_IN_FLIGHT = frozenset({RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION})
_REFUND_RANK = {
    RefundStatus.PENDING: 0,
    RefundStatus.REQUIRES_ACTION: 0,
    RefundStatus.SUCCEEDED: 1,
    RefundStatus.FAILED: 2,
    RefundStatus.CANCELED: 2,
}


class RefundOrigin(enum.StrEnum):
    """What made a refund: staff through the admin, the shop for a late payment whose stock was gone, or
    someone outside the shop (Stripe's dashboard, another integration)."""

    STAFF = "staff"
    SHORTFALL = "shortfall"
    OUTSIDE_SHOP = "outside_shop"


def string_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A column type storing the enum's lower-case value in a VARCHAR(32)."""
    # Stored as the lower-case value in a VARCHAR (like orders.status); the CHECK is in __table_args__.
    return Enum(
        enum_class,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        name=name,
    )


def values_check(column: str, enum_class: type[enum.StrEnum]) -> str:
    """SQL for a CHECK that `column` holds one of the enum's values (shared with the migration)."""
    return f"{column} IN ({', '.join(repr(m.value) for m in enum_class)})"


class Refund(Base):
    """A refund asked of Stripe (or made outside the shop); it counts against the order once Stripe confirms it."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(values_check("status", RefundStatus), name="status_valid"),
        CheckConstraint(values_check("origin", RefundOrigin), name="origin_valid"),
        UniqueConstraint("order_id", "sequence", name="uq_refunds_order_sequence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    # "order-<id>-refund-<n>-<random>" for refunds the shop asked for (None for refunds made outside the shop),
    # stored before Stripe is called: unique to this shop for ever, and the same on every re-send.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    # n: the number the refund form was rendered with; the same form submitted twice finds this row.
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[RefundStatus] = mapped_column(
        string_enum(RefundStatus, "refund_status"), default=RefundStatus.PENDING, server_default="pending"
    )
    origin: Mapped[RefundOrigin] = mapped_column(
        string_enum(RefundOrigin, "refund_origin"), default=RefundOrigin.STAFF, server_default="staff"
    )
    # Stripe's failure_reason when the refund failed (e.g. expired_or_canceled_card), or the shop's own.
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Who asked, for the timeline ("staff ann@example.com"); what made it is `origin`.
    requested_by: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order: Mapped[Order] = relationship(back_populates="refunds")


class ChargePaymentMethod(Base):
    """What paid a succeeded Stripe charge: a fact from a `charge.succeeded` event (or read from Stripe when a
    receipt is composed before that event arrived), kept by the charge's PaymentIntent.

    Keyed by PaymentIntent, not by order: Stripe may deliver `charge.succeeded` before the
    `checkout.session.completed` that tells the shop which PaymentIntent paid its order, so the fact is stored
    as it comes and joined to the order through `Order.stripe_payment_intent_id` when shown (services/receipts).
    Only what a receipt may show is stored (Stripe's `payment_method_details.type`, card brand, last 4).
    """

    __tablename__ = "charge_payment_methods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stripe_charge_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), index=True)
    # Stripe's payment_method_details.type: "card", "us_bank_account", ...
    type: Mapped[str] = mapped_column(String(40))
    # payment_method_details.card.brand ("visa", "mastercard", ...) and .last4; for a bank debit its last4.
    brand: Mapped[str] = mapped_column(String(40), default="", server_default="")
    last4: Mapped[str] = mapped_column(String(4), default="", server_default="")
    # The charge's `created` (when Stripe charged), so the newest succeeded charge of an intent is shown.
    charged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
