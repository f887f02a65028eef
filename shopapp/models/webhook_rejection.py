"""Counts of webhook deliveries refused for their signature, per hour and reason (shown on the dashboard)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime
from shopapp.models.order import string_enum, values_check


class RejectionReason(enum.StrEnum):
    """Why a delivery's Stripe-Signature was refused."""

    # The signed timestamp is more than 5 minutes from the shop's clock: a replay, or a shop clock that is
    # wrong (a clock 10 minutes fast refuses every genuine event).
    TIMESTAMP = "timestamp"
    # No signature matches the secret, or the header is missing: a forgery, or the wrong STRIPE_WEBHOOK_SECRET.
    SIGNATURE = "signature"


class WebhookRejection(Base):
    """How many deliveries were refused in one UTC hour for one reason, and the last one's message.

    One row per hour and reason (an upsert increments it), so a flood of forged deliveries grows a counter,
    not the table.
    """

    __tablename__ = "webhook_rejections"
    __table_args__ = (CheckConstraint(values_check("reason", RejectionReason), name="reason_valid"),)

    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    reason: Mapped[RejectionReason] = mapped_column(string_enum(RejectionReason, "rejection_reason"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200), default="")
