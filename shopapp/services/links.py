"""Absolute URLs of the shop's pages, always from SHOP_BASE_URL.

Never from the request: behind a proxy the request's Host and scheme are the proxy's (`http://127.0.0.1:5360`
behind TLS), and a mail sent by `flask mail worker` has no request at all. One door for emailed links and
Stripe's return URLs, so both name the public address production checks (config.production_problems).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app


def public_url(endpoint: str, **values: Any) -> str:
    """SHOP_BASE_URL + the route's path (and query from extra `values`), e.g. https://shop.example.com/success/."""
    adapter = current_app.url_map.bind("localhost")
    return str(current_app.config["SHOP_BASE_URL"]) + adapter.build(endpoint, values)


def _cancel_key() -> bytes:
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), b"checkout-cancel-link", hashlib.sha256).digest()


def cancel_token(user_id: int) -> str:
    """The token the shop puts in a shopper's Stripe cancel URL: a keyed digest of the user id (hex, 32 chars).

    GET /checkout/canceled cancels an open checkout only with it, so a link or image on another site cannot
    cancel a shopper's checkout (a GET that writes must prove it came from the shop's own URL). Deterministic
    per shopper: the cancel URL is part of the idempotent Checkout Session request, so it must not change
    between retries, nodes or log-ins.
    """
    return hmac.new(_cancel_key(), str(user_id).encode(), hashlib.sha256).hexdigest()[:32]


def cancel_token_valid(user_id: int, token: str | None) -> bool:
    """True when `token` is this shopper's cancel token (constant-time comparison)."""
    return bool(token) and hmac.compare_digest(cancel_token(user_id), str(token))
