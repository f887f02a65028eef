"""The result of each `flask payments audit` run: did the shop's books match Stripe's balance transactions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow
from shopapp.models.order import string_enum, values_check


class AuditOutcome(enum.StrEnum):
    """What one audit run found: the books matched, they differed, or Stripe could not be asked."""

    MATCH = "match"
    DIFFERENCES = "differences"
    UNREACHABLE = "unreachable"


class AuditRun(Base):
    """One audit run over [window_start, window_end): its outcome, and as JSON the differences left after the run
    healed what it could (a list of services.audit.Difference as dicts), the per-day totals of both sides, and the
    undelivered events it processed (id, type, outcome)."""

    __tablename__ = "audit_runs"
    __table_args__ = (
        CheckConstraint(values_check("outcome", AuditOutcome), name="outcome_valid"),
        Index("ix_audit_runs_ran_at", "ran_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[AuditOutcome] = mapped_column(string_enum(AuditOutcome, "audit_outcome"))
    # How many differences the run found before healing (the exit status follows this) and after.
    found: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    differences: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    totals: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    events: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    stripe_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    def __repr__(self) -> str:
        return f"<AuditRun {self.id} {self.outcome.value} at {self.ran_at:%Y-%m-%d %H:%M}>"
