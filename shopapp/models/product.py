"""Things the shop sells."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base


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

    @property
    def price(self) -> Decimal | None:
        """The price as a decimal amount (for staff forms); stored as cents."""
        return None if self.price_cents is None else Decimal(self.price_cents) / 100

    @price.setter
    def price(self, value: Decimal) -> None:
        cents = Decimal(value) * 100
        if cents != cents.to_integral_value():
            raise ValueError("A price can have at most two decimal places.")
        self.price_cents = int(cents)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name}>"

    def __str__(self) -> str:
        return self.name
