"""The mail outbox: one row per email, written in the same transaction as the change that causes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow
from shopapp.request_ids import current_request_id


class MailKind(enum.StrEnum):
    """What an outbox message is about; each kind has its templates under templates/mail/."""

    WELCOME = "welcome"
    ORDER_RECEIPT = "order_receipt"
    REFUND_NOTICE = "refund_notice"
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"
    SHIPPING_NOTICE = "shipping_notice"
    NEW_ORDER = "new_order"  # to the shop's order address (brand settings), not the shopper
    # To the shop's order address too: a dispute opened, its evidence due in 3 days, it closed; a fraud warning.
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_DUE_SOON = "dispute_due_soon"
    DISPUTE_CLOSED = "dispute_closed"
    FRAUD_WARNING = "fraud_warning"
    # Forgot-password for an address with no account: the same work as for a known one (a row, a message),
    # so neither the answer nor its timing tells the two apart; the mailbox's owner learns there is no account.
    RESET_NO_ACCOUNT = "reset_no_account"
    # To staff: checkout sessions were created but no order was paid for STALL_ALERT_HOURS (services.audit).
    STALL_ALERT = "stall_alert"


class MailStatus(enum.StrEnum):
    """Where a message stands. PENDING -> SENDING (claimed by one sender) -> SENT, or back to PENDING with a
    later next_attempt_at when the server could not be reached, or FAILED when the server refused it."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        name=name,
    )


class OutboxMessage(Base):
    """An email to send. `dedupe_key` names its cause (e.g. "order-42-receipt"): unique, so a cause that is
    applied twice (duplicate webhooks, a race with the success page, a retry) still queues one message,
    and the Message-ID header derived from it is the same on every delivery attempt."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The senders' scan: due messages, oldest first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(190), unique=True)
    kind: Mapped[MailKind] = mapped_column(_enum(MailKind, "mail_kind"))
    recipient: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # Non-secret facts the message shows that may change later (e.g. a refund's amount and what remained), as
    # JSON. Never a token: the reset link is signed when the message is sent.
    context: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    status: Mapped[MailStatus] = mapped_column(_enum(MailStatus, "mail_status"), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when a sender claims the row (compare-and-set); a stale claim (sender died) is taken over later.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The request that queued the message (its X-Request-ID and log lines); None from a command or cron.
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True, default=current_request_id)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.kind.value} {self.status.value}>"
