"""Events shaped like Stripe's own, per webhook API version, and a Stripe transport that counts calls.

The objects start from Stripe's published example objects (`tests/fixtures/stripe/fixtures3-subset.json`,
a copy of stripe/openapi's fixtures3.json subset), deep-copied, with ids, amounts and metadata set and fields added or
removed per API version as Stripe's changelog says:

- 2022-11-15: a Charge no longer includes `refunds` unless expanded (so `charge.refunded` carries no list).
- 2024-10-28.acacia: `refund.created`, `refund.updated` and `refund.failed` are sent for card refunds too;
  before, only `charge.refunded` and `charge.refund.updated` announced them.

Events are signed with the test webhook secret and posted to the shop's webhook route, as Stripe would.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import stripe
from flask.testing import FlaskClient

from stripe_emulator import Emulator, EmulatorHTTPClient
from tests.support import STRIPE_FIXTURES

FIXTURES_PATH = STRIPE_FIXTURES
SDK_PIN: str = stripe._api_version._ApiVersion.CURRENT  # the version the SDK pins (stripe/_api_version.py)
VERSIONS = ("2022-11-15", "2024-10-28.acacia", SDK_PIN)


def _resources() -> dict[str, Any]:
    # Required, never skipped: these scenarios exist to test against Stripe's shapes rather than our own.
    assert FIXTURES_PATH.exists(), f"Stripe's example objects are not at {FIXTURES_PATH} (kept in the repository)"
    return json.loads(FIXTURES_PATH.read_text())["resources"]


def _day(version: str) -> str:
    return version[:10]


def charge_lists_refunds(version: str) -> bool:
    """Whether a Charge of this API version includes its `refunds` list (before 2022-11-15)."""
    return _day(version) < "2022-11-15"


def sends_refund_events(version: str) -> bool:
    """Whether card refunds are announced by refund.* events at this API version (2024-10-28.acacia on)."""
    return _day(version) >= "2024-10-28"


_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A Stripe-style id such as evt_1PgZ... (mixed case: never a long run of digits, which the log scan flags)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class StripeShapes:
    """Builds Stripe objects and events for one webhook endpoint API version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._examples = _resources()

    def example(self, name: str) -> dict[str, Any]:
        """A deep copy of Stripe's example object `name` (e.g. "refund", "charge", "checkout.session")."""
        return copy.deepcopy(self._examples[name])

    def refund(
        self,
        *,
        id: str,
        amount: int,
        charge: str,
        payment_intent: str,
        status: str,
        metadata: Mapping[str, str] | None = None,
        failure_reason: str | None = None,
        currency: str = "usd",
    ) -> dict[str, Any]:
        """A Refund object (Stripe adds `failure_reason` once a refund has failed)."""
        obj = self.example("refund")
        obj.update(
            id=id,
            amount=amount,
            charge=charge,
            payment_intent=payment_intent,
            status=status,
            currency=currency,
            metadata=dict(metadata or {}),
            created=int(time.time()),
        )
        if failure_reason is not None:
            obj["failure_reason"] = failure_reason
        return obj

    def charge(
        self,
        *,
        id: str,
        amount: int,
        amount_refunded: int,
        payment_intent: str,
        refunds: list[dict[str, Any]] | None = None,
        currency: str = "usd",
    ) -> dict[str, Any]:
        """A captured, paid Charge; `refunds` only at versions that still include the list."""
        obj = self.example("charge")
        obj.update(
            id=id,
            amount=amount,
            amount_captured=amount,
            captured=True,
            paid=True,
            status="succeeded",
            amount_refunded=amount_refunded,
            refunded=amount_refunded == amount,
            payment_intent=payment_intent,
            currency=currency,
        )
        if charge_lists_refunds(self.version):
            obj["refunds"] = {
                "object": "list",
                "data": list(refunds or []),
                "has_more": False,
                "url": f"/v1/charges/{id}/refunds",
            }
        else:
            obj.pop("refunds", None)
        return obj

    def checkout_session(self, session: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
        """A Checkout Session in Stripe's shape with the identity and amounts of `session` (what the shop made)."""
        obj = self.example("checkout.session")
        for name in (
            "id",
            "amount_subtotal",
            "amount_total",
            "currency",
            "client_reference_id",
            "metadata",
            "mode",
            "payment_status",
            "status",
            "payment_intent",
            "customer_email",
            "expires_at",
            "url",
            "success_url",
            "cancel_url",
            "created",
        ):
            if name in session:
                obj[name] = copy.deepcopy(session[name])
        # Stripe's example carries made-up discount, shipping and tax amounts: a session of the shop's has what
        # it asked for (issue 23), none unless given.
        for name, neutral in (
            ("total_details", {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}),
            ("discounts", []),
            ("shipping_cost", None),
            ("automatic_tax", {"enabled": False, "liability": None, "provider": None, "status": None}),
            ("invoice", None),
        ):
            obj[name] = copy.deepcopy(session.get(name, neutral))
        obj.update(overrides)
        return obj

    def event(self, type: str, obj: Mapping[str, Any], previous_attributes: Mapping[str, Any] | None = None) -> dict:
        """An Event of this endpoint's API version holding a snapshot of `obj`."""
        event = self.example("event")
        event.update(
            id=new_id("evt_"),
            api_version=self.version,
            type=type,
            created=int(time.time()),
            livemode=False,
            pending_webhooks=1,
        )
        event["data"] = {"object": copy.deepcopy(dict(obj))}
        if previous_attributes is not None:
            event["data"]["previous_attributes"] = dict(previous_attributes)
        return event

    def refund_created(self, refund: dict[str, Any], charge: dict[str, Any]) -> list[dict[str, Any]]:
        """What a new card refund sends: charge.refunded, and refund.created from acacia on."""
        events = [self.event("charge.refunded", charge)]
        if sends_refund_events(self.version):
            events.insert(0, self.event("refund.created", refund))
        return events

    def refund_changed(self, refund: dict[str, Any], previous_status: str) -> list[dict[str, Any]]:
        """What a refund's status change sends: charge.refund.updated, and refund.updated (+ refund.failed)
        from acacia on."""
        before = {"status": previous_status}
        events = [self.event("charge.refund.updated", refund, before)]
        if sends_refund_events(self.version):
            events.append(self.event("refund.updated", refund, before))
            if refund["status"] == "failed":
                events.append(self.event("refund.failed", refund, before))
        return events


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header: t=<unix>,v1=HMAC-SHA256(secret, "t.body")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_event(client: FlaskClient, event: Mapping[str, Any], secret: str) -> Any:
    """POST one signed event to the shop's webhook route, as Stripe does."""
    body = json.dumps(event).encode()
    return client.post(
        "/webhook/", data=body, headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"}
    )


_ID_SEGMENT = re.compile(r"^(cs|re|pi|ch|evt|py|pyr)_[A-Za-z0-9_]+$")


class CountingStripeClient(EmulatorHTTPClient):
    """The SDK's transport to the in-process local Stripe service, counting calls per endpoint.

    `after_refund_create`, when set, runs after Stripe made a refund and before the SDK gets the reply
    (a webhook arriving while the shop's create call is in flight); `after_session_expire` likewise after
    Stripe expired a Checkout Session at the shop's request.
    """

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.calls: Counter[str] = Counter()
        self.after_refund_create: Callable[[], None] | None = None
        self.after_session_expire: Callable[[], None] | None = None

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        parts = url.split("?", 1)
        path = "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in parts[0].split("/")[3:])
        endpoint = f"{method.upper()} /{path}"
        self.calls[endpoint] += 1
        body, status, response_headers = super().request(method, url, headers, post_data, **kwargs)
        if endpoint == "POST /v1/refunds" and status == 200 and self.after_refund_create is not None:
            self.after_refund_create()
        if endpoint == "POST /v1/checkout/sessions/{id}/expire" and status == 200 and self.after_session_expire:
            self.after_session_expire()
        return body, status, response_headers

    def refund_calls(self) -> dict[str, int]:
        """Calls to Stripe's refund endpoints so far."""
        return {k: v for k, v in self.calls.items() if "/v1/refunds" in k}


def stripe_charge_of(emulator: Emulator, payment_intent: str) -> dict[str, Any]:
    """The local service's charge for a payment intent (its id and amounts)."""
    with emulator.store.lock:
        intent = emulator.store.payment_intents[payment_intent]
        return copy.deepcopy(emulator.store.charges[intent["latest_charge"]])


def stripe_refund(emulator: Emulator, refund_id: str) -> dict[str, Any]:
    """The local service's refund object."""
    with emulator.store.lock:
        return copy.deepcopy(emulator.store.refunds[refund_id])


def set_stripe_refund_status(
    emulator: Emulator, refund_id: str, status: str, failure_reason: str | None = None
) -> None:
    """Put a refund at the local service in the state Stripe's test cards drive it to (e.g. pending, failed).

    A refund that fails or is canceled gives its amount back to the charge, as at Stripe, so it can be
    refunded again.
    """
    with emulator.store.lock:
        refund = emulator.store.refunds[refund_id]
        was_counted = refund["status"] not in ("failed", "canceled")
        refund["status"] = status
        if failure_reason is not None:
            refund["failure_reason"] = failure_reason
        charge = emulator.store.charges[refund["charge"]]
        if was_counted and status in ("failed", "canceled"):
            charge["amount_refunded"] -= refund["amount"]
        elif not was_counted and status not in ("failed", "canceled"):
            charge["amount_refunded"] += refund["amount"]
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
