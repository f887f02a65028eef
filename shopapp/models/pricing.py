"""What staff add to a price: coupons and promotion codes (discounts) and shipping rates, each mirrored at Stripe.

Each row is created here first with its idempotency key (random part stored before Stripe is called, like a
Checkout Session's: services/discounts.py), then at Stripe, whose id is stored on the row. A row without a
Stripe id is not offered to shoppers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow


class Coupon(Base):
    """A discount (Stripe's Coupon): `percent_off` (0 < p <= 100) or `amount_off_cents` in `currency`, never
    both. Duration is always "once" (one-time payments); optional limits: max_redemptions, redeem_by."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("(percent_off IS NULL) <> (amount_off_cents IS NULL)", name="percent_or_amount"),
        CheckConstraint("percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)", name="percent_range"),
        CheckConstraint("amount_off_cents IS NULL OR amount_off_cents > 0", name="amount_positive"),
        CheckConstraint("amount_off_cents IS NULL OR currency IS NOT NULL", name="amount_has_currency"),
        CheckConstraint("max_redemptions IS NULL OR max_redemptions > 0", name="max_redemptions_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), nullable=True)
    amount_off_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    duration: Mapped[str] = mapped_column(String(16), default="once", server_default="once")
    max_redemptions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redeem_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_coupon_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), default="", server_default="")

    def __str__(self) -> str:
        return self.name


class PromotionCode(Base):
    """A code shoppers type on Stripe's payment page (Stripe's PromotionCode) for one coupon."""

    __tablename__ = "promotion_codes"
    __table_args__ = (
        CheckConstraint("max_redemptions IS NULL OR max_redemptions > 0", name="max_redemptions_positive"),
        CheckConstraint("minimum_amount_cents IS NULL OR minimum_amount_cents > 0", name="minimum_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="RESTRICT"), index=True)
    # Stripe's rule: case-insensitive, unique among the account's active codes; stored upper-cased.
    code: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    max_redemptions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # restrictions.minimum_amount in the coupon's (or the shop's) currency, cents.
    minimum_amount_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    minimum_amount_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_promotion_code_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), default="", server_default="")

    coupon: Mapped[Coupon] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.code


class ShippingRate(Base):
    """A shipping charge staff offer (Stripe's ShippingRate, fixed amount): a name, an amount per currency
    (JSON {"usd": 500, "eur": 450}), the countries it ships to (ISO alpha-2, comma-separated) and an optional
    delivery estimate in business days. `tax_behavior` is what it was created at Stripe with."""

    __tablename__ = "shipping_rates"
    __table_args__ = (
        CheckConstraint("min_days IS NULL OR min_days >= 0", name="min_days_not_negative"),
        CheckConstraint("max_days IS NULL OR max_days >= 1", name="max_days_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    amounts: Mapped[str] = mapped_column(Text)
    countries: Mapped[str] = mapped_column(Text)
    min_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    tax_behavior: Mapped[str] = mapped_column(String(16), default="exclusive", server_default="exclusive")
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_shipping_rate_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), default="", server_default="")

    def __str__(self) -> str:
        return self.display_name
