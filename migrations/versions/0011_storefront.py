"""storefront: the shop's brand, contact details and footer pages, edited by staff

Revision ID: 0011_storefront
Revises: 0010_deployment
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_storefront'
down_revision = '0010_deployment'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'shop_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_name', sa.String(length=80), nullable=False),
        sa.Column('accent_color', sa.String(length=7), nullable=False),
        sa.Column('contact_email', sa.String(length=254), nullable=False),
        sa.Column('postal_address', sa.Text(), server_default='', nullable=False),
        sa.Column('footer_line', sa.String(length=200), server_default='', nullable=False),
        sa.Column('order_email', sa.String(length=254), server_default='', nullable=False),
        sa.Column('logo_name', sa.String(length=80), nullable=True),
        sa.Column('logo_width', sa.Integer(), nullable=True),
        sa.Column('logo_height', sa.Integer(), nullable=True),
        sa.Column('contact_page', sa.Text(), server_default='', nullable=False),
        sa.Column('terms_page', sa.Text(), server_default='', nullable=False),
        sa.Column('privacy_page', sa.Text(), server_default='', nullable=False),
        sa.Column('returns_page', sa.Text(), server_default='', nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=255), server_default='', nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_shop_settings_one_settings_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_settings')),
    )


def downgrade():
    op.drop_table('shop_settings')
