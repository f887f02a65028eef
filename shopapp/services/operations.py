"""What an operator asks of a running shop: is it ready to serve, and what has it done (from the facts).

readiness() backs /readyz; business_figures() backs the business half of /metrics. Both read only what
the database already records (orders, refunds, stored webhook events, the outbox, the order timeline), so
every worker and node answers the same and a restart loses nothing: no counter kept in memory can drift
from the books.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from shopapp.extensions import db
from shopapp.models import MailStatus, Order, OrderEvent, OutboxMessage, PaymentEvent, Refund, WebhookRejection
from shopapp.models.base import utcnow

log = logging.getLogger("shopapp.operations")

# The order timeline's actor for heals made by `flask payments reconcile` (services/reconcile.py ACTOR).
RECONCILE_ACTOR = "reconcile"
_heads: dict[str, frozenset[str]] = {}


@dataclass
class Readiness:
    """Each check's verdict ("ok" or a short reason, never a secret or a URL) and whether to serve."""

    checks: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True when every check passed (warnings do not take a node out of the balancer)."""
        return all(verdict == "ok" for verdict in self.checks.values())


def migration_heads(migrations_dir: Path) -> frozenset[str]:
    """The head revisions of the migration scripts (read once per process: they change only with a release)."""
    key = str(migrations_dir)
    if key not in _heads:
        _heads[key] = frozenset(ScriptDirectory(key).get_heads())
    return _heads[key]


def readiness(
    migrations_dir: Path,
    redis_url: str | None,
    outbox_stuck_after: timedelta,
    now: datetime | None = None,
) -> Readiness:
    """Database reachable, schema at the migrations' head, Redis answering (when configured), outbox moving.

    A stuck outbox is a warning, not a failure: it means mail is not leaving (SMTP down, a bad
    credential), which no node can fix, and taking every node out of the balancer for it would stop the
    shop taking money. It shows in the answer and in /metrics (shop_outbox_oldest_due_seconds) for alerts.
    """
    result = Readiness()
    session = db.session()
    try:
        session.execute(text("SELECT 1"))
        result.checks["database"] = "ok"
    except SQLAlchemyError as error:
        log.warning("readyz: database unreachable: %s", type(error).__name__)
        session.rollback()
        result.checks["database"] = "unreachable"
        return result
    try:
        current = {row[0] for row in session.execute(text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError:
        session.rollback()
        current = set()
    heads = migration_heads(migrations_dir)
    result.checks["migrations"] = "ok" if current == heads else "not at head: run flask db upgrade"
    if redis_url:
        result.checks["redis"] = _redis_verdict(redis_url)
    now = now or utcnow()
    oldest_due = session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == MailStatus.PENDING)
    )
    session.rollback()  # end the read: a health check must not hold a transaction open
    if oldest_due is not None and now - oldest_due > outbox_stuck_after:
        minutes = int((now - oldest_due).total_seconds() // 60)
        result.warnings["outbox"] = f"mail due for {minutes} min is still unsent"
    return result


def _redis_verdict(url: str) -> str:
    import redis  # only where Redis is configured

    try:
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except redis.RedisError as error:
        log.warning("readyz: redis unreachable: %s", type(error).__name__)
        return "unreachable"


@dataclass
class BusinessFigures:
    """Totals since the shop began, each counted from the rows that record it."""

    checkouts_created: int
    orders_paid: int
    refunds_by_status: dict[str, int]
    webhook_events_by_outcome: dict[str, int]
    webhook_rejections_by_reason: dict[str, int]
    outbox_by_status: dict[str, int]
    outbox_oldest_due_seconds: float
    reconcile_heals: int
    # Orders whose payment has an open dispute (derived from the charge.dispute.* facts by orders.settle).
    disputes_open: int = 0


def business_figures(now: datetime | None = None) -> BusinessFigures:
    """Counts for /metrics: eight small aggregate queries (indexed where the tables grow: orders, events)."""
    session = db.session()
    now = now or utcnow()
    checkouts = session.scalar(select(func.count()).select_from(Order).where(Order.stripe_session_id.is_not(None)))
    paid = session.scalar(select(func.count()).select_from(Order).where(Order.paid_at.is_not(None)))
    refunds = dict(session.execute(select(Refund.status, func.count()).group_by(Refund.status)).all())
    events = dict(session.execute(select(PaymentEvent.outcome, func.count()).group_by(PaymentEvent.outcome)).all())
    rejections = dict(
        session.execute(
            select(WebhookRejection.reason, func.sum(WebhookRejection.count)).group_by(WebhookRejection.reason)
        ).all()
    )
    outbox = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    oldest_due = session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == MailStatus.PENDING)
    )
    heals = session.scalar(
        select(func.count())
        .select_from(OrderEvent)
        .where(OrderEvent.actor == RECONCILE_ACTOR, OrderEvent.to_status.is_not(None))
    )
    disputes = session.scalar(select(func.count()).select_from(Order).where(Order.dispute_standing == "open"))
    session.rollback()
    return BusinessFigures(
        checkouts_created=int(checkouts or 0),
        orders_paid=int(paid or 0),
        refunds_by_status={str(_value(k)): int(v) for k, v in refunds.items()},
        webhook_events_by_outcome={str(_value(k)): int(v) for k, v in events.items()},
        webhook_rejections_by_reason={str(_value(k)): int(v or 0) for k, v in rejections.items()},
        outbox_by_status={str(_value(k)): int(v) for k, v in outbox.items()},
        outbox_oldest_due_seconds=max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0,
        reconcile_heals=int(heals or 0),
        disputes_open=int(disputes or 0),
    )


def _value(member: Any) -> Any:
    return getattr(member, "value", member)
