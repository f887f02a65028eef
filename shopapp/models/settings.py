"""The shop's own settings that staff edit in the admin: brand, contact details and the footer pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shopapp.extensions import Base
from shopapp.models.base import UTCDateTime, utcnow


class ShopSettings(Base):
    """One row (id 1) once staff first save; until then the defaults in shopapp.services.brand apply.

    Page texts are Markdown as staff typed it; they are rendered and sanitised when shown (services.brand).
    """

    __tablename__ = "shop_settings"
    __table_args__ = (CheckConstraint("id = 1", name="one_settings_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_name: Mapped[str] = mapped_column(String(80))
    accent_color: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
    contact_email: Mapped[str] = mapped_column(String(254))
    postal_address: Mapped[str] = mapped_column(Text, default="", server_default="")
    footer_line: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Where "new paid order" notices go; empty: no notice.
    order_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    # The logo as stored by the pictures service (content-hashed name under UPLOAD_FOLDER), or none.
    logo_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    logo_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    logo_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contact_page: Mapped[str] = mapped_column(Text, default="", server_default="")
    terms_page: Mapped[str] = mapped_column(Text, default="", server_default="")
    privacy_page: Mapped[str] = mapped_column(Text, default="", server_default="")
    returns_page: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255), default="", server_default="")
