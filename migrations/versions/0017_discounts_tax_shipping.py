"""discounts, tax and shipping (issue 23): coupons, promotion codes and shipping rates mirrored at Stripe; what each
checkout attempt asked Stripe for (terms); what each order was charged besides its items (discount, shipping, tax),
its promotion code, shipping rate and paid invoice; products' Stripe tax codes

Revision ID: 0017_discounts_tax_shipping
Revises: 0014_receipts
Create Date: 2026-12-07 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_discounts_tax_shipping'
down_revision = '0016_audit'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('percent_off', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('amount_off_cents', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('duration', sa.String(length=16), server_default='once', nullable=False),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('redeem_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('stripe_coupon_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=255), server_default='', nullable=False),
    sa.CheckConstraint('(percent_off IS NULL) <> (amount_off_cents IS NULL)', name=op.f('ck_coupons_percent_or_amount')),
    sa.CheckConstraint('amount_off_cents IS NULL OR amount_off_cents > 0', name=op.f('ck_coupons_amount_positive')),
    sa.CheckConstraint('amount_off_cents IS NULL OR currency IS NOT NULL', name=op.f('ck_coupons_amount_has_currency')),
    sa.CheckConstraint('max_redemptions IS NULL OR max_redemptions > 0', name=op.f('ck_coupons_max_redemptions_positive')),
    sa.CheckConstraint('percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)', name=op.f('ck_coupons_percent_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_coupons_idempotency_key')),
    sa.UniqueConstraint('stripe_coupon_id', name=op.f('uq_coupons_stripe_coupon_id'))
    )
    op.create_table('shipping_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('amounts', sa.Text(), nullable=False),
    sa.Column('countries', sa.Text(), nullable=False),
    sa.Column('min_days', sa.Integer(), nullable=True),
    sa.Column('max_days', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('tax_behavior', sa.String(length=16), server_default='exclusive', nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('stripe_shipping_rate_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=255), server_default='', nullable=False),
    sa.CheckConstraint('max_days IS NULL OR max_days >= 1', name=op.f('ck_shipping_rates_max_days_positive')),
    sa.CheckConstraint('min_days IS NULL OR min_days >= 0', name=op.f('ck_shipping_rates_min_days_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_rates')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_shipping_rates_idempotency_key')),
    sa.UniqueConstraint('stripe_shipping_rate_id', name=op.f('uq_shipping_rates_stripe_shipping_rate_id'))
    )
    op.create_table('promotion_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('minimum_amount_cents', sa.Integer(), nullable=True),
    sa.Column('minimum_amount_currency', sa.String(length=3), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('stripe_promotion_code_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=255), server_default='', nullable=False),
    sa.CheckConstraint('max_redemptions IS NULL OR max_redemptions > 0', name=op.f('ck_promotion_codes_max_redemptions_positive')),
    sa.CheckConstraint('minimum_amount_cents IS NULL OR minimum_amount_cents > 0', name=op.f('ck_promotion_codes_minimum_positive')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_promotion_codes_coupon_id_coupons'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_promotion_codes_code')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_promotion_codes_idempotency_key')),
    sa.UniqueConstraint('stripe_promotion_code_id', name=op.f('uq_promotion_codes_stripe_promotion_code_id'))
    )
    with op.batch_alter_table('promotion_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promotion_codes_coupon_id'), ['coupon_id'], unique=False)

    with op.batch_alter_table('checkout_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms', sa.Text(), nullable=True))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_discount_cents', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('amount_shipping_cents', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('amount_tax_cents', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('tax_behavior', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('promotion_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('shipping_rate_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('invoice_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('invoice_pdf_url', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_stripe_invoice_id'), ['stripe_invoice_id'], unique=False)

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_code', sa.String(length=40), nullable=True))




def downgrade():

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('tax_code')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_stripe_invoice_id'))
        batch_op.drop_column('invoice_pdf_url')
        batch_op.drop_column('invoice_url')
        batch_op.drop_column('stripe_invoice_id')
        batch_op.drop_column('shipping_rate_name')
        batch_op.drop_column('promotion_code')
        batch_op.drop_column('tax_behavior')
        batch_op.drop_column('amount_tax_cents')
        batch_op.drop_column('amount_shipping_cents')
        batch_op.drop_column('amount_discount_cents')

    with op.batch_alter_table('checkout_attempts', schema=None) as batch_op:
        batch_op.drop_column('terms')

    with op.batch_alter_table('promotion_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promotion_codes_coupon_id'))

    op.drop_table('promotion_codes')
    op.drop_table('shipping_rates')
    op.drop_table('coupons')

