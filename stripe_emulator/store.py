"""State of the emulated account, guarded by one re-entrant lock, optionally kept in a SQLite file.

With a state file every object, event, webhook endpoint, queued delivery, scheduled change and idempotency
record survives a restart: `save()` runs after every request and background tick and writes the rows that
changed (one transaction), and a new Store on the same file loads them back.
"""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
class RefundTransition:
    """A refund's later status change, as Stripe's refund test cards drive it (due on the service clock)."""

    due_at: float
    status: str  # "succeeded" or "failed"
    failure_reason: str | None = None


@dataclass
class Delivery:
    """One queued delivery of an event to one endpoint (attempt counts retries of this delivery)."""

    event_id: str
    endpoint_id: str
    due_at: float
    attempt: int = 0


# Object tables persisted as JSON, in insertion order.
_OBJECT_TABLES = ("sessions", "line_items", "payment_intents", "charges", "refunds", "events",
                  "webhook_endpoints", "attempts")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
)
"""


@dataclass
class Store:
    """All emulator state. Every read-modify-write happens under `lock`."""

    clock: Clock
    api_version: str  # the account's default API version
    path: str | None = None  # SQLite state file; None keeps everything in memory
    on_event: Callable[[dict[str, Any]], int] = lambda event: 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._saved: dict[str, dict[str, str]] = {}
        self.reset()
        if self.path is not None:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._load()

    def reset(self) -> None:
        """Forget every object, event, endpoint, key and counter."""
        with self.lock:
            self.sessions: dict[str, dict[str, Any]] = {}
            self.line_items: dict[str, list[dict[str, Any]]] = {}
            self.payment_intents: dict[str, dict[str, Any]] = {}
            self.charges: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}
            self.webhook_endpoints: dict[str, dict[str, Any]] = {}
            self.attempts: dict[str, list[dict[str, Any]]] = {}
            self.deliveries: list[Delivery] = []
            self.async_payments: dict[str, AsyncPayment] = {}
            self.refund_transitions: dict[str, RefundTransition] = {}
            self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
            self.call_counts: Counter[str] = Counter()
            self.rate_windows: dict[str, deque[float]] = {}

    # ------------------------------------------------------------ events

    def snapshot(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of `obj` plus what older API versions show inside it (a charge's refunds, an intent's charges)."""
        with self.lock:
            view = copy.deepcopy(obj)
            if obj.get("object") == "charge":
                view["_refunds"] = [copy.deepcopy(r) for r in reversed(self.refunds.values())
                                    if r["charge"] == obj["id"]]
            elif obj.get("object") == "payment_intent":
                view["_charges"] = [self.snapshot(c) for c in reversed(self.charges.values())
                                    if c["payment_intent"] == obj["id"]]
            return view

    def emit(self, type: str, obj: dict[str, Any], origin: Origin | None, *,
             since_version: str | None = None,
             previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an event holding a snapshot of `obj` and hand it to the deliverer.

        `since_version`: the event type is only sent to readers of that API version or newer.
        """
        with self.lock:
            origin = origin or Origin()
            data: dict[str, Any] = {"object": self.snapshot(obj)}
            if previous_attributes is not None:
                data["previous_attributes"] = copy.deepcopy(previous_attributes)
            event: dict[str, Any] = {
                "id": new_id("evt_"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.clock.timestamp(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
                "type": type,
            }
            if since_version is not None:
                event["_since_version"] = since_version
            self.events[event["id"]] = event
            event["pending_webhooks"] = self.on_event(event)
            return event

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        """Write what changed since the last save to the state file (no-op in memory)."""
        if self._db is None:
            return
        with self.lock:
            rows = self._rows()
            self._db.execute("BEGIN")
            try:
                for kind, table in rows.items():
                    saved = self._saved.get(kind, {})
                    for key, body in table.items():
                        if saved.get(key) != body:
                            self._db.execute(
                                "INSERT INTO rows (kind, id, body) VALUES (?, ?, ?) "
                                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                                (kind, key, body))
                    for key in saved.keys() - table.keys():
                        self._db.execute("DELETE FROM rows WHERE kind = ? AND id = ?", (kind, key))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._saved = rows

    def close(self) -> None:
        """Save and close the state file."""
        if self._db is not None:
            self.save()
            with self.lock:
                self._db.close()
                self._db = None

    def _rows(self) -> dict[str, dict[str, str]]:
        rows = {name: {key: json.dumps(value, sort_keys=True) for key, value in getattr(self, name).items()}
                for name in _OBJECT_TABLES}
        rows["async_payments"] = {k: json.dumps(asdict(v)) for k, v in self.async_payments.items()}
        rows["refund_transitions"] = {k: json.dumps(asdict(v)) for k, v in self.refund_transitions.items()}
        rows["idempotency"] = {
            json.dumps(list(scope)): json.dumps({
                "method": r.method, "path": r.path, "fingerprint": r.fingerprint, "created": r.created,
                "body": base64.b64encode(r.response[0]).decode(), "status": r.response[1],
                "headers": r.response[2]})
            for scope, r in self.idempotency.items()
            if r.response is not None  # a request in flight dies with the process, as its connection does
        }
        rows["meta"] = {
            "deliveries": json.dumps([asdict(d) for d in self.deliveries]),
            "now": json.dumps(self.clock.now()),  # the service clock never runs backwards over a restart
        }
        return rows

    def _load(self) -> None:
        assert self._db is not None
        loaded: dict[str, dict[str, str]] = {}
        for kind, key, body in self._db.execute("SELECT kind, id, body FROM rows ORDER BY rowid"):
            loaded.setdefault(kind, {})[key] = body
        with self.lock:
            for name in _OBJECT_TABLES:
                getattr(self, name).update({k: json.loads(v) for k, v in loaded.get(name, {}).items()})
            self.async_payments = {k: AsyncPayment(**json.loads(v))
                                   for k, v in loaded.get("async_payments", {}).items()}
            self.refund_transitions = {k: RefundTransition(**json.loads(v))
                                       for k, v in loaded.get("refund_transitions", {}).items()}
            for scope, body in loaded.get("idempotency", {}).items():
                r = json.loads(body)
                api_key, key = json.loads(scope)
                self.idempotency[(api_key, key)] = IdempotencyRecord(
                    r["method"], r["path"], r["fingerprint"], r["created"],
                    (base64.b64decode(r["body"]), r["status"], r["headers"]))
            meta = loaded.get("meta", {})
            self.deliveries = [Delivery(**d) for d in json.loads(meta.get("deliveries", "[]"))]
            saved_now = json.loads(meta.get("now", "0"))
            if saved_now > self.clock.now():
                self.clock.advance(saved_now - self.clock.now())
            self._saved = loaded
