"""Fixtures: an emulator with a recording webhook sender, and an SDK client routed to it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe

from stripe_emulator import Clock, Emulator, EmulatorHTTPClient

SECRET = "whsec_test_secret"
WEBHOOK_URL = "http://testserver/webhook/"


@dataclass
class Endpoint:
    """A fake webhook endpoint: records deliveries and answers with scripted statuses."""

    statuses: list[int | Exception] = field(default_factory=list)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((body, headers))
        answer = self.statuses.pop(0) if self.statuses else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    def events(self) -> list[stripe.Event]:
        """Every received delivery, verified and parsed by the SDK."""
        return [
            stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET) for body, headers in self.received
        ]


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def clock() -> Clock:
    # Frozen at "now" so expires_at maths is deterministic and signatures stay fresh.
    return Clock(start=float(int(time.time())))


@pytest.fixture
def emu(endpoint: Endpoint, clock: Clock) -> Emulator:
    emulator = Emulator(webhook_url=WEBHOOK_URL, webhook_secret=SECRET, sender=endpoint, clock=clock)
    yield emulator
    emulator.close()


@pytest.fixture
def transport(emu: Emulator) -> EmulatorHTTPClient:
    return EmulatorHTTPClient(emu, retry_delay=0)


@pytest.fixture
def client(transport: EmulatorHTTPClient) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator", http_client=transport, base_addresses={"api": "http://127.0.0.1:12111"}
    )


def _session_params(emu: Emulator, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": "https://shop.test/success/?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.test/cart/",
        "expires_at": emu.clock.timestamp() + 3600,
        "client_reference_id": "order-7",
        "customer_email": "ann@example.com",
        "metadata": {"order_id": "7"},
        "line_items": [
            {"quantity": 2, "price_data": {"currency": "usd", "unit_amount": 1999, "product_data": {"name": "Mug"}}},
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Sticker"}}},
        ],
    }
    params.update(overrides)
    return params


@pytest.fixture
def session_params(emu: Emulator) -> Callable[..., dict[str, Any]]:
    """Valid Checkout Session params (2 x 1999 + 1 x 500 usd), with overrides."""
    return lambda **overrides: _session_params(emu, **overrides)


@pytest.fixture
def make_session(emu: Emulator, client: stripe.StripeClient) -> Callable[..., Any]:
    def make(**overrides: Any) -> Any:
        return client.v1.checkout.sessions.create(params=_session_params(emu, **overrides))

    return make


@pytest.fixture
def paid_session(emu: Emulator, make_session: Callable[..., Any]) -> Any:
    session = make_session()
    emu.pay(session.id)
    return session
