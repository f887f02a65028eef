"""Webhook deliveries refused for their signature: counted per hour and reason, summarised for the dashboard.

Why: a refused signature answers Stripe 400 and Stripe retries for three days, so nothing on the shop's side
showed that every genuine event was being refused. The commonest cause is not an attack but a clock: Stripe
signs a timestamp and a shop clock more than 5 minutes off (WEBHOOK_TOLERANCE_SECONDS) refuses them all
(docs/OPERATIONS.md: keep the clock synchronised with NTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from shopapp.extensions import db
from shopapp.models import RejectionReason, WebhookRejection
from shopapp.models.base import utcnow
from shopapp.services.tx import write_transaction

WINDOW_HOURS = 24


def reason_of(message: str) -> RejectionReason:
    """The reason behind a signature error's message (the gateway says "timestamp outside the tolerance zone")."""
    return RejectionReason.TIMESTAMP if "timestamp" in message.lower() else RejectionReason.SIGNATURE


def record(message: str, now: datetime | None = None) -> None:
    """Count one refused delivery in its hour (one upsert: concurrent refusals all count)."""
    now = now or utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    with write_transaction() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(WebhookRejection).values(
            hour=hour, reason=reason_of(message), count=1, last_at=now, last_error=message[:200]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["hour", "reason"],
                set_={
                    "count": WebhookRejection.count + 1,
                    "last_at": statement.excluded.last_at,
                    "last_error": statement.excluded.last_error,
                },
            )
        )


@dataclass(frozen=True)
class RejectionSummary:
    """Refused signatures over the last WINDOW_HOURS hours, per reason, and when the latest was refused."""

    by_reason: dict[RejectionReason, int]
    last_at: datetime | None

    @property
    def total(self) -> int:
        """All refused deliveries in the window."""
        return sum(self.by_reason.values())

    @property
    def clock_suspected(self) -> bool:
        """True when timestamps were refused: the shop's clock may be wrong (or events are being replayed)."""
        return self.by_reason.get(RejectionReason.TIMESTAMP, 0) > 0


def recent(now: datetime | None = None) -> RejectionSummary:
    """The dashboard's summary: one grouped query over at most 2 x WINDOW_HOURS rows (the messages are in the
    log, "Webhook rejected from ...")."""
    since = (now or utcnow()) - timedelta(hours=WINDOW_HOURS)
    rows = db.session.execute(
        select(WebhookRejection.reason, func.sum(WebhookRejection.count), func.max(WebhookRejection.last_at))
        .where(WebhookRejection.hour >= since)
        .group_by(WebhookRejection.reason)
    ).all()
    latest = [last for _, _, last in rows if last is not None]
    return RejectionSummary(
        by_reason={RejectionReason(reason): int(count) for reason, count, _ in rows},
        last_at=max(latest) if latest else None,
    )
