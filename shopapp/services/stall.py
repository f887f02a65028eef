"""The stall alert: checkout sessions are being created but no order has been paid for STALL_ALERT_HOURS.

A broken payment page, a Stripe key revoked, a webhook endpoint disabled: shoppers still press Buy (a
`checkout_attempts` row each), but nothing gets paid. The stall begins with the first checkout attempt after
the last paid order; once it is older than the threshold, staff get one email through the outbox, keyed by
that attempt (`stall-<attempt id>-alert`), so checking every ten minutes still sends one per stall, and a
payment ends the stall (the next one begins with a later attempt and is announced again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from shopapp.models import CheckoutAttempt, Order
from shopapp.models.base import utcnow
from shopapp.services import brand, outbox
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.stall")


@dataclass(frozen=True)
class Stall:
    """Checkout attempts since the last payment: since when, how many, and whether the alert was queued now."""

    since: datetime
    attempts: int
    last_paid_at: datetime | None
    queued: bool

    def line(self) -> str:
        """The one line the commands print."""
        paid = f"last paid order {self.last_paid_at:%Y-%m-%d %H:%M} UTC" if self.last_paid_at else "no paid order yet"
        tail = "; staff alerted" if self.queued else "; staff already alerted"
        return f"Stall: {self.attempts} checkout(s) since {self.since:%Y-%m-%d %H:%M} UTC and none paid ({paid}){tail}"


def check_stall(hours: int, *, now: datetime | None = None) -> Stall | None:
    """The current stall if checkouts have been created for at least `hours` with no order paid since the
    first of them (queueing staff's alert once), else None. `hours` <= 0 turns the check off."""
    if hours <= 0:
        return None
    now = now or utcnow()
    with write_transaction() as session:
        last_paid = session.scalar(select(func.max(Order.paid_at)))
        unpaid = select(CheckoutAttempt.id, CheckoutAttempt.created_at)
        if last_paid is not None:
            unpaid = unpaid.where(CheckoutAttempt.created_at > last_paid)
        first = session.execute(unpaid.order_by(CheckoutAttempt.created_at, CheckoutAttempt.id).limit(1)).first()
        if first is None or first.created_at > now - timedelta(hours=hours):
            return None
        count_query = select(func.count(CheckoutAttempt.id))
        if last_paid is not None:
            count_query = count_query.where(CheckoutAttempt.created_at > last_paid)
        attempts = int(session.scalar(count_query) or 0)
        recipient = brand.order_address() or brand.cached_brand().contact_email
        context = {
            "hours": hours,
            "since": first.created_at.isoformat(),
            "attempts": attempts,
            "last_paid_at": last_paid.isoformat() if last_paid is not None else None,
        }
        queued = outbox.enqueue_stall_alert(session, recipient, int(first.id), context)
    stall = Stall(first.created_at, attempts, last_paid, queued)
    log.warning(stall.line())
    return stall
