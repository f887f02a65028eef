"""products announce their changes (issue 25): on PostgreSQL a statement trigger sends NOTIFY shop_products_changed
at the commit of every transaction that changed `products`, so workers reuse the shop page's product rows until
then (shopapp/database.py ChangeFeed). Nothing on SQLite.

Revision ID: 0018_products_notify
Revises: 0017_discounts_tax_shipping
Create Date: 2026-12-07 19:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_products_notify'
down_revision = '0017_discounts_tax_shipping'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # The same statements as shopapp/models/product.py runs after create_all.
    op.execute(
        "CREATE OR REPLACE FUNCTION shop_products_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('shop_products_changed', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products "
        "FOR EACH STATEMENT EXECUTE FUNCTION shop_products_changed()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS products_changed ON products")
    op.execute("DROP FUNCTION IF EXISTS shop_products_changed()")
