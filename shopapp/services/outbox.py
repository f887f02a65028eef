"""The mail outbox: messages are queued in the transaction that causes them and sent by a sender process.

- enqueue_*: called inside the causing write transaction (the PAID compare-and-set winner, a refund Stripe
  confirmed, a sign-up, a reset request, a password change). The row's unique dedupe_key names the cause, so
  a cause applied twice still queues one message (INSERT ... ON CONFLICT DO NOTHING).
- send_pending (run by `flask mail worker`, the sender process, and by cron's `flask mail send-pending`;
  never inside a web request, so SMTP never holds a request worker): a sender first CLAIMS a row with a
  compare-and-set (status pending and
  due, or a claim older than MAIL_CLAIM_TIMEOUT_SECONDS), so two senders never send one row twice; then it
  talks SMTP outside any transaction and records the result against its claim.
- SMTP unreachable or 4xx: the row goes back to pending with a doubling backoff. 5xx (e.g. the recipient's
  address refused), an internationalised address the server cannot carry (no SMTPUTF8), or anything
  unexpected while sending that row: FAILED with the reason, shown to staff; the other rows still go out.
- At-least-once, not exactly-once: a sender killed after the server accepted a message but before it
  recorded SENT resends it once its claim times out. Every attempt carries the same Message-ID
  (mail.message_id), so mail programs can recognise the repeat.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from shopapp.database import is_unavailable
from shopapp.extensions import db
from shopapp.models import MailKind, MailStatus, Order, OutboxMessage, Refund, User
from shopapp.models.base import utcnow
from shopapp.services import mail, passwords
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.mail")

# ---------------------------------------------------------------------------------------------
# Queueing (inside the caller's transaction)


@dataclass(frozen=True)
class _EmailOf:
    """The recipient is this user's address, read by the insert itself (one statement, not a read and a write)."""

    user_id: int


def _queue(
    session: Session,
    *,
    key: str,
    kind: MailKind,
    recipient: str | _EmailOf,
    user_id: int | None = None,
    order_id: int | None = None,
    context: dict[str, Any] | None = None,
) -> bool:
    """Insert one outbox row unless its dedupe_key exists; True when this call inserted it. `recipient` is an
    address, or _EmailOf(user id)."""
    now = utcnow()
    statement = _insert_statement(session.get_bind().dialect.name, isinstance(recipient, _EmailOf))
    params = {
        "dedupe_key": key,
        "kind": kind,
        "recipient": recipient.user_id if isinstance(recipient, _EmailOf) else recipient,
        "user_id": user_id,
        "order_id": order_id,
        "context": json.dumps(context or {}),
        "status": MailStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    # RETURNING, not rowcount: the driver's rowcount for INSERT ... ON CONFLICT is not reliable on PostgreSQL.
    return session.execute(statement, params).scalar() is not None


@functools.cache
def _insert_statement(dialect: str, recipient_from_user: bool) -> Any:
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, built once per dialect and recipient form
    and run on the table, not through the ORM: building the statement and the ORM's insert path cost more than
    a thousand Python calls per queued message, two messages per paid order (issue 25)."""
    table = cast(Table, OutboxMessage.__table__)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # request_id is left to its column default (the current request's id), as before.
    columns = ("dedupe_key", "kind", "user_id", "order_id", "context", "status", "attempts", "next_attempt_at")
    values: dict[str, Any] = {name: bindparam(name, type_=table.c[name].type) for name in (*columns, "created_at")}
    users = User.__table__.c
    values["recipient"] = (
        select(users.email).where(users.id == bindparam("recipient", type_=users.id.type)).scalar_subquery()
        if recipient_from_user
        else bindparam("recipient", type_=table.c.recipient.type)
    )
    return insert(table).values(values).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)


def _session_of(obj: object) -> Session:
    session = object_session(obj)
    return session if session is not None else db.session()


def _email_of(user_id: int) -> _EmailOf:
    return _EmailOf(user_id)


def enqueue_order_receipt(order: Order) -> None:
    """Queue the receipt of an order that just became PAID (one per order, whatever repeats)."""
    _queue(
        _session_of(order),
        key=f"order-{order.id}-receipt",
        kind=MailKind.ORDER_RECEIPT,
        recipient=_email_of(order.user_id),
        user_id=order.user_id,
        order_id=order.id,
    )


def enqueue_new_order_notice(order: Order, recipient: str) -> None:
    """Queue the owner's "new paid order" email to `recipient` (the brand's order address): one per order,
    in the transaction that marks it PAID, so a paid order is never announced twice or not at all."""
    if not recipient:
        return  # staff cleared the order address: no notice wanted
    _queue(
        _session_of(order),
        key=f"order-{order.id}-new-order",
        kind=MailKind.NEW_ORDER,
        recipient=recipient,
        order_id=order.id,
    )


def enqueue_stall_alert(session: Session, recipient: str, first_attempt_id: int, context: dict[str, Any]) -> bool:
    """Queue staff's "checkouts but no paid order" alert for the stall that began with checkout attempt
    `first_attempt_id`: once per stall (dedupe key `stall-<id>-alert`), whoever checks how often; True when queued."""
    return _queue(
        session, key=f"stall-{first_attempt_id}-alert", kind=MailKind.STALL_ALERT, recipient=recipient, context=context
    )


def enqueue_staff_notice(
    order: Order, kind: MailKind, key: str, recipient: str, context: dict[str, Any] | None = None
) -> bool:
    """Queue a staff notice about an order (a dispute opened, due soon or closed; a fraud warning) to
    `recipient`, once per `key`, with the facts it shows as they were (`context`); True when this call queued it."""
    if not recipient:
        return False
    return _queue(_session_of(order), key=key, kind=kind, recipient=recipient, order_id=order.id, context=context)


def enqueue_refund_notice(refund: Refund) -> None:
    """Queue the notice of a refund Stripe confirmed as succeeded (one per refund)."""
    session = _session_of(refund)
    session.flush()
    order = session.get(Order, refund.order_id)
    user = session.get(User, order.user_id) if order is not None else None
    if order is None or user is None:
        return
    _queue(
        session,
        key=f"refund-{refund.id}-notice",
        kind=MailKind.REFUND_NOTICE,
        recipient=user.email,
        user_id=user.id,
        order_id=order.id,
        context=mail.refund_context(refund, order),
    )


def enqueue_shipping_notice(order: Order) -> None:
    """Queue the "your order has shipped" notice of an order staff just marked shipped (one per order: an
    order is marked shipped once). Carrier and tracking number are fixed in the row's context as sent."""
    _queue(
        _session_of(order),
        key=f"order-{order.id}-shipped",
        kind=MailKind.SHIPPING_NOTICE,
        recipient=_email_of(order.user_id),
        user_id=order.user_id,
        order_id=order.id,
        context={"carrier": order.shipping_carrier, "tracking_number": order.tracking_number},
    )


def enqueue_welcome(user: User) -> None:
    """Queue the welcome message of a new account."""
    session = _session_of(user)
    session.flush()
    _queue(session, key=f"user-{user.id}-welcome", kind=MailKind.WELCOME, recipient=user.email, user_id=user.id)


def enqueue_password_reset(user: User) -> None:
    """Queue a reset link (the link itself is signed when the message is sent, and never stored)."""
    _queue(
        _session_of(user),
        key=f"user-{user.id}-reset-{secrets.token_hex(8)}",
        kind=MailKind.PASSWORD_RESET,
        recipient=user.email,
        user_id=user.id,
    )


def enqueue_reset_without_account(session: Session, email: str) -> None:
    """Queue the "there is no account for this address" answer to a reset request (one per request, like a
    reset link; both rate-limited per address and per client)."""
    _queue(session, key=f"reset-unknown-{secrets.token_hex(8)}", kind=MailKind.RESET_NO_ACCOUNT, recipient=email)


def enqueue_password_changed(user: User) -> None:
    """Queue the "your password was changed" notice; keyed on the new hash, so one per change."""
    fingerprint = passwords.fingerprint(user.password_hash)[:16]
    _queue(
        _session_of(user),
        key=f"user-{user.id}-password-{fingerprint}",
        kind=MailKind.PASSWORD_CHANGED,
        recipient=user.email,
        user_id=user.id,
    )


# ---------------------------------------------------------------------------------------------
# Sending (after commit)


@dataclass
class SendSummary:
    """What one sending pass did."""

    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the CLI and logs."""
        return f"Mail: {self.sent} sent, {self.retry_later} to retry later, {self.failed} failed."


def _backoff(attempts: int) -> timedelta:
    config = current_app.config
    base, cap = int(config["MAIL_RETRY_BASE_SECONDS"]), int(config["MAIL_RETRY_MAX_SECONDS"])
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def _claimable(now: datetime) -> Any:
    stale = now - timedelta(seconds=int(current_app.config["MAIL_CLAIM_TIMEOUT_SECONDS"]))
    return or_(
        and_(OutboxMessage.status == MailStatus.PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == MailStatus.SENDING, OutboxMessage.claimed_at < stale),
    )


def _claim(message_id: int, now: datetime) -> str | None:
    """Compare-and-set the row to SENDING for this sender; the claim token, or None if someone else has it."""
    token = secrets.token_hex(16)
    with write_transaction() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, _claimable(now))
            .values(status=MailStatus.SENDING, claimed_at=now, claim_token=token, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


def _finish(message_id: int, token: str, **values: Any) -> None:
    with write_transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.claim_token == token,
                OutboxMessage.status == MailStatus.SENDING,
            )
            .values(claim_token=None, **values)
            .execution_options(synchronize_session=False)
        )


def _send_one(message_id: int, summary: SendSummary, now: datetime) -> None:
    token = _claim(message_id, now)
    if token is None:
        return
    row = db.session.get(OutboxMessage, message_id, populate_existing=True)
    assert row is not None
    key, kind, attempts = row.dedupe_key, row.kind.value, row.attempts
    try:
        mail.transmit(row, mail.compose(row))
    except (mail.PermanentFailure, mail.CannotCompose) as error:
        _finish(message_id, token, status=MailStatus.FAILED, last_error=str(error)[:1000])
        log.warning("Mail %s (%s) failed for good: %s", key, kind, error)
        summary.failed += 1
        summary.errors.append(f"{key}: {error}")
    except mail.TemporaryFailure as error:
        _retry_later(message_id, token, attempts, str(error))
        log.warning("Mail %s (%s) not sent, will retry: %s", key, kind, error)
        summary.retry_later += 1
    except Exception as error:  # anything else (a bug, a library's surprise): this row fails, never the batch
        _fail_unexpectedly(message_id, token, key, kind, attempts, error, summary)
    else:
        _finish(message_id, token, status=MailStatus.SENT, sent_at=utcnow(), last_error=None)
        log.info("Mail %s (%s) sent", key, kind)
        summary.sent += 1
    finally:
        db.session.rollback()  # end the read transaction; the next claim starts a fresh write one


def _retry_later(message_id: int, token: str, attempts: int, reason: str) -> None:
    _finish(
        message_id,
        token,
        status=MailStatus.PENDING,
        last_error=reason[:1000],
        next_attempt_at=utcnow() + _backoff(attempts),
    )


def _fail_unexpectedly(
    message_id: int, token: str, key: str, kind: str, attempts: int, error: Exception, summary: SendSummary
) -> None:
    """Record an unexpected error on its row: back off when the database was unreachable (it will be again),
    else FAILED with the reason, shown to staff like a refusal. The row never stays SENDING and the other
    rows of the pass still go out (one odd address once stopped all mail, receipts included)."""
    db.session.rollback()
    reason = f"unexpected error while sending: {type(error).__name__}: {error}"
    if is_unavailable(error):
        _retry_later(message_id, token, attempts, reason)
        log.warning("Mail %s (%s) not sent, database unavailable; will retry: %s", key, kind, reason)
        summary.retry_later += 1
        return
    log.exception("Mail %s (%s) failed for good: %s", key, kind, reason)
    _finish(message_id, token, status=MailStatus.FAILED, last_error=reason[:1000])
    summary.failed += 1
    summary.errors.append(f"{key}: {reason}")


def _end_open_transaction() -> None:
    # A read transaction the caller left open would hide rows committed since (SQLite/PostgreSQL snapshots);
    # ended as write_transaction ends it.
    session = db.session()
    if session.in_transaction():
        session.commit()


def send_pending(limit: int = 200) -> SendSummary:
    """Send every due message (pending whose backoff has passed, or claimed by a sender that died), oldest first.
    Safe to run from cron and alongside the web workers: each row is claimed before it is sent."""
    summary = SendSummary()
    _end_open_transaction()
    now = utcnow()
    ids = db.session.scalars(
        select(OutboxMessage.id).where(_claimable(now)).order_by(OutboxMessage.id).limit(limit)
    ).all()
    db.session.rollback()
    for message_id in ids:
        _send_one(message_id, summary, now)
    return summary


def run_sender(
    stop: threading.Event,
    interval: float,
    *,
    max_passes: int | None = None,
    report: Callable[[str], object] = log.info,
) -> None:
    """The sender process's loop (`flask mail worker`): send what is due, then wait `interval` seconds (a
    bounded poll) while there is nothing to send, until `stop` is set or after `max_passes` passes.

    A pass that cannot reach the database is logged and retried after the interval: the rows are safe in it.
    """
    passes = 0
    while not stop.is_set():
        try:
            summary = send_pending()
        except Exception:  # the database went away: nothing is lost, try again after a poll
            log.exception("Mail sender pass failed; retrying in %s s", interval)
            db.session.rollback()
            summary = SendSummary()
        if summary.sent or summary.retry_later or summary.failed:
            report(summary.line())
        passes += 1
        if max_passes is not None and passes >= max_passes:
            return
        if not summary.sent:  # idle (or only retries waiting): look again later; after a batch, at once
            stop.wait(interval)


def messages_for_order(order_id: int) -> list[OutboxMessage]:
    """The emails about one order, oldest first (for the staff order page)."""
    return list(
        db.session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order_id).order_by(OutboxMessage.id))
    )
