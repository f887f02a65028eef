"""order facts: checkout attempts (every session the shop created, with a key unique for ever), the paid
order's stock consumed once, refund form numbers, and the two answer-only event outcomes

Revision ID: 0009_order_facts
Revises: 0008_hardening
Create Date: 2026-12-07 12:30:00

Existing rows: every order's stored session becomes its current attempt (with the key it was created with,
`order-<id>-attempt-<n>`, so a retry of an attempt in flight still sends the same key); a paid, refunded or
partially refunded order without paid_at gets its last update time as paid_at; one that was paid and not
short of stock has its units consumed; each refund with a key gets the form number its key names.
"""

import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009_order_facts"
down_revision = "0008_hardening"
branch_labels = None
depends_on = None

OLD_OUTCOMES = ("received", "applied", "no-op", "ignored", "flagged", "processing", "open", "failed")
NEW_OUTCOMES = OLD_OUTCOMES + ("duplicate", "unknown")
PAID = ("paid", "partially_refunded", "refunded")
_REFUND_KEY = re.compile(r"^order-\d+-refund-(\d+)")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table(
        "checkout_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("stripe_session_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("order_id", "number", name="uq_checkout_attempts_order_number"),
        sa.UniqueConstraint("stripe_session_id"),
    )
    with op.batch_alter_table("checkout_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkout_attempts_order_id"), ["order_id"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock_consumed", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_refunds_order_sequence", ["order_id", "sequence"])
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_constraint("outcome_valid", type_="check")
        batch_op.create_check_constraint("outcome_valid", _in("outcome", NEW_OUTCOMES))

    bind = op.get_bind()
    op.execute(
        "INSERT INTO checkout_attempts (order_id, number, idempotency_key, stripe_session_id, created_at) "
        "SELECT id, checkout_attempt, 'order-' || id || '-attempt-' || checkout_attempt, stripe_session_id, "
        "updated_at FROM orders WHERE stripe_session_id IS NOT NULL AND checkout_attempt > 0"
    )
    op.execute(f"UPDATE orders SET paid_at = updated_at WHERE paid_at IS NULL AND {_in('status', PAID)}")
    op.execute(
        f"UPDATE orders SET stock_consumed = {'true' if bind.dialect.name == 'postgresql' else '1'} "
        f"WHERE {_in('status', PAID)} AND NOT stock_shortfall"
    )
    for refund_id, key in bind.execute(
        sa.text("SELECT id, idempotency_key FROM refunds WHERE idempotency_key IS NOT NULL")
    ):
        match = _REFUND_KEY.match(key)
        if match:
            bind.execute(
                sa.text("UPDATE refunds SET sequence = :n WHERE id = :id"), {"n": int(match.group(1)), "id": refund_id}
            )


def downgrade():
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_constraint("outcome_valid", type_="check")
        batch_op.create_check_constraint("outcome_valid", _in("outcome", OLD_OUTCOMES))
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint("uq_refunds_order_sequence", type_="unique")
        batch_op.drop_column("sequence")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("stock_consumed")
    with op.batch_alter_table("checkout_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkout_attempts_order_id"))
    op.drop_table("checkout_attempts")
