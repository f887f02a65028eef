"""refund lifecycle: Refund.status and PaymentEvent.outcome as checked enums, Refund.origin, failure_reason

Revision ID: 0004_refund_lifecycle
Revises: 0003_stock
Create Date: 2026-11-29 23:45:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004_refund_lifecycle"
down_revision = "0003_stock"
branch_labels = None
depends_on = None

# The values as of this revision (copied, not imported: a migration must not change when the models do).
REFUND_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
REFUND_ORIGINS = ("staff", "shortfall", "outside_shop")
EVENT_OUTCOMES = ("received", "applied", "no-op", "ignored", "flagged", "processing", "open", "failed")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _enum(values, name):
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade():
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", _enum(REFUND_ORIGINS, "refund_origin"), server_default="staff", nullable=False)
        )
        batch_op.add_column(sa.Column("failure_reason", sa.Text(), nullable=True))

    # What made each refund was matched text until now ("requested_by"); it becomes a column.
    op.execute("UPDATE refunds SET origin = 'shortfall' WHERE requested_by = 'shop (out of stock)'")
    op.execute("UPDATE refunds SET origin = 'outside_shop' WHERE requested_by LIKE 'outside the shop%'")
    # Out-of-stock refunds used to be sent with the key "order-<id>-stock-refund" and stored none: keep that
    # key, so a refund still waiting to be sent replays the same Stripe refund instead of making another.
    op.execute(
        "UPDATE refunds SET idempotency_key = 'order-' || order_id || '-stock-refund' "
        "WHERE origin = 'shortfall' AND idempotency_key IS NULL"
    )
    # Any status Stripe may have sent that the enum does not know is left for reconcile as pending.
    op.execute(f"UPDATE refunds SET status = 'pending' WHERE NOT ({_in('status', REFUND_STATUSES)})")
    op.execute(f"UPDATE payment_events SET outcome = 'failed' WHERE NOT ({_in('outcome', EVENT_OUTCOMES)})")

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=32),
            type_=_enum(REFUND_STATUSES, "refund_status"),
            existing_nullable=False,
            existing_server_default="pending",
        )
        batch_op.create_check_constraint("status_valid", _in("status", REFUND_STATUSES))
        batch_op.create_check_constraint("origin_valid", _in("origin", REFUND_ORIGINS))

    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.alter_column(
            "outcome",
            existing_type=sa.String(length=32),
            type_=_enum(EVENT_OUTCOMES, "event_outcome"),
            existing_nullable=False,
            existing_server_default="received",
        )
        batch_op.create_check_constraint("outcome_valid", _in("outcome", EVENT_OUTCOMES))


def downgrade():
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_constraint("outcome_valid", type_="check")
        batch_op.alter_column(
            "outcome",
            existing_type=_enum(EVENT_OUTCOMES, "event_outcome"),
            type_=sa.String(length=32),
            existing_nullable=False,
            existing_server_default="received",
        )

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint("origin_valid", type_="check")
        batch_op.drop_constraint("status_valid", type_="check")
        batch_op.alter_column(
            "status",
            existing_type=_enum(REFUND_STATUSES, "refund_status"),
            type_=sa.String(length=32),
            existing_nullable=False,
            existing_server_default="pending",
        )
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("origin")
