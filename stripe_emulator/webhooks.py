"""Signed webhook delivery with retries, holds and replays."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .store import Store

log = logging.getLogger("stripe_emulator.webhooks")

Sender = Callable[[str, bytes, dict[str, str]], int]
Order = Literal["fifo", "reverse", "shuffle"]

# Stripe retries for days; the emulator compresses that into seconds.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
MAX_ATTEMPTS = 8


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """Build a `Stripe-Signature` header: `t=<unix>,v1=HMAC-SHA256(secret, "t.payload")`."""
    # Signatures use wall time, not the service clock: receivers check them against their own clock.
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def urllib_sender(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> int:
    """POST `body` to `url` over HTTP and return the status code (HTTP errors included)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class Delivery:
    """One queued delivery of an event (attempt counts retries of this delivery)."""

    event_id: str
    due_at: float
    attempt: int = 0


class Deliverer:
    """Queues events, sends them signed, retries failures on a compressed backoff schedule."""

    def __init__(self, store: Store, url: str | None, secret: str, sender: Sender | None) -> None:
        self.store = store
        self.url = url
        self.secret = secret
        self.sender: Sender = sender or urllib_sender
        self.on_enqueue: Callable[[], None] = lambda: None
        self.reset()

    def reset(self) -> None:
        """Drop queued, held and recorded deliveries."""
        with self.store.lock:
            self.queue: list[Delivery] = []
            self.held: list[str] | None = None
            self.attempts: dict[str, list[dict[str, Any]]] = {}
            self.in_flight = 0

    def enqueue(self, event: dict[str, Any]) -> None:
        """Queue a new event (or hold it while deliveries are held)."""
        if self.url is None:
            return
        with self.store.lock:
            if self.held is not None:
                self.held.append(event["id"])
            else:
                self.queue.append(Delivery(event["id"], self.store.clock.now()))
        self.on_enqueue()

    def hold(self) -> None:
        """Keep new events back until `release` (late / out-of-order delivery)."""
        with self.store.lock:
            if self.held is None:
                self.held = []

    def release(self, order: Order = "fifo", duplicate: int = 1) -> list[str]:
        """Queue held events in `order`, each `duplicate` times; return the queued ids."""
        with self.store.lock:
            held, self.held = self.held or [], None
            if order == "reverse":
                held.reverse()
            elif order == "shuffle":
                random.shuffle(held)
            elif order != "fifo":
                raise ValueError(f"unknown order {order!r}")
            now = self.store.clock.now()
            ids = [event_id for event_id in held for _ in range(duplicate)]
            self.queue.extend(Delivery(event_id, now) for event_id in ids)
        self.on_enqueue()
        return ids

    def pending(self) -> int:
        """Deliveries queued or being sent (held ones excluded)."""
        with self.store.lock:
            return len(self.queue) + self.in_flight

    def deliver_due(self) -> list[tuple[str, int | None]]:
        """Send every delivery that is due now, once; failures are rescheduled."""
        with self.store.lock:
            now = self.store.clock.now()
            due = [d for d in self.queue if d.due_at <= now]
            self.queue = [d for d in self.queue if d.due_at > now]
            self.in_flight += len(due)
        results = []
        for delivery in due:
            try:
                status = self._attempt(delivery.event_id, delivery.attempt + 1)
            finally:
                with self.store.lock:
                    self.in_flight -= 1
            results.append((delivery.event_id, status))
            if status is None or not 200 <= status < 300:
                self._reschedule(delivery)
        return results

    def next_due(self) -> float | None:
        """Service time at which the next queued delivery is due."""
        with self.store.lock:
            return min((d.due_at for d in self.queue), default=None)

    def redeliver(self, event_id: str) -> int | None:
        """Send an event again right now (no retry on failure), like the dashboard's Resend."""
        if event_id not in self.store.events:
            raise KeyError(event_id)
        attempt = len(self.attempts.get(event_id, [])) + 1
        return self._attempt(event_id, attempt)

    def _reschedule(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        if delivery.attempt >= MAX_ATTEMPTS:
            log.warning("giving up on %s after %d attempts", delivery.event_id, delivery.attempt)
            return
        delay = BACKOFF[min(delivery.attempt - 1, len(BACKOFF) - 1)]
        with self.store.lock:
            delivery.due_at = self.store.clock.now() + delay
            self.queue.append(delivery)

    def _attempt(self, event_id: str, attempt: int) -> int | None:
        """Sign and send one event; record the attempt. None means no HTTP status (error)."""
        assert self.url is not None
        with self.store.lock:
            event = self.store.events[event_id]
            body = json.dumps(event, indent=2).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(self.secret, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = self.sender(self.url, body, headers)
        except Exception as exc:  # a failing endpoint is data to record, not a crash
            error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s attempt %d failed", event_id, attempt, exc_info=True)
        with self.store.lock:
            self.attempts.setdefault(event_id, []).append({
                "event_id": event_id,
                "attempt": attempt,
                "at": self.store.clock.now(),
                "url": self.url,
                "status": status,
                "error": error,
            })
            if status is not None and 200 <= status < 300 and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1
        log.info("webhook %s %s attempt %d -> %s", event["type"], event_id, attempt,
                 status if status is not None else error)
        return status
