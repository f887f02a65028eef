"""Fixtures for staff operations: paid orders, a staff client, form tokens, and a Stripe 'dashboard' client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.extensions import db as _db
from shopapp.models import Order, OrderStatus, Refund, User
from stripe_emulator import Clock, Emulator
from tests.conftest import PASSWORD, WEBHOOK_SECRET, fresh, order_for_session, session_id_from
from tests.support import csrf_token


def fresh_order(order_id: int) -> Order:
    """The order row read fresh from the database."""
    order = fresh().get(Order, order_id, populate_existing=True)
    assert order is not None
    return order


def refunds_of(order_id: int) -> list[Refund]:
    """The order's Refund rows, fresh."""
    return list(fresh().scalars(_db.select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The local Stripe service on a frozen clock: a failed delivery is retried only when a test advances it."""
    emu = Emulator(
        webhook_url="http://shop.test/webhook/",
        webhook_secret=WEBHOOK_SECRET,
        async_delay=None,
        clock=Clock(start=time.time()),
    )
    yield emu
    emu.close()


@contextmanager
def endpoint_down(emulator: Emulator) -> Iterator[None]:
    """While inside, the shop's webhook endpoint answers 503: deliveries fail and wait for a later retry."""
    working = emulator.deliverer.sender
    emulator.deliverer.sender = lambda url, body, headers: 503
    try:
        yield
    finally:
        emulator.deliverer.sender = working


@pytest.fixture
def place_order(client: FlaskClient, shopper: User, buy: Callable[..., Any]) -> Callable[..., Order]:
    """Buy as the logged-in shopper; returns the PENDING order (nothing paid yet)."""

    def place(**quantities: int) -> Order:
        session_id = session_id_from(buy(**(quantities or {"A": 1})))
        return order_for_session(session_id)

    return place


@pytest.fixture
def paid_order(place_order: Callable[..., Order], emulator: Emulator) -> Callable[..., Order]:
    """A PAID order, paid at the local Stripe service with its webhook delivered."""

    def make(**quantities: int) -> Order:
        order = place_order(**(quantities or {"A": 2, "C": 1}))
        assert emulator.pay(order.stripe_session_id).status == 303
        emulator.deliver_pending()
        paid = fresh_order(order.id)
        assert paid.status == OrderStatus.PAID
        return paid

    return make


@pytest.fixture
def staff_client(app: Flask, make_user: Callable[..., User]) -> FlaskClient:
    """A second browser, logged in as staff."""
    user = make_user("ann@example.com", staff=True)
    browser = app.test_client()
    response = browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code in (302, 303)
    return browser


@pytest.fixture
def staff_post(staff_client: FlaskClient) -> Callable[..., Any]:
    """POST a staff form with the session's CSRF token, as the page's form would send it."""

    def post(url: str, data: dict[str, Any]) -> Any:
        token = csrf_token(staff_client.get("/").get_data(as_text=True))
        return staff_client.post(url, data={**data, "csrf_token": token})

    return post


def stripe_refunds(emulator: Emulator, payment_intent: str) -> list[dict[str, Any]]:
    """Every refund the local Stripe service holds for a payment intent."""
    with emulator.store.lock:
        return [dict(r) for r in emulator.store.refunds.values() if r["payment_intent"] == payment_intent]
