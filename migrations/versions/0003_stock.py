"""stock: per-line reserved quantity, and the out-of-stock refund flag

Revision ID: 0003_stock
Revises: 0002_staffops
Create Date: 2026-11-26 23:59:50.014635

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_stock'
down_revision = '0002_staffops'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_quantity', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(
            'reserved_quantity_valid', 'reserved_quantity >= 0 AND reserved_quantity <= quantity'
        )

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stock_shortfall', sa.Boolean(), server_default='0', nullable=False))

    # Orders holding stock before this column existed held every line of a limited product.
    op.execute(
        "UPDATE order_items SET reserved_quantity = quantity "
        "WHERE order_id IN (SELECT id FROM orders WHERE stock_reserved) "
        "AND product_id IN (SELECT id FROM products WHERE stock IS NOT NULL)"
    )


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('stock_shortfall')

    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_constraint('reserved_quantity_valid', type_='check')
        batch_op.drop_column('reserved_quantity')
