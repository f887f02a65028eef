"""disputes: Stripe disputes and early fraud warnings as facts of their order; what the order derives from them
(dispute standing, evidence due date, money lost) and its fraud-warning flag

Revision ID: 0015_disputes
Revises: 0014_receipts
Create Date: 2026-12-07 15:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_disputes'
down_revision = '0014_receipts'
branch_labels = None
depends_on = None

DISPUTE_STATUSES = (
    'warning_needs_response', 'warning_under_review', 'warning_closed', 'needs_response', 'under_review',
    'appeal_needs_response', 'appeal_under_review', 'won', 'lost', 'prevented',
)
EVIDENCE_STATES = ('none', 'staged', 'submitted')


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table(
        'disputes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_dispute_id', sa.String(length=255), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('stripe_charge_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
        sa.Column('amount_cents', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Enum(*DISPUTE_STATUSES, name='dispute_status', native_enum=False, length=32), nullable=False),
        sa.Column('due_by', sa.DateTime(timezone=True), nullable=True),
        sa.Column('is_charge_refundable', sa.Boolean(), server_default='0', nullable=False),
        sa.Column('evidence_state', sa.Enum(*EVIDENCE_STATES, name='evidence_state', native_enum=False, length=32), server_default='none', nullable=False),
        sa.Column('evidence_version', sa.Integer(), server_default='0', nullable=False),
        sa.Column('evidence_json', sa.Text(), server_default='', nullable=False),
        sa.Column('withdrawn_cents', sa.Integer(), server_default='0', nullable=False),
        sa.Column('withdrawn_fee_cents', sa.Integer(), server_default='0', nullable=False),
        sa.Column('reinstated_cents', sa.Integer(), server_default='0', nullable=False),
        sa.Column('reinstated_fee_cents', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_event_created', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in('status', DISPUTE_STATUSES), name=op.f('ck_disputes_status_valid')),
        sa.CheckConstraint(_in('evidence_state', EVIDENCE_STATES), name=op.f('ck_disputes_evidence_state_valid')),
        sa.CheckConstraint('amount_cents >= 0', name=op.f('ck_disputes_amount_not_negative')),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_disputes_order_id_orders'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
        sa.UniqueConstraint('stripe_dispute_id', name=op.f('uq_disputes_stripe_dispute_id')),
    )
    op.create_index(op.f('ix_disputes_order_id'), 'disputes', ['order_id'], unique=False)
    op.create_index(op.f('ix_disputes_stripe_charge_id'), 'disputes', ['stripe_charge_id'], unique=False)
    op.create_table(
        'early_fraud_warnings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_warning_id', sa.String(length=255), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('stripe_charge_id', sa.String(length=255), nullable=False),
        sa.Column('fraud_type', sa.String(length=64), nullable=False),
        sa.Column('actionable', sa.Boolean(), nullable=False),
        sa.Column('last_event_created', sa.Integer(), server_default='0', nullable=False),
        sa.Column('note', sa.Text(), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_early_fraud_warnings_order_id_orders'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_early_fraud_warnings')),
        sa.UniqueConstraint('stripe_warning_id', name=op.f('uq_early_fraud_warnings_stripe_warning_id')),
    )
    op.create_index(op.f('ix_early_fraud_warnings_order_id'), 'early_fraud_warnings', ['order_id'], unique=False)
    with op.batch_alter_table('orders') as batch_op:
        batch_op.add_column(sa.Column('dispute_standing', sa.String(length=16), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('dispute_due_by', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('dispute_lost_cents', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('fraud_warning', sa.Boolean(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_column('fraud_warning')
        batch_op.drop_column('dispute_lost_cents')
        batch_op.drop_column('dispute_due_by')
        batch_op.drop_column('dispute_standing')
    op.drop_index(op.f('ix_early_fraud_warnings_order_id'), table_name='early_fraud_warnings')
    op.drop_table('early_fraud_warnings')
    op.drop_index(op.f('ix_disputes_stripe_charge_id'), table_name='disputes')
    op.drop_index(op.f('ix_disputes_order_id'), table_name='disputes')
    op.drop_table('disputes')
