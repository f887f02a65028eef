"""deployment: count webhook deliveries refused for their signature (per hour and reason)

Revision ID: 0010_deployment
Revises: 0009_order_facts
Create Date: 2026-12-07 12:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_deployment'
down_revision = '0009_order_facts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_rejections',
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.Enum('timestamp', 'signature', name='rejection_reason', native_enum=False, length=32), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=False),
        sa.CheckConstraint("reason IN ('timestamp', 'signature')", name=op.f('ck_webhook_rejections_reason_valid')),
        sa.PrimaryKeyConstraint('hour', 'reason', name=op.f('pk_webhook_rejections')),
    )


def downgrade():
    op.drop_table('webhook_rejections')
