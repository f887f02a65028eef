"""The log of every webhook the shop received."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow
from shopapp.models.order import string_enum, values_check


class EventOutcome(enum.StrEnum):
    """What processing a stored webhook event did."""

    RECEIVED = "received"  # stored, not processed yet
    APPLIED = "applied"  # it changed an order or a refund
    NO_OP = "no-op"  # already in that state (a duplicate or late event)
    IGNORED = "ignored"  # not for this shop, or a type the shop does not handle
    FLAGGED = "flagged"  # Stripe's data does not match the order: staff must look
    PROCESSING = "processing"  # paid by a delayed method: waiting for async_payment_*
    OPEN = "open"  # the session is still open
    FAILED = "failed"  # processing raised; kept for replay
    # Answers only, never stored: a delivery of an event already stored (or arriving concurrently), and a
    # replay asked for an event id the shop never stored.
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"


class PaymentEvent(Base):
    """One Stripe event as received; the unique event id makes duplicates cheap to spot."""

    __tablename__ = "payment_events"
    __table_args__ = (
        Index("ix_payment_events_received_at", "received_at"),
        CheckConstraint(values_check("outcome", EventOutcome), name="outcome_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), nullable=True, index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    signature_valid: Mapped[bool] = mapped_column(default=True, server_default="1")
    outcome: Mapped[EventOutcome] = mapped_column(
        string_enum(EventOutcome, "event_outcome"), default=EventOutcome.RECEIVED, server_default="received"
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[str] = mapped_column(Text)

    def __str__(self) -> str:
        return f"{self.stripe_event_id} {self.type}"
