"""The Emulator: WSGI front door (auth, idempotency, rate limits, faults) plus test controls."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from . import api, controls, disputes, endpoints, hosted, payments
from .clock import Clock
from .errors import EmulatorStateError, StripeAPIError
from .forms import parse_params
from .objects import new_id
from .router import Router
from .sdkfacts import PINNED_VERSION
from .store import IdempotencyRecord, Origin, Store
from .taxes import TaxSettings
from .versions import check_version, render_event
from .webhooks import Deliverer, Order, Sender, sign

log = logging.getLogger("stripe_emulator")

IDEMPOTENCY_TTL = 24 * 60 * 60
# "Idempotency keys are up to 255 characters long" (docs.stripe.com/api/idempotent_requests).
MAX_IDEMPOTENCY_KEY = 255
RATE_LIMIT_PER_SECOND = 25  # Stripe's test-mode limit per endpoint
IN_PROCESS = "stripe_emulator.in_process"  # WSGI environ flag set by EmulatorHTTPClient
TIMEOUT_MARKER = "X-Stripe-Emulator-Fault"

FaultStatus = int | Literal["timeout"]


@dataclass
class Fault:
    """Make the next `times` requests to one endpoint fail."""

    status: FaultStatus
    times: int
    process: bool


class Emulator:
    """A local Stripe test-mode account with Checkout, refunds, events, webhook endpoints and webhooks.

    State lives in memory, or in the SQLite file `state_path` so that a restart loses nothing.
    `api_version` is the account's default API version (the SDK's pin unless given); `webhook_url` and
    `webhook_secret` register (or re-key) one endpoint taking every event at the account's version.
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_test",
        public_url: str = "http://127.0.0.1:12111",
        sender: Sender | None = None,
        clock: Clock | None = None,
        rate_limit: bool = False,
        async_delivery: bool = False,
        async_delay: float | None = 5.0,
        tick_interval: float = 0.25,
        timeout_fault_seconds: float = 90.0,
        api_version: str | None = None,
        state_path: str | None = None,
        business_name: str = "Your business",
        tax: TaxSettings | None = None,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.webhook_secret = webhook_secret
        self.clock = clock or Clock()
        self.rate_limit = rate_limit
        self.async_delay = async_delay
        self.timeout_fault_seconds = timeout_fault_seconds
        self.business_name = business_name
        self.hosted_drafts: hosted.Drafts = {}  # the payment page's last refused attempt per session
        self.store = Store(self.clock, check_version(api_version or PINNED_VERSION), path=state_path)
        self.store.business_name = business_name
        self.store.tax = tax or TaxSettings()  # Stripe Tax: registrations, checkout default, default behavior
        self.deliverer = Deliverer(self.store, sender)
        self.store.on_event = self.deliverer.enqueue
        if webhook_url is not None:
            self._command_line_endpoint(webhook_url, webhook_secret)
        self._changed = threading.Condition(self.store.lock)
        self.deliverer.on_enqueue = self._notify
        self._faults: dict[str, deque[Fault]] = {}
        self._api: Router[api.Handler] = api.build_router()
        self._controls = controls.build_router()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        if async_delivery:
            self.start_background(tick_interval)

    # ------------------------------------------------------------ test controls

    def _command_line_endpoint(self, url: str, secret: str) -> None:
        """The endpoint given on the command line: created once, re-keyed to `secret` on later starts."""
        with self.store.lock:
            for endpoint in self.store.webhook_endpoints.values():
                if endpoint["url"] == url:
                    endpoint["_secret"] = secret
                    break
            else:
                endpoints.create_endpoint(self.store, {"url": url, "enabled_events": ["*"]}, secret=secret)
            self.store.save()

    def pay(
        self,
        session_id: str,
        card: str = "4242424242424242",
        delayed: str | None = None,
        expiry: str = "12/34",
        cvc: str = "123",
        shipping: dict[str, str] | None = None,
        billing: dict[str, str] | None = None,
        shipping_rate: str | None = None,
    ) -> payments.PaymentResult:
        """Pay a session without the browser; raises EmulatorStateError if it is not open.

        `billing`: the billing address the page asks for when tax needs it (country, state, postal_code, ...);
        `shipping_rate`: the shipping option the shopper picked (default: the first)."""
        try:
            return payments.pay(
                self.store,
                session_id,
                card=card,
                expiry=expiry,
                cvc=cvc,
                delayed=delayed,
                async_delay=self.async_delay,
                shipping=shipping,
                billing=billing,
                shipping_rate=shipping_rate,
            )
        finally:
            self.store.save()

    def complete_async(self, session_id: str, succeed: bool = True) -> dict[str, Any]:
        """Finish a delayed payment now, successfully or not; returns the session."""
        try:
            return copy.deepcopy(payments.complete_async(self.store, session_id, succeed))
        finally:
            self.store.save()

    def expire(self, session_id: str) -> dict[str, Any]:
        """Expire an open session as Stripe would when expires_at passes."""
        try:
            return copy.deepcopy(payments.expire_session(self.store, session_id))
        except StripeAPIError as error:
            raise EmulatorStateError(error.message, error.status) from error
        finally:
            self.store.save()

    def settle_refund(self, refund_id: str) -> dict[str, Any]:
        """Apply a test card refund's later status change now (pending -> succeeded, succeeded -> failed)."""
        try:
            return copy.deepcopy(payments.settle_refund(self.store, refund_id))
        finally:
            self.store.save()

    def advance_dispute(self, dispute_id: str, outcome: str | None = None) -> dict[str, Any]:
        """Move one dispute past its due date (no evidence: lost), or decide one under review (`outcome`)."""
        try:
            return copy.deepcopy(disputes.advance_dispute(self.store, dispute_id, outcome))
        except StripeAPIError as error:
            raise EmulatorStateError(error.message, error.status) from error
        finally:
            self.store.save()

    def advance(self, seconds: float) -> None:
        """Move the service clock forward and run what became due (expiries, refunds, deliveries)."""
        self.clock.advance(seconds)
        self.store.save(clock_moved=True)
        self.tick()

    def tick(self) -> None:
        """Run what is due on the service clock: expiries, delayed payments, refund changes, deliveries."""
        payments.expire_due_sessions(self.store)
        payments.complete_due_async(self.store)
        payments.settle_due_refunds(self.store)
        disputes.close_past_due(self.store)
        self.store.save()
        self.deliverer.deliver_due()
        self.store.save()

    def deliver_pending(self) -> list[tuple[str, int | None]]:
        """Deliver every queued event that is due now; returns (event_id, status) per attempt."""
        return self.deliverer.deliver_due()

    def redeliver(self, event_id: str) -> int | None:
        """Send one event again now; returns the endpoint's status (None on a network error)."""
        return self.deliverer.redeliver(event_id)

    def hold_deliveries(self) -> None:
        """Hold back new events until release_deliveries (for late delivery)."""
        self.deliverer.hold()

    def lose_deliveries(self, event_type: str, times: int = 1) -> None:
        """Lose the next `times` events of `event_type` (never acknowledged by any endpoint; still listed by
        `GET /v1/events?delivery_success=false`), e.g. the `charge.refunded` of a Dashboard refund."""
        self.deliverer.lose(event_type, times)

    def release_deliveries(self, order: Order = "fifo", duplicate: int = 1) -> list[str]:
        """Queue the held events in `order`, each `duplicate` times; returns the queued ids."""
        return self.deliverer.release(order, duplicate)

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Block until no delivery is queued or in flight (background mode); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.deliverer.pending() == 0, timeout)

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Every event created, oldest first, optionally of one type, in the account's default version.

        Unfiltered by version: events an older endpoint never receives (e.g. `refund.created` for cards before
        2024-10-28.acacia) are listed too.
        """
        with self.store.lock:
            return [
                render_event(e, self.store.api_version)
                for e in self.store.events.values()
                if type is None or e["type"] == type
            ]

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        """All Checkout Sessions by id (copies)."""
        with self.store.lock:
            return copy.deepcopy(self.store.sessions)

    @property
    def call_counts(self) -> dict[str, int]:
        """API calls per endpoint, keyed like "GET /v1/checkout/sessions/{id}"."""
        with self.store.lock:
            return dict(self.store.call_counts)

    def delivery_attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of an event: attempt, at, url, status, error."""
        with self.store.lock:
            return copy.deepcopy(self.deliverer.attempts.get(event_id, []))

    def idempotency_keys(self) -> list[dict[str, Any]]:
        """Every idempotency key the service has seen: key, method, path and the stored status (None in flight)."""
        with self.store.lock:
            return [
                {
                    "key": key,
                    "method": r.method,
                    "path": r.path,
                    "status": r.response[1] if r.response is not None else None,
                }
                for (_api_key, key), r in self.store.idempotency.items()
            ]

    def inject_fault(self, endpoint: str, status: FaultStatus = 500, times: int = 1, process: bool = False) -> None:
        """Fail the next `times` calls to `endpoint`; `process=True` runs them first (lost reply)."""
        if status != "timeout" and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"unsupported fault status {status!r}")
        with self.store.lock:
            self._faults.setdefault(endpoint, deque()).append(Fault(status, times, process))

    def reset(self) -> None:
        """Forget all state, queued deliveries and faults (configuration, i.e. webhook endpoints, is kept)."""
        with self.store.lock:
            endpoints = self.store.webhook_endpoints
            self.store.reset()
            self.store.webhook_endpoints.update(endpoints)
            self.deliverer.reset()
            self._faults.clear()

    def sign(self, payload: bytes, timestamp: int | None = None) -> str:
        """A Stripe-Signature header for `payload` with the configured webhook secret."""
        return sign(self.webhook_secret, payload, timestamp)

    # ------------------------------------------------------------ background work

    def start_background(self, interval: float = 0.25) -> None:
        """Start a thread that ticks and delivers webhooks (used by the live server)."""
        if self._worker is not None:
            return
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, args=(interval,), name="stripe-emulator-worker", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop the background thread, if any, and save and close the state file."""
        self._stopping.set()
        self._notify()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        self.store.close()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run(self, interval: float) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # keep the worker alive; the traceback is logged
                log.exception("background tick failed")
            self._notify()
            with self._changed:
                due = self.deliverer.next_due()
                if due is None or due > self.clock.now():
                    self._changed.wait(interval)

    # ------------------------------------------------------------ WSGI

    @property
    def wsgi_app(self) -> Emulator:
        """The WSGI application (the emulator object itself is callable)."""
        return self

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request_id = new_id("req_", 14)
        response = self._dispatch(request, request_id)
        self.store.save()
        response.headers["Request-Id"] = request_id
        log.info("%s %s -> %s (%s)", request.method, request.full_path.rstrip("?"), response.status_code, request_id)
        return response(environ, start_response)

    def _dispatch(self, request: Request, request_id: str) -> Response:
        path = request.path
        if path.startswith("/v1/"):
            return self._api_request(request, request_id)
        if path.startswith("/pay/") and path.endswith("/discount") and request.method == "POST":
            return hosted.promotion_code(
                request, self.store, path.removeprefix("/pay/").removesuffix("/discount"), self.hosted_drafts
            )
        if path.startswith("/pay/") and path.endswith("/update") and request.method == "POST":
            return hosted.update(
                request, self.store, path.removeprefix("/pay/").removesuffix("/update"), self.hosted_drafts
            )
        if path.startswith("/invoices/"):
            return hosted.invoice(self.store, path.removeprefix("/invoices/"))
        if path.startswith("/pay/"):
            session_id = path.removeprefix("/pay/")
            if request.method == "POST":
                return hosted.submit(request, self.store, session_id, self.pay, self.business_name, self.hosted_drafts)
            return hosted.show(request, self.store, session_id, self.business_name, self.hosted_drafts)
        if path in hosted.ASSETS:
            return hosted.asset(path)
        if path.startswith("/_emulator/"):
            return controls.handle(self, self._controls, request)
        return _json_error(StripeAPIError(404, f"Unrecognized request URL ({request.method}: {path})."))

    def _api_request(self, request: Request, request_id: str) -> Response:
        method, path = request.method, request.path
        match = self._api.route(method, path)
        key = match.key if match else f"{method} {path}"
        with self.store.lock:
            self.store.call_counts[key] += 1
        api_key = _api_key(request)
        if api_key is None:
            return _json_error(
                StripeAPIError(
                    401,
                    "Invalid API Key provided. The emulator accepts test keys (sk_test_...) sent "
                    "as `Authorization: Bearer sk_test_...`.",
                )
            )
        fault = self._take_fault(key)
        if fault is not None and not fault.process:
            return self._fault_response(fault, request)
        limited = self._rate_limited(key)
        if limited is not None:
            return limited
        if match is None:
            return _json_error(StripeAPIError(404, f"Unrecognized request URL ({method}: {path})."))
        pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
        params = parse_params(pairs)
        try:
            version = check_version(request.headers.get("Stripe-Version") or self.store.api_version, "Stripe-Version")
        except StripeAPIError as error:
            return _json_error(error)
        idempotency_key = request.headers.get("Idempotency-Key") if method == "POST" else None
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            return _json_error(_idempotency_key_length_error(idempotency_key))
        origin = Origin(request_id, idempotency_key)
        call = api.Call(self.store, params, origin, self.public_url, version)
        if idempotency_key is None:
            response = _execute(match.handler, call, match.args)
        else:
            response = self._idempotent(
                api_key, idempotency_key, method, path, params, lambda: _execute(match.handler, call, match.args)
            )
            response.headers["Idempotency-Key"] = idempotency_key
        if fault is not None:
            return self._fault_response(fault, request)
        return response

    def _idempotent(self, api_key: str, key: str, method: str, path: str, params: dict[str, Any], run: Any) -> Response:
        """Run once per key; replay the stored response; refuse reuse with other params."""
        scope = (api_key, key)
        fingerprint = json.dumps(params, sort_keys=True)
        with self.store.lock:
            now = self.clock.now()
            for old in [k for k, r in self.store.idempotency.items() if r.created + IDEMPOTENCY_TTL <= now]:
                del self.store.idempotency[old]
            record = self.store.idempotency.get(scope)
            if record is not None:
                return _replay_or_refuse(record, key, method, path, fingerprint)
            record = IdempotencyRecord(method, path, fingerprint, now)
            self.store.idempotency[scope] = record
        response = run()
        headers = {k: v for k, v in response.headers.items() if k != "Request-Id"}
        with self.store.lock:
            record.response = (response.get_data(), response.status_code, headers)
        return response

    def _take_fault(self, key: str) -> Fault | None:
        with self.store.lock:
            queue = self._faults.get(key)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            return fault

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.status == "timeout":
            if request.environ.get(IN_PROCESS):
                return Response(status=504, headers={TIMEOUT_MARKER: "timeout"})
            # A live client can only observe a timeout by waiting; stop early on shutdown.
            self._stopping.wait(self.timeout_fault_seconds)
            return _json_error(StripeAPIError(504, "Injected timeout.", type="api_error"))
        if fault.status == 429:
            return _json_error(_rate_limit_error())
        if fault.status == 409:
            return _json_error(
                StripeAPIError(
                    409,
                    "There is currently another in-progress request using this Idempotent Key "
                    "(injected fault). Please try again later.",
                    code="idempotency_key_in_use",
                )
            )
        return _json_error(
            StripeAPIError(int(fault.status), "An unknown error occurred (injected fault).", type="api_error")
        )

    def _rate_limited(self, key: str) -> Response | None:
        if not self.rate_limit:
            return None
        with self.store.lock:
            now = self.clock.now()
            window = self.store.rate_windows.setdefault(key, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= RATE_LIMIT_PER_SECOND:
                return _json_error(_rate_limit_error())
            window.append(now)
        return None


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.startswith("sk_test_") and len(token) > 8:
        return token
    return None


def _rate_limit_error() -> StripeAPIError:
    return StripeAPIError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def _json(obj: dict[str, Any], status: int = 200, version: str = PINNED_VERSION) -> Response:
    body = json.dumps(obj, indent=2)
    return Response(body, status=status, mimetype="application/json", headers={"Stripe-Version": version})


def _json_error(error: StripeAPIError) -> Response:
    return _json(error.envelope(), error.status)


def _execute(handler: api.Handler, call: api.Call, args: dict[str, str]) -> Response:
    try:
        return _json(handler(call, **args), version=call.version)
    except StripeAPIError as error:
        return _json_error(error)
    except Exception:  # answer like Stripe's 500 and keep the traceback in the log
        log.exception("handler failed")
        return _json_error(StripeAPIError(500, "An unknown error occurred.", type="api_error"))


def _idempotency_key_length_error(key: str) -> StripeAPIError:
    """Stripe's answer to a key outside 1-255 characters: a 400 `idempotency_error`, in Stripe's own words."""
    return StripeAPIError(
        400,
        f"Idempotent key length is {len(key)} characters long, which is outside accepted lengths. Idempotent Keys "
        f"must be 1-{MAX_IDEMPOTENCY_KEY} characters long. If you're looking for a decent generator, try using a "
        "UUID defined by IETF RFC 4122.",
        type="idempotency_error",
    )


def _replay_or_refuse(record: IdempotencyRecord, key: str, method: str, path: str, fingerprint: str) -> Response:
    if record.response is None:
        return _json_error(
            StripeAPIError(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through): " + key + ". Please try again later.",
                code="idempotency_key_in_use",
            )
        )
    if (record.method, record.path) != (method, path):
        return _json_error(
            StripeAPIError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{record.method} {record.path}' vs '{method} {path}'). Try "
                f"using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        )
    if record.fingerprint != fingerprint:
        return _json_error(
            StripeAPIError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        )
    body, status, headers = record.response
    response = Response(body, status=status, headers=headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response
