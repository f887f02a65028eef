"""audit: the result of each `flask payments audit` run (the shop's books against Stripe's balance transactions)

Revision ID: 0016_audit
Revises: 0014_receipts
Create Date: 2026-12-07 15:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_audit'
down_revision = '0015_disputes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            'outcome',
            sa.Enum('match', 'differences', 'unreachable', name='audit_outcome', native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column('found', sa.Integer(), server_default='0', nullable=False),
        sa.Column('differences', sa.Text(), server_default='[]', nullable=False),
        sa.Column('totals', sa.Text(), server_default='[]', nullable=False),
        sa.Column('events', sa.Text(), server_default='[]', nullable=False),
        sa.Column('stripe_calls', sa.Integer(), server_default='0', nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('match', 'differences', 'unreachable')", name=op.f('ck_audit_runs_outcome_valid')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_runs')),
    )
    op.create_index('ix_audit_runs_ran_at', 'audit_runs', ['ran_at'], unique=False)


def downgrade():
    op.drop_index('ix_audit_runs_ran_at', table_name='audit_runs')
    op.drop_table('audit_runs')
