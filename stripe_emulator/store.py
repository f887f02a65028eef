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
_OBJECT_TABLES = (
    "sessions",
    "line_items",
    "payment_intents",
    "charges",
    "refunds",
    "disputes",
    "early_fraud_warnings",
    "balance_transactions",
    "events",
    "webhook_endpoints",
    "attempts",
    "coupons",
    "promotion_codes",
    "shipping_rates",
    "invoices",
    "tax_rates",
)


def _differs(saved: Any, value: Any) -> bool:
    return bool(saved != value)


# Events never change once created except for pending_webhooks, and attempt logs only grow: comparing those
# alone keeps a save proportional to what changed, not to the size of the account.
_CHANGE_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "events": lambda saved, value: bool(saved["pending_webhooks"] != value["pending_webhooks"]),
    "attempts": lambda saved, value: len(saved) != len(value),
    "idempotency": lambda saved, value: bool(saved["created"] != value["created"]),  # final once answered
}

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
    business_name: str = "Your business"  # the account's name (hosted pages, invoices)
    tax: Any = None  # the account's Stripe Tax settings (taxes.TaxSettings), from the command line
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._saved_reset()
        self.reset()
        if self.path is not None:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Survives the process crashing (what a restart test does); only an OS crash may lose the last commit.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._load()

    def _saved_reset(self) -> None:
        self._saved: dict[str, dict[str, Any]] = {}  # what the state file holds, by kind and id
        self._idempotency_rows: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def reset(self) -> None:
        """Forget every object, event, endpoint, key and counter."""
        with self.lock:
            self.sessions: dict[str, dict[str, Any]] = {}
            self.line_items: dict[str, list[dict[str, Any]]] = {}
            self.payment_intents: dict[str, dict[str, Any]] = {}
            self.charges: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.disputes: dict[str, dict[str, Any]] = {}
            self.early_fraud_warnings: dict[str, dict[str, Any]] = {}
            # Every balance transaction, in creation order (made only by balance.record_balance_transaction).
            self.balance_transactions: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}
            self.webhook_endpoints: dict[str, dict[str, Any]] = {}
            self.attempts: dict[str, list[dict[str, Any]]] = {}
            self.coupons: dict[str, dict[str, Any]] = {}
            self.promotion_codes: dict[str, dict[str, Any]] = {}
            self.shipping_rates: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.tax_rates: dict[str, dict[str, Any]] = {}  # Stripe Tax's TaxRate objects by jurisdiction and rate
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
                view["_refunds"] = [
                    copy.deepcopy(r) for r in reversed(self.refunds.values()) if r["charge"] == obj["id"]
                ]
            elif obj.get("object") == "promotion_code":
                # What versions before 2025-09-30.clover show in place of `promotion`: the whole coupon.
                coupon = self.coupons.get(obj["promotion"]["coupon"])
                view["_coupon"] = copy.deepcopy(coupon)
            elif obj.get("object") == "payment_intent":
                view["_charges"] = [
                    self.snapshot(c) for c in reversed(self.charges.values()) if c["payment_intent"] == obj["id"]
                ]
            return view

    def emit(
        self,
        type: str,
        obj: dict[str, Any],
        origin: Origin | None,
        *,
        since_version: str | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
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

    def save(self, *, clock_moved: bool = False) -> None:
        """Write what changed since the last save to the state file (no-op in memory).

        Changes are found by comparing each object with a copy of what was last written (a C-speed dict
        comparison), so only new or changed rows are serialized.
        """
        if self._db is None:
            return
        with self.lock:
            tables = self._tables()
            writes: list[tuple[str, str, str]] = []
            deletes: list[tuple[str, str]] = []
            for kind, table in tables.items():
                saved = self._saved.setdefault(kind, {})
                changed = _CHANGE_TESTS.get(kind, _differs)
                for key, value in table.items():
                    if key not in saved or changed(saved[key], value):
                        writes.append((kind, key, json.dumps(value, sort_keys=True)))
                        saved[key] = copy.deepcopy(value)
                for key in saved.keys() - table.keys():
                    deletes.append((kind, key))
                    del saved[key]
            if not writes and not deletes and not clock_moved:
                return
            # The service clock never runs backwards over a restart; real time only moves forward, so its
            # reading needs writing only along with other changes or after the clock was advanced.
            writes.append(("meta", "now", json.dumps(self.clock.now())))
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO rows (kind, id, body) VALUES (?, ?, ?) "
                    "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                    writes,
                )
                self._db.executemany("DELETE FROM rows WHERE kind = ? AND id = ?", deletes)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._saved = {}  # unknown what reached the file: the next save rewrites everything
                raise

    def close(self) -> None:
        """Save and close the state file."""
        if self._db is not None:
            self.save()
            with self.lock:
                self._db.close()
                self._db = None

    def _tables(self) -> dict[str, dict[str, Any]]:
        """All persistent state as JSON-ready values, by kind and id."""
        tables: dict[str, dict[str, Any]] = {name: getattr(self, name) for name in _OBJECT_TABLES}
        tables["async_payments"] = {k: asdict(v) for k, v in self.async_payments.items()}
        tables["refund_transitions"] = {k: asdict(v) for k, v in self.refund_transitions.items()}
        idempotency: dict[str, Any] = {}
        for scope, record in self.idempotency.items():
            if record.response is None:
                continue  # a request in flight dies with the process, as its connection does
            cached = self._idempotency_rows.get(scope)
            if cached is None or cached[1]["created"] != record.created:
                cached = self._idempotency_rows[scope] = (
                    json.dumps(list(scope)),
                    {
                        "method": record.method,
                        "path": record.path,
                        "fingerprint": record.fingerprint,
                        "created": record.created,
                        "body": base64.b64encode(record.response[0]).decode(),
                        "status": record.response[1],
                        "headers": dict(record.response[2]),
                    },
                )
            idempotency[cached[0]] = cached[1]
        tables["idempotency"] = idempotency
        tables["meta"] = {"deliveries": [asdict(d) for d in self.deliveries]}
        return tables

    def _load(self) -> None:
        assert self._db is not None
        loaded: dict[str, dict[str, Any]] = {}
        for kind, key, body in self._db.execute("SELECT kind, id, body FROM rows ORDER BY rowid"):
            loaded.setdefault(kind, {})[key] = json.loads(body)
        with self.lock:
            for name in _OBJECT_TABLES:
                getattr(self, name).update(copy.deepcopy(loaded.get(name, {})))
            self.async_payments = {k: AsyncPayment(**v) for k, v in loaded.get("async_payments", {}).items()}
            self.refund_transitions = {
                k: RefundTransition(**v) for k, v in loaded.get("refund_transitions", {}).items()
            }
            for scope, r in loaded.get("idempotency", {}).items():
                api_key, key = json.loads(scope)
                self.idempotency[(api_key, key)] = IdempotencyRecord(
                    r["method"],
                    r["path"],
                    r["fingerprint"],
                    r["created"],
                    (base64.b64decode(r["body"]), r["status"], r["headers"]),
                )
                self._idempotency_rows[(api_key, key)] = (scope, r)
            meta = loaded.get("meta", {})
            self.deliveries = [Delivery(**d) for d in meta.get("deliveries", [])]
            saved_now = float(meta.get("now", 0.0))
            if saved_now > self.clock.now():
                self.clock.advance(saved_now - self.clock.now())
            loaded.get("meta", {}).pop("now", None)  # not compared: see save()
            self._saved = loaded
