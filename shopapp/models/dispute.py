"""Disputes (chargebacks and inquiries) and Radar early fraud warnings: facts Stripe reports about an order."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow
from shopapp.models.order import string_enum, values_check


class DisputeStatus(enum.StrEnum):
    """Stripe's Dispute.status values (stripe/_dispute.py; docs.stripe.com/api/disputes/object)."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    APPEAL_NEEDS_RESPONSE = "appeal_needs_response"
    APPEAL_UNDER_REVIEW = "appeal_under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"

    @property
    def is_closed(self) -> bool:
        """Stripe will not change a closed dispute again (`charge.dispute.closed`)."""
        return self in DISPUTE_CLOSED

    @property
    def needs_response(self) -> bool:
        """Evidence may still be staged or submitted."""
        return self in (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WARNING_NEEDS_RESPONSE)

    @property
    def rank(self) -> int:
        """Position in the lifecycle: a snapshot of a lower rank never overwrites a higher one (closed beats
        under review beats needs response, whatever order the events arrive in)."""
        if self in DISPUTE_CLOSED:
            return 2
        return 1 if self in _UNDER_REVIEW else 0


DISPUTE_CLOSED = frozenset(
    {DisputeStatus.WARNING_CLOSED, DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.PREVENTED}
)
_UNDER_REVIEW = frozenset(
    {DisputeStatus.WARNING_UNDER_REVIEW, DisputeStatus.UNDER_REVIEW, DisputeStatus.APPEAL_UNDER_REVIEW}
)


class DisputeStanding(enum.StrEnum):
    """What an order shows of its disputes (derived by services/orders.py settle, stored on the order)."""

    NONE = "none"
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class EvidenceState(enum.StrEnum):
    """What the shop has sent Stripe as evidence: nothing, a draft (`submit=false`), or the submission."""

    NONE = "none"
    STAGED = "staged"
    SUBMITTED = "submitted"


class Dispute(Base):
    """One Stripe dispute of an order's charge, as the newest event (by `created`) or call reported it."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(values_check("status", DisputeStatus), name="status_valid"),
        CheckConstraint(values_check("evidence_state", EvidenceState), name="evidence_state_valid"),
        CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    stripe_charge_id: Mapped[str] = mapped_column(String(255), index=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64), default="general")
    status: Mapped[DisputeStatus] = mapped_column(string_enum(DisputeStatus, "dispute_status"))
    # Stripe's evidence_details.due_by: respond before it, or the dispute is lost.
    due_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    is_charge_refundable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    evidence_state: Mapped[EvidenceState] = mapped_column(
        string_enum(EvidenceState, "evidence_state"), default=EvidenceState.NONE, server_default="none"
    )
    # Bumped by every evidence call the shop makes: part of its idempotency key, so a double click or a retry
    # of one form sends one request, and a stale form is refused.
    evidence_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The evidence form as staff last sent it (JSON of the admin page's fields): a saved draft reopens as typed.
    evidence_json: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Funds Stripe took (amount and dispute fee, from the `dispute` balance transaction) and gave back
    # (`dispute_reversal`), positive cents; set from the snapshot, never added, so a repeat counts once.
    withdrawn_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    withdrawn_fee_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reinstated_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reinstated_fee_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The `created` of the event whose snapshot was applied last: an older one never overwrites it.
    last_event_created: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def outcome(self) -> DisputeStanding:
        """Open, won or lost (an inquiry closed without a chargeback counts as won)."""
        if not self.status.is_closed:
            return DisputeStanding.OPEN
        return DisputeStanding.LOST if self.status == DisputeStatus.LOST else DisputeStanding.WON

    @property
    def awaits_evidence(self) -> bool:
        """Stripe still waits for the shop's evidence (none submitted yet): the due date is the staff's deadline.
        Otherwise an open dispute awaits the card issuer's decision."""
        return self.status.needs_response and self.evidence_state != EvidenceState.SUBMITTED

    @property
    def taken_back_cents(self) -> int:
        """What the dispute cost the shop for good: withdrawn plus fee, minus what was reinstated."""
        return self.withdrawn_cents + self.withdrawn_fee_cents - self.reinstated_cents - self.reinstated_fee_cents


class EarlyFraudWarning(Base):
    """A Radar early fraud warning on an order's charge: the issuer reported the payment as likely fraud."""

    __tablename__ = "early_fraud_warnings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stripe_warning_id: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    stripe_charge_id: Mapped[str] = mapped_column(String(255))
    fraud_type: Mapped[str] = mapped_column(String(64), default="misc")
    # "An EFW is actionable if it has not received a dispute and has not been fully refunded" (Stripe): once
    # false it never becomes true again.
    actionable: Mapped[bool] = mapped_column(Boolean, default=True)
    last_event_created: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
