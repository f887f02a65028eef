"""The "My orders" HTML, rendered once per distinct order list and reused from a small per-process cache.

Why: rendering 20 orders with their items was over half the cost of a logged-in shop page, yet a
shopper's list rarely changes between two views. The page query already returns every value the list
shows, so those rows (OrderPage.fingerprint) plus the user id and page number identify the HTML exactly:
any change to an order (status, paid, processing, items...) changes the rows and so misses the cache.
The rows are compared by equality, not by a hash digest, so two different lists can never share an entry.

What is never cached: the CSRF token of the cancel forms. The fragment is rendered with a placeholder that
user data cannot produce (its "<" would be escaped to "&lt;" anywhere it came from a value), and each
request swaps in its own token. The cache is per application (tests build many apps in one process) and
bounded (LRU) so memory stays flat however many shoppers visit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from flask import current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from shopapp.services.orders import OrderPage

# Entries per process; one entry is a few kilobytes of HTML plus the rows it was rendered from.
MAX_ENTRIES = 512

# Raw "<" cannot come out of an autoescaped value, so only our own insertions match.
_CSRF_PLACEHOLDER = Markup("<csrf-token-placeholder>")


class FragmentCache:
    """A bounded, thread-safe LRU of rendered HTML."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> str | None:
        """The cached HTML for key (marking it recently used), or None."""
        with self._lock:
            html = self._entries.get(key)
            if html is not None:
                self._entries.move_to_end(key)
            return html

    def put(self, key: Hashable, html: str) -> None:
        """Store html under key, dropping the least recently used entry beyond the bound."""
        with self._lock:
            self._entries[key] = html
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _cache() -> FragmentCache:
    cache = current_app.extensions.get("order_fragments")
    if cache is None:
        cache = current_app.extensions.setdefault("order_fragments", FragmentCache())
    return cache


def render_orders(user_id: int, order_page: OrderPage) -> Markup:
    """The "My orders" section for this user and page, with this request's CSRF token in its forms."""
    # script_root: the links inside are built relative to where the app is mounted.
    key = (user_id, order_page.page, request.script_root, order_page.fingerprint)
    cache = _cache()
    html = cache.get(key)
    if html is None:
        html = render_template("shop/_orders.html", order_page=order_page, csrf_placeholder=_CSRF_PLACEHOLDER)
        cache.put(key, html)
    if _CSRF_PLACEHOLDER in html:
        html = html.replace(_CSRF_PLACEHOLDER, str(escape(generate_csrf())))
    return Markup(html)
