"""Shipping end to end through the real SDK and the local Stripe service: with SHIPPING_COUNTRIES set, Checkout
is asked to collect an address, the shopper types it on the hosted page, the signed webhook (rendered in the
endpoint's API version) finalizes the order, and the address is on the order, the staff order page and the
export.

Where the address lives depends on the version the event is rendered in (the emulator's versions.py, from
Stripe's changelog): at the SDK's pin in `collected_information.shipping_details` (stripe-python's
checkout/_session.py has only Session.CollectedInformation.ShippingDetails; the top-level field was removed in
2025-03-31.basil); at 2022-11-15, before `collected_information` existed (2025-02-24.acacia), in the top-level
`shipping_details`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
from flask import Flask
from sqlalchemy import select
from werkzeug.test import Client

from shopapp.models import OrderStatus, PaymentEvent
from stripe_emulator import Clock, Emulator
from tests.conftest import WEBHOOK_SECRET, fresh, order_for_session, session_id_from
from tests.staff.conftest import fresh_order
from tests.support import deliver_webhooks_to

SDK_PIN = stripe.api_version
TYPED = {"name": "Marge Simpson", "line1": "742 Evergreen Terrace", "line2": "Apt 2", "city": "Springfield",
         "state": "OR", "postal_code": "97403", "country": "CA"}  # fmt: skip
STORED = {"name": "Marge Simpson", "address": {"line1": "742 Evergreen Terrace", "line2": "Apt 2",
          "city": "Springfield", "state": "OR", "postal_code": "97403", "country": "CA"}}  # fmt: skip


@pytest.fixture(params=[SDK_PIN, "2022-11-15"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The local Stripe service whose account (and so the shop's webhook endpoint) is at one API version."""
    emu = Emulator(webhook_url="http://shop.test/webhook/", webhook_secret=WEBHOOK_SECRET, async_delay=None,
                   clock=Clock(start=time.time()), api_version=request.param)  # fmt: skip
    yield emu
    emu.close()


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator) -> Flask:
    """The shop collecting addresses for the US and Canada; the service's webhooks go to its test client."""
    application = app_factory(SHIPPING_COUNTRIES=["US", "CA"])
    deliver_webhooks_to(application, emulator)
    return application


def _card(**extra: str) -> dict[str, str]:
    return {"method": "card", "card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123", **extra}


@pytest.mark.parametrize("finalized_by", ["webhook", "success page"])
def test_address_typed_on_the_hosted_page_reaches_the_order_admin_and_export(
    emulator: Emulator, client: Any, shopper: Any, buy: Callable[..., Any], staff_client: Any, finalized_by: str
) -> None:
    version = emulator.store.api_version
    response = buy(A=1)
    session_id = session_id_from(response)
    # What the shop sent: Stripe is asked to collect an address in the configured countries.
    assert emulator.sessions[session_id]["shipping_address_collection"] == {"allowed_countries": ["US", "CA"]}

    page = Client(emulator.wsgi_app)
    hosted = urlsplit(response.headers["Location"]).path
    form = page.get(hosted).get_data(as_text=True)
    assert "<legend>Shipping address</legend>" in form
    assert re.findall(r'<option value="(\w+)"', form) == ["US", "CA"]
    refused = page.post(hosted, data=_card(**{**TYPED, "country": "FR"}))  # not a country the shop ships to
    # Post/Redirect/Get (issue 22): the refusal sends the shopper back to the form, which says why.
    assert refused.status_code == 303 and "country" in page.get(hosted).get_data(as_text=True).lower()
    assert fresh_order(order_for_session(session_id).id).status == OrderStatus.PENDING
    paid = page.post(hosted, data=_card(**TYPED))
    assert paid.status_code == 303
    order_id = order_for_session(session_id).id

    if finalized_by == "success page":  # the shopper is back first: a retrieve at the SDK's pin finalizes
        assert client.get(paid.headers["Location"]).status_code == 200  # success_url, the session id filled in
        assert fresh_order(order_id).status == OrderStatus.PAID
    emulator.deliver_pending()
    order = fresh_order(order_id)
    assert order.status == OrderStatus.PAID
    assert json.loads(order.shipping_address) == STORED

    # The event the shop received, in the endpoint's version: the address where that version puts it.
    payload = fresh().scalar(select(PaymentEvent.payload).where(PaymentEvent.type == "checkout.session.completed"))
    event = json.loads(payload)
    assert event["api_version"] == version
    obj = event["data"]["object"]
    details = {"name": "Marge Simpson", "address": {**STORED["address"]}}
    if version == SDK_PIN:
        assert obj["collected_information"]["shipping_details"] == details and "shipping_details" not in obj
    else:
        assert obj["shipping_details"] == details and "collected_information" not in obj

    admin = staff_client.get(f"/admin/orders/details/?id={order_id}").get_data(as_text=True)
    ship_to = re.search(r'id="ship-to">(.*?)</td>', admin, re.S).group(1)
    assert ship_to == "Marge Simpson<br>742 Evergreen Terrace<br>Apt 2<br>97403 Springfield OR<br>CA"

    export = staff_client.get("/admin/exports/orders.csv", buffered=True).get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(export)))
    assert (row["ship_name"], row["ship_line1"], row["ship_line2"], row["ship_city"], row["ship_postal_code"],
            row["ship_state"], row["ship_country"]) == (
        "Marge Simpson", "742 Evergreen Terrace", "Apt 2", "Springfield", "97403", "OR", "CA")  # fmt: skip


def test_the_test_control_completes_a_session_with_an_address(emulator: Emulator, shopper: Any,
                                                              buy: Callable[..., Any]) -> None:  # fmt: skip
    session_id = session_id_from(buy(B=1))
    assert emulator.pay(session_id, shipping=TYPED).status == 303
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID and json.loads(order.shipping_address) == STORED
