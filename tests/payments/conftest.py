"""Fixtures for the refund-lifecycle and checkout scenarios: the shop wired through a counting Stripe transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.models import User
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, WEBHOOK_SECRET
from tests.payments.stripe_shapes import CountingStripeClient, post_event
from tests.support import deliver_webhooks_to


@pytest.fixture
def stripe_calls(emulator: Emulator) -> CountingStripeClient:
    """The SDK's transport: in-process to the local Stripe service, counting calls per endpoint."""
    return CountingStripeClient(emulator)


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator, stripe_calls: CountingStripeClient) -> Flask:
    """A testing app whose Stripe calls go through `stripe_calls`; the service's webhooks go to its client."""
    application = app_factory(STRIPE_HTTP_CLIENT=stripe_calls)
    deliver_webhooks_to(application, emulator)
    return application


@pytest.fixture
def deliver(app: Flask) -> Callable[[dict[str, Any]], Any]:
    """Post one signed event (built by StripeShapes) to the webhook route; returns the response."""
    webhook_client = app.test_client()

    def post(event: dict[str, Any]) -> Any:
        return post_event(webhook_client, event, WEBHOOK_SECRET)

    return post


@pytest.fixture
def drop_service_events(emulator: Emulator) -> Callable[[], None]:
    """Discard what the local service queued for delivery: the test sends the events itself, per version."""

    def drop() -> None:
        working = emulator.deliverer.sender
        emulator.deliverer.sender = lambda url, body, headers: 200
        try:
            emulator.deliver_pending()
        finally:
            emulator.deliverer.sender = working

    return drop


@pytest.fixture
def second_shopper(app: Flask, make_user: Callable[..., User]) -> Iterator[FlaskClient]:
    """Another logged-in browser."""
    user = make_user("other@example.com")
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": user.email, "password": PASSWORD}).status_code in (302, 303)
    yield browser
