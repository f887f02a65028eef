"""The shop page's HTML, rendered once per distinct content and reused from a small per-process cache.

Why: rendering the page (three product cards, the Buy form, twenty orders with their items, a dozen
URLs) cost more than everything else a view of it does, queries included, yet it rarely changes
between two views. The view still runs every query on every request; the cache only replaces the
template. Its key holds every value the HTML is rendered from (the rows the queries just returned,
who is viewing, which page, which notice, where the app is mounted), compared by equality, not by a
digest, so two different pages can never share an entry and any change to a product or an order
renders afresh on the very next view. Pages showing a flashed message, a form error or a shopper's
selection are never cached (they are one-off); they are rendered directly.

What is never cached: the CSRF token. The page is rendered with a placeholder that user data cannot
produce (its "<" would be escaped to "&lt;" anywhere it came from a value), and each request swaps in
its own token. The cache is per application (tests build many apps in one process) and bounded (LRU)
so memory stays flat however many shoppers visit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from flask import current_app
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

# Entries per process; one entry is the page's HTML (about 10 KB with 20 orders) plus its key.
MAX_ENTRIES = 512

# Raw "<" cannot come out of an autoescaped value, so only our own insertions match.
CSRF_PLACEHOLDER = Markup("<csrf-token-placeholder>")


def placeholder_token() -> Markup:
    """Stands in for Flask-WTF's csrf_token() while a cacheable page is rendered."""
    return CSRF_PLACEHOLDER


class PageCache:
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


def _cache() -> PageCache:
    cache = current_app.extensions.get("shop_page_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("shop_page_cache", PageCache())
    return cache


def cached(key: Hashable) -> str | None:
    """The page rendered earlier under key, if still cached."""
    return _cache().get(key)


def store(key: Hashable, html: str) -> None:
    """Keep a page rendered with placeholder_token under key."""
    _cache().put(key, html)


def with_csrf_token(html: str) -> str:
    """The page with this request's CSRF token in place of the placeholder."""
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, str(escape(generate_csrf())))
    return html
