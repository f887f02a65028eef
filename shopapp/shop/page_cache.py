"""The shop page: its HTML rendered once per distinct content and reused from a small per-process cache.

Why: rendering the page (three product cards, the Buy form, twenty orders with their items, a dozen
URLs) cost more than everything else a view of it does, queries included, yet it rarely changes
between two views. The view still runs every query on every request (the product rows on PostgreSQL
excepted: they are reused until PostgreSQL announces a change, database.ChangeFeed); the cache only replaces the
template. Its key holds every value the HTML is rendered from (the rows the queries just returned,
who is viewing, which page, which notice, where the app is mounted), compared by equality, not by a
digest, so two different pages can never share an entry and any change to a product or an order
renders afresh on the very next view. Pages showing a flashed message, a form error or a shopper's
selection are never cached (they are one-off); they are rendered directly.

What is never cached in a page: the CSRF token. The page is rendered with a placeholder that user data
cannot produce (its "<" would be escaped to "&lt;" anywhere it came from a value), and each request swaps
in its session's token. The cache is per application (tests build many apps in one process) and bounded (LRU)
so memory stays flat however many shoppers visit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from flask import current_app, render_template, request, session
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from shopapp.services import catalog, orders, stock
from shopapp.templating import current_brand

# Entries per process; one entry is the page's HTML (about 10 KB with 20 orders) plus its key.
MAX_ENTRIES = 512

V = TypeVar("V")

# Raw "<" cannot come out of an autoescaped value, so only our own insertions match.
CSRF_PLACEHOLDER = Markup("<csrf-token-placeholder>")


def placeholder_token() -> Markup:
    """Stands in for Flask-WTF's csrf_token() while a cacheable page is rendered."""
    return CSRF_PLACEHOLDER


class LRU(Generic[V]):
    """A bounded, thread-safe least-recently-used map."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value for key (marking it recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Store value under key, dropping the least recently used entry beyond the bound."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


PageCache = LRU[str]


def _cache() -> PageCache:
    cache = current_app.extensions.get("shop_page_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("shop_page_cache", PageCache())
    return cache


def shop_page(
    user: Any,
    page: int,
    *,
    notice: str | None,
    error: str | None,
    selection: dict[str, str],
    template: str = "shop/index.html",
) -> str:
    """The shop page (`template` shop/index.html) or My orders (shop/orders.html, `page` > 0) for this viewer.

    Every query runs on every view (on PostgreSQL the product rows are reused until PostgreSQL announces
    a change to them: catalog.active_product_rows); only the template is skipped when an identical page was
    rendered before. One-off pages (a flashed message, a form error, the shopper's own selection) and every page
    in debug (where templates and static files are edited live) are rendered directly, never cached.
    """
    products = catalog.active_product_rows()
    # Sold-out products whose last units only open checkouts hold: "may come back within N minutes".
    sold_out = [row.id for row in products if row.stock == 0]
    reserved = stock.reserved_comeback_minutes(sold_out) if sold_out else {}
    per_page = current_app.config["ORDERS_PER_PAGE"]
    context = {
        "products": products,
        "reserved_minutes": reserved,
        "max_quantity": current_app.config["MAX_QUANTITY_PER_LINE"],
        "selection": selection,
        "error": error,
        "notice": notice,
    }
    if (
        error is not None
        or selection
        or "_flashes" in session
        or current_app.debug
        or not current_app.config["PAGE_CACHE_ENABLED"]
    ):
        order_page = orders.orders_for_user(user.id, page, per_page) if page else None
        return render_template(template, order_page=order_page, **context)

    # Everything the page shows comes from these values: who is viewing, the product rows, the changeable
    # state of the page's orders, the notice, where the app is mounted and where its static files are
    # (their URLs carry a hash of their content).
    # The header names the logged-in viewer on every page, and the brand (staff-edited) frames it.
    viewer = (user.id, user.email, user.is_staff) if user.is_authenticated else None
    shop_brand = current_brand()
    products_key = (tuple(map(tuple, products)), tuple(sorted(reserved.items())))

    # The language the page is written in (cookie or Accept-Language, shopapp/i18n.py).
    language = str(get_locale())

    def key(state: tuple[Any, ...] | None) -> tuple[Any, ...]:
        return (request.script_root, current_app.static_folder, template, shop_brand, viewer, products_key, page, state,
                notice, language)  # fmt: skip

    cache = _cache()
    html = cache.get(key(orders.order_page_state(user.id, page, per_page) if page else None))
    if html is None:
        order_page = orders.orders_for_user(user.id, page, per_page) if page else None
        html = render_template(template, order_page=order_page, csrf_token=placeholder_token, **context)
        # Filed under the state of the rows it was rendered from, so it can never be reused for another.
        cache.put(key(order_page.state if order_page else None), html)
    # This session's token in place of the placeholder (a page without forms has none).
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, str(escape(generate_csrf())))
    return html
