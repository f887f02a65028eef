"""Signed webhook delivery to every subscribed endpoint, per endpoint API version, with retries."""

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
from typing import Any, Literal

from .store import Delivery, Store
from .versions import event_exists_for, render_event

log = logging.getLogger("stripe_emulator.webhooks")

Sender = Callable[[str, bytes, dict[str, str]], int]
Order = Literal["fifo", "reverse", "shuffle"]

# Stripe retries for days; the emulator compresses that into seconds.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
MAX_ATTEMPTS = 8
# How much of an endpoint's answer the sender reads (and discards) before closing the connection.
ANSWER_READ_BYTES = 1 << 20


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """Build a `Stripe-Signature` header: `t=<unix>,v1=HMAC-SHA256(secret, "t.payload")`."""
    # Signatures use wall time, not the service clock: receivers check them against their own clock.
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def urllib_sender(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> int:
    """POST `body` to `url` over HTTP and return the status code (HTTP errors included).

    The answer is read (up to ANSWER_READ_BYTES) before hanging up: closing with it unread resets the
    connection, and Werkzeug's development server then skips the response's close callbacks (where the
    shop sends the mail a webhook queued)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(ANSWER_READ_BYTES)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read(ANSWER_READ_BYTES)
        return int(exc.code)


class Deliverer:
    """Queues each event for every subscribed endpoint, sends it signed and rendered in that endpoint's
    API version, and retries failures on a compressed backoff schedule."""

    def __init__(self, store: Store, sender: Sender | None) -> None:
        self.store = store
        self.sender: Sender = sender or urllib_sender
        self.on_enqueue: Callable[[], None] = lambda: None
        self.reset()

    def reset(self) -> None:
        """Drop held deliveries (the store's reset drops queued ones and the attempt log)."""
        with self.store.lock:
            self.held: list[tuple[str, str]] | None = None
            self.in_flight = 0
            # Event type -> how many of the next such events are lost (test control `lose`).
            self.lost: dict[str, int] = {}

    @property
    def attempts(self) -> dict[str, list[dict[str, Any]]]:
        """Every delivery attempt per event id."""
        return self.store.attempts

    def endpoint_version(self, endpoint: dict[str, Any]) -> str:
        """The API version events are rendered in for `endpoint` (its own, else the account's default)."""
        return str(endpoint.get("api_version") or self.store.api_version)

    def targets(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Enabled endpoints subscribed to the event's type whose API version has that event."""
        with self.store.lock:
            return [
                endpoint
                for endpoint in self.store.webhook_endpoints.values()
                if endpoint["status"] == "enabled"
                and ("*" in endpoint["enabled_events"] or event["type"] in endpoint["enabled_events"])
                and event_exists_for(event, self.endpoint_version(endpoint))
            ]

    def enqueue(self, event: dict[str, Any]) -> int:
        """Queue a new event for its endpoints (or hold it); returns how many endpoints will get it.

        The endpoints are kept on the event (`_targets`) with those that acknowledged it (`_delivered`), so that
        `pending_webhooks` counts the endpoints still owed it and `GET /v1/events?delivery_success=false` lists
        it until each has answered 2xx once (Stripe's Event.pending_webhooks; a repeat 2xx changes nothing)."""
        with self.store.lock:
            pairs = [(event["id"], endpoint["id"]) for endpoint in self.targets(event)]
            event["_targets"] = [endpoint_id for _, endpoint_id in pairs]
            event["_delivered"] = []
            if self.lost.get(event["type"], 0) > 0:
                self._lose(event, pairs)
                return len(pairs)
            if self.held is not None:
                self.held.extend(pairs)
            else:
                now = self.store.clock.now()
                self.store.deliveries.extend(Delivery(e, w, now) for e, w in pairs)
        if pairs:
            self.on_enqueue()
        return len(pairs)

    def lose(self, event_type: str, times: int = 1) -> None:
        """Lose every delivery of the next `times` events of `event_type`: as if each endpoint failed every
        attempt until Stripe gave up (each such event stays pending, as `delivery_success=false` lists it)."""
        with self.store.lock:
            self.lost[event_type] = self.lost.get(event_type, 0) + times

    def _lose(self, event: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
        self.lost[event["type"]] -= 1
        for event_id, endpoint_id in pairs:
            self.store.attempts.setdefault(event_id, []).append(
                {
                    "event_id": event_id,
                    "endpoint": endpoint_id,
                    "attempt": MAX_ATTEMPTS,
                    "at": self.store.clock.now(),
                    "url": self.store.webhook_endpoints[endpoint_id]["url"],
                    "status": None,
                    "error": "lost (test control): every attempt failed and Stripe stopped retrying",
                }
            )

    def hold(self) -> None:
        """Keep new events back until `release` (late / out-of-order delivery)."""
        with self.store.lock:
            if self.held is None:
                self.held = []

    def release(self, order: Order = "fifo", duplicate: int = 1) -> list[str]:
        """Queue held events in `order`, each `duplicate` times; return the queued event ids."""
        with self.store.lock:
            held, self.held = self.held or [], None
            if order == "reverse":
                held.reverse()
            elif order == "shuffle":
                random.shuffle(held)
            elif order != "fifo":
                raise ValueError(f"unknown order {order!r}")
            now = self.store.clock.now()
            pairs = [pair for pair in held for _ in range(duplicate)]
            self.store.deliveries.extend(Delivery(e, w, now) for e, w in pairs)
        self.on_enqueue()
        return [event_id for event_id, _ in pairs]

    def pending(self) -> int:
        """Deliveries queued or being sent (held ones excluded)."""
        with self.store.lock:
            return len(self.store.deliveries) + self.in_flight

    def deliver_due(self) -> list[tuple[str, int | None]]:
        """Send every delivery that is due now, once; failures are rescheduled."""
        with self.store.lock:
            now = self.store.clock.now()
            due = [d for d in self.store.deliveries if d.due_at <= now]
            self.store.deliveries = [d for d in self.store.deliveries if d.due_at > now]
            self.in_flight += len(due)
        results = []
        for delivery in due:
            try:
                status = self._attempt(delivery.event_id, delivery.endpoint_id, delivery.attempt + 1)
            finally:
                with self.store.lock:
                    self.in_flight -= 1
            results.append((delivery.event_id, status))
            if (status is None or not 200 <= status < 300) and delivery.endpoint_id in self.store.webhook_endpoints:
                self._reschedule(delivery)
        return results

    def next_due(self) -> float | None:
        """Service time at which the next queued delivery is due."""
        with self.store.lock:
            return min((d.due_at for d in self.store.deliveries), default=None)

    def redeliver(self, event_id: str) -> int | None:
        """Send an event again right now to its endpoints (no retry), like the dashboard's Resend.

        Returns the last endpoint's status (None on a network error or when no endpoint takes it).
        """
        with self.store.lock:
            event = self.store.events[event_id]
            endpoints = [endpoint["id"] for endpoint in self.targets(event)]
        status: int | None = None
        for endpoint_id in endpoints:
            attempt = len(self.attempts.get(event_id, [])) + 1
            status = self._attempt(event_id, endpoint_id, attempt)
        return status

    def _reschedule(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        if delivery.attempt >= MAX_ATTEMPTS:
            log.warning("giving up on %s after %d attempts", delivery.event_id, delivery.attempt)
            return
        delay = BACKOFF[min(delivery.attempt - 1, len(BACKOFF) - 1)]
        with self.store.lock:
            delivery.due_at = self.store.clock.now() + delay
            self.store.deliveries.append(delivery)

    def _attempt(self, event_id: str, endpoint_id: str, attempt: int) -> int | None:
        """Sign and send one event to one endpoint; record the attempt. None means no HTTP status."""
        with self.store.lock:
            endpoint = self.store.webhook_endpoints.get(endpoint_id)
            if endpoint is None:  # deleted since the event was queued: Stripe stops sending to it
                return None
            event = self.store.events[event_id]
            body = json.dumps(render_event(event, self.endpoint_version(endpoint)), indent=2).encode()
            url, secret = endpoint["url"], endpoint["_secret"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(secret, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = self.sender(url, body, headers)
        except Exception as exc:  # a failing endpoint is data to record, not a crash
            error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s attempt %d failed", event_id, attempt, exc_info=True)
        with self.store.lock:
            self.store.attempts.setdefault(event_id, []).append(
                {
                    "event_id": event_id,
                    "endpoint": endpoint_id,
                    "attempt": attempt,
                    "at": self.store.clock.now(),
                    "url": url,
                    "status": status,
                    "error": error,
                }
            )
            if status is not None and 200 <= status < 300:
                _acknowledged(event, endpoint_id)
        log.info(
            "webhook %s %s -> %s attempt %d -> %s",
            event["type"],
            event_id,
            endpoint_id,
            attempt,
            status if status is not None else error,
        )
        return status


def _acknowledged(event: dict[str, Any], endpoint_id: str) -> None:
    """Record that `endpoint_id` answered 2xx for `event` and recount its pending webhooks (once per endpoint)."""
    targets = event.get("_targets")
    if targets is None:  # an event saved before targets were kept: count down as before
        event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        return
    delivered = event.setdefault("_delivered", [])
    if endpoint_id in targets and endpoint_id not in delivered:
        delivered.append(endpoint_id)
    event["pending_webhooks"] = len([t for t in targets if t not in delivered])
