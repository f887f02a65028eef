"""Template filters and globals."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from shopapp import currencies
from shopapp.services import brand as brand_service
from shopapp.services import orders, shipping
from shopapp.services.catalog import format_money
from shopapp.services.clock import local_time

# local_time is re-exported: the admin formats columns with it.
__all__ = ["current_brand", "init_templating", "local_time"]


def _fingerprint(path: Path, cache: dict[tuple[str, float], str]) -> str:
    """A short content hash of a static file, recomputed only when the file changes."""
    key = (str(path), path.stat().st_mtime)
    if key not in cache:
        cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return cache[key]


def current_brand() -> brand_service.Brand:
    """The brand every page shows (services.brand.cached_brand: no query on most requests).

    While the database cannot answer (down, locked, or this request's transaction already failed), the page
    being drawn is the error page that says so: it gets the last brand read, never a second error.
    """
    try:
        return brand_service.cached_brand()
    except SQLAlchemyError:
        return brand_service.last_known_brand()


def init_templating(app: Flask) -> None:
    """Register the money filter, the fingerprinted static_url() and site-wide template values."""
    fingerprints: dict[tuple[str, float], str] = {}

    # Read once: the filter runs dozens of times per page, and each config lookup goes through a proxy.
    locale = app.config["DISPLAY_LOCALE"]

    app.add_template_filter(local_time, "local_time")
    app.add_template_global(shipping.tracking_url, "tracking_url")
    # "Not completed": a checkout the shopper left or replaced (My orders collapses them; orders.NOT_COMPLETED).
    app.add_template_test(lambda order: order.status in orders.NOT_COMPLETED, "not_completed")
    app.add_template_filter(currencies.minor_units, "minor_units")

    @app.template_filter("money")
    def money_filter(cents: int, currency: str) -> str:
        return format_money(cents, currency, locale)

    # Finished URLs per (file, static folder, mount point). Outside debug, static files do not change while
    # a process runs (a deploy restarts it), so each URL is computed once: stat + hash lookup + url_for
    # cost ~0.06 ms a call, three calls a page. Debug keeps re-checking the file so edits show at once.
    urls: dict[tuple[str, str | None, str], str] = {}
    recheck_files = app.debug

    @app.template_global("static_url")
    def static_url(filename: str) -> str:
        """URL of a static file carrying its content hash, so browsers may cache it for a long time."""
        key = (filename, current_app.static_folder, request.script_root if has_request_context() else "")
        url = None if recheck_files else urls.get(key)
        if url is None:
            static_folder = Path(current_app.static_folder or "static")
            url = url_for("static", filename=filename, v=_fingerprint(static_folder / filename, fingerprints))
            urls[key] = url
        return url

    @app.context_processor
    def site_values() -> dict[str, Any]:
        brand = current_brand()
        return {
            "brand": brand,
            "shop_name": brand.shop_name,
            "footer_pages": list(brand_service.PageSlug),
            "payments_local_mode": bool(current_app.config.get("STRIPE_API_BASE")),
            "display_locale": locale.replace("_", "-"),
        }
