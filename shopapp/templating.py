"""Template filters and globals."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, current_app, url_for

from shopapp.services.catalog import format_money


def _fingerprint(path: Path, cache: dict[tuple[str, float], str]) -> str:
    """A short content hash of a static file, recomputed only when the file changes."""
    key = (str(path), path.stat().st_mtime)
    if key not in cache:
        cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return cache[key]


def init_templating(app: Flask) -> None:
    """Register the money filter, the fingerprinted static_url() and site-wide template values."""
    fingerprints: dict[tuple[str, float], str] = {}

    # Read once: the filter runs dozens of times per page, and each config lookup goes through a proxy.
    locale = app.config["DISPLAY_LOCALE"]

    @app.template_filter("money")
    def money_filter(cents: int, currency: str) -> str:
        return format_money(cents, currency, locale)

    @app.template_global("static_url")
    def static_url(filename: str) -> str:
        """URL of a static file carrying its content hash, so browsers may cache it for a long time."""
        static_folder = Path(current_app.static_folder or "static")
        return url_for("static", filename=filename, v=_fingerprint(static_folder / filename, fingerprints))

    @app.context_processor
    def site_values() -> dict[str, Any]:
        return {
            "shop_name": current_app.config["SHOP_NAME"],
            "payments_local_mode": bool(current_app.config.get("STRIPE_API_BASE")),
        }
