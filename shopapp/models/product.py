"""Things the shop sells."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DDL, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from shopapp import currencies
from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow


class Product(Base):
    """A product with a price in integer cents. `stock` None means unlimited."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd", server_default="usd")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1", index=True)
    display_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Units available to start a checkout with (None = unlimited), and units held by open checkouts.
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The dashboard lists the product as low on stock once `stock` is at or below this (staff-set).
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The product picture as stored under UPLOAD_FOLDER: "<sha256 of the bytes>.<ext>" (content-addressed,
    # so the URL changes with the picture and can be cached for a year), its pixel size and alt text.
    image_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    image_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_alt: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Stripe Tax's product tax code (e.g. "txcd_99999999", general tangible goods), sent with the price when
    # automatic tax is on; None: the account's default tax code applies.
    tax_code: Mapped[str | None] = mapped_column(String(40), nullable=True)

    @property
    def price(self) -> Decimal | None:
        """The price as a decimal amount in the product's currency (for staff forms); stored in minor units."""
        if self.price_cents is None:
            return None
        return currencies.to_major(self.price_cents, self.currency or "usd")

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name}>"

    def __str__(self) -> str:
        return self.name


# PostgreSQL announces every committed change to `products` on this channel (shopapp/database.py ChangeFeed:
# workers reuse the shop page's product rows until then). A statement trigger: one notification per
# transaction, whatever changed (identical notifications within a transaction are sent once). The same DDL as
# migration 0018, for databases made by create_all (tests, `flask seed` on a fresh file).
PRODUCTS_NOTIFY_FUNCTION = DDL(
    "CREATE OR REPLACE FUNCTION shop_products_changed() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_notify('shop_products_changed', ''); RETURN NULL; END $$"
)
PRODUCTS_NOTIFY_TRIGGER = DDL(
    "CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products "
    "FOR EACH STATEMENT EXECUTE FUNCTION shop_products_changed()"
)
event.listen(Product.__table__, "after_create", PRODUCTS_NOTIFY_FUNCTION.execute_if(dialect="postgresql"))
event.listen(Product.__table__, "after_create", PRODUCTS_NOTIFY_TRIGGER.execute_if(dialect="postgresql"))


class ProductChange(Base):
    """The audit trail of a product: who changed which field when, from what to what (values as text)."""

    __tablename__ = "product_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} -> {self.new_value} by {self.actor}"
