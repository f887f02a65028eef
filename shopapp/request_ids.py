"""The request id: one short id per request, shared by its log lines, its response, its outbox rows and its
Stripe calls, so "what happened to order 42 at 3 a.m." is one grep.

Taken from the proxy's `X-Request-ID` when it is a plausible id (HAProxy's `unique-id-format` sets one, so the
proxy's log and ours agree), else made here. Kept in a ContextVar so models and services read it without
touching Flask's request (services never do). Imports nothing of the shop.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-ID"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"
# Ids from the proxy: letters, digits and . _ : - only, 8-64 characters; anything else is replaced (a
# header is client-controlled when no proxy sets it: it must not inject text into logs).
_PLAUSIBLE = re.compile(r"[A-Za-z0-9._:-]{8,64}")

_current: ContextVar[str | None] = ContextVar("shop_request_id", default=None)
# The last id made here (not taken from a header) in this context: see made_here.
_made: ContextVar[str | None] = ContextVar("shop_request_id_made_here", default=None)


def new_request_id() -> str:
    """A fresh id: 16 random bytes as 32 hex characters."""
    value = secrets.token_hex(16)
    _made.set(value)
    return value


def made_here(value: str) -> bool:
    """True when value is an id this process made (random hex: no outside text in it, nothing to redact)."""
    return value == _made.get()


def accept_or_make(incoming: str | None) -> str:
    """The proxy's id when plausible, else a new one."""
    if incoming and _PLAUSIBLE.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being served in this context; None outside a request (CLI, cron)."""
    return _current.get()


def set_request_id(value: str | None) -> object:
    """Make value the current id; returns a token for reset_request_id."""
    return _current.set(value)


def reset_request_id(token: object) -> None:
    """Restore the id that was current before set_request_id."""
    _current.reset(token)  # type: ignore[arg-type]
