"""staff catalog: product audit trail, pictures, low-stock threshold; order line-items hash and shipping

Revision ID: 0007_staff_catalog
Revises: 0005_accounts_mail
Create Date: 2026-11-29 23:50:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0007_staff_catalog'
down_revision = '0005_accounts_mail'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'product_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('field', sa.String(length=40), nullable=False),
        sa.Column('old_value', sa.Text(), nullable=True),
        sa.Column('new_value', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('product_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_changes_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('low_stock_threshold', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_name', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('image_width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_height', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_alt', sa.String(length=200), server_default='', nullable=False))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_items_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('shipping_address', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('shipping_carrier', sa.String(length=80), server_default='', nullable=False))
        batch_op.add_column(sa.Column('tracking_number', sa.String(length=120), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_orders_shipped_at'), ['shipped_at'], unique=False)
        batch_op.create_index('ix_orders_paid_at', ['paid_at'], unique=False)


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_paid_at')
        batch_op.drop_index(batch_op.f('ix_orders_shipped_at'))
        batch_op.drop_column('tracking_number')
        batch_op.drop_column('shipping_carrier')
        batch_op.drop_column('shipped_at')
        batch_op.drop_column('shipping_address')
        batch_op.drop_column('line_items_hash')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('image_alt')
        batch_op.drop_column('image_height')
        batch_op.drop_column('image_width')
        batch_op.drop_column('image_name')
        batch_op.drop_column('low_stock_threshold')

    with op.batch_alter_table('product_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_changes_product_id'))

    op.drop_table('product_changes')
