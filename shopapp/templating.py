"""Template filters and globals."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from shopapp.services.catalog import format_money


def init_templating(app: Flask) -> None:
    """Register the money filter and site-wide template values."""

    # Read once: the filter runs dozens of times per page, and each config lookup goes through a proxy.
    locale = app.config["DISPLAY_LOCALE"]

    @app.template_filter("money")
    def money_filter(cents: int, currency: str) -> str:
        return format_money(cents, currency, locale)

    @app.context_processor
    def site_values() -> dict[str, Any]:
        return {
            "shop_name": current_app.config["SHOP_NAME"],
            "payments_local_mode": bool(current_app.config.get("STRIPE_API_BASE")),
        }
