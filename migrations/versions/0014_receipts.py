"""receipts: the payment method of each succeeded charge (card brand and last 4), by PaymentIntent; the
shopper's language for their emails (users.locale)

Revision ID: 0014_receipts
Revises: 0012_operations
Create Date: 2026-12-07 13:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_receipts'
down_revision = '0012_operations'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'charge_payment_methods',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_charge_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('brand', sa.String(length=40), server_default='', nullable=False),
        sa.Column('last4', sa.String(length=4), server_default='', nullable=False),
        sa.Column('charged_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_charge_payment_methods')),
        sa.UniqueConstraint('stripe_charge_id', name=op.f('uq_charge_payment_methods_stripe_charge_id')),
    )
    op.create_index(
        op.f('ix_charge_payment_methods_stripe_payment_intent_id'),
        'charge_payment_methods',
        ['stripe_payment_intent_id'],
        unique=False,
    )


    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('locale')
    op.drop_index(op.f('ix_charge_payment_methods_stripe_payment_intent_id'), table_name='charge_payment_methods')
    op.drop_table('charge_payment_methods')
