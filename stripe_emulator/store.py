"""In-memory state of the emulated account, guarded by one re-entrant lock."""

from __future__ import annotations

import copy
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .objects import new_id


@dataclass(frozen=True)
class Origin:
    """The API request that caused a change (Stripe puts it on events as `request`)."""

    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass
class IdempotencyRecord:
    """What Stripe remembers about one idempotency key."""

    method: str
    path: str
    fingerprint: str
    created: float
    response: tuple[bytes, int, dict[str, str]] | None = None  # None while in flight


@dataclass
class AsyncPayment:
    """A delayed payment that completes later (`succeed` decides how)."""

    due_at: float | None
    succeed: bool


@dataclass
class Store:
    """All emulator state. Every read-modify-write happens under `lock`."""

    clock: Clock
    api_version: str
    webhooks_enabled: bool
    on_event: Callable[[dict[str, Any]], None] = lambda event: None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every object, event, key and counter."""
        with self.lock:
            self.sessions: dict[str, dict[str, Any]] = {}
            self.line_items: dict[str, list[dict[str, Any]]] = {}
            self.payment_intents: dict[str, dict[str, Any]] = {}
            self.charges: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}
            self.async_payments: dict[str, AsyncPayment] = {}
            self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
            self.call_counts: Counter[str] = Counter()
            self.rate_windows: dict[str, deque[float]] = {}

    def emit(self, type: str, obj: dict[str, Any], origin: Origin | None) -> dict[str, Any]:
        """Record an event holding a snapshot of `obj` and hand it to the deliverer."""
        with self.lock:
            origin = origin or Origin()
            event = {
                "id": new_id("evt_"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.clock.timestamp(),
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 1 if self.webhooks_enabled else 0,
                "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
                "type": type,
            }
            self.events[event["id"]] = event
            self.on_event(event)
            return event
