"""Receipts name what paid (issue 22): card brand and last 4 from the Charge's `payment_method_details`, on the
order page, its print view and the receipt email, whichever of `charge.succeeded` and
`checkout.session.completed` Stripe delivers first, at the SDK's pin and at 2022-11-15 (services/receipts.py).

The events are the local Stripe service's, rendered in the account's version and posted signed to the shop's
webhook; the receipt goes over real SMTP (tests/mail/mailbox.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from flask.testing import FlaskClient
from sqlalchemy import select

from shopapp.models import ChargePaymentMethod, EventOutcome, OrderStatus, PaymentEvent
from shopapp.services import outbox
from stripe_emulator import Clock, Emulator
from tests.conftest import WEBHOOK_SECRET, fresh, order_for_session, session_id_from
from tests.mail.mailbox import Mailbox

RETRIEVE_INTENT = "GET /v1/payment_intents/{id}"


@pytest.fixture(params=[stripe.api_version, "2022-11-15"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The local Stripe service at one API version (the account's, so the shop's endpoint's)."""
    emu = Emulator(webhook_url="http://shop.test/webhook/", webhook_secret=WEBHOOK_SECRET, async_delay=None,
                   clock=Clock(start=time.time()), api_version=request.param)  # fmt: skip
    yield emu
    emu.close()


def _post(signed_post: Callable[..., Any], emulator: Emulator, event_type: str, session_id: str) -> str:
    """Deliver the one event of `event_type` about this payment; returns its stored outcome."""
    event = emulator.events(event_type)[-1]
    assert signed_post(json.dumps(event).encode()).status_code == 200
    outcome = fresh().scalar(select(PaymentEvent.outcome).where(PaymentEvent.stripe_event_id == event["id"]))
    return str(outcome)


@pytest.mark.parametrize("first", ["charge.succeeded", "checkout.session.completed"])
@pytest.mark.parametrize(("card", "label"), [("4242424242424242", "Visa ending in 4242"),
                                             ("5555555555554444", "Mastercard ending in 4444")])  # fmt: skip
def test_receipt_names_the_card_whichever_event_comes_first(
    emulator: Emulator,
    client: FlaskClient,
    shopper: Any,
    buy: Callable[..., Any],
    signed_post: Callable[..., Any],
    mailbox: Mailbox,
    first: str,
    card: str,
    label: str,
) -> None:
    session_id = session_id_from(buy(A=1))
    assert emulator.pay(session_id, card=card).status == 303  # events queued, not delivered
    charge = emulator.events("charge.succeeded")[-1]["data"]["object"]
    assert charge["payment_method_details"]["type"] == "card"
    assert charge["payment_method_details"]["card"]["last4"] == card[-4:]

    second = "checkout.session.completed" if first == "charge.succeeded" else "charge.succeeded"
    assert _post(signed_post, emulator, first, session_id) == EventOutcome.APPLIED
    if first == "checkout.session.completed":
        outbox.send_pending()  # the receipt is composed before Stripe's charge event arrived
    assert _post(signed_post, emulator, second, session_id) in (EventOutcome.APPLIED, EventOutcome.NO_OP)
    outbox.send_pending()

    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID
    facts = fresh().scalars(select(ChargePaymentMethod)).all()
    assert [(f.stripe_payment_intent_id, f.type, f.last4) for f in facts] == [
        (order.stripe_payment_intent_id, "card", card[-4:])
    ]
    # The webhook never asks Stripe: only a receipt composed before the charge event does, once.
    assert emulator.call_counts.get(RETRIEVE_INTENT, 0) == (1 if first == "checkout.session.completed" else 0)

    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f"Payment method: {label}" in page
    printed = client.get(f"/orders/{order.id}?print=1").get_data(as_text=True)
    assert f"Payment method: {label}" in printed
    receipt = next(m for m in mailbox.wait_for(2, "welcome and receipt", shopper.email) if "receipt" in m.subject)
    text = receipt.message.get_body(("plain",))
    html = receipt.message.get_body(("html",))
    assert text is not None and html is not None
    assert f"Payment method: {label}" in text.get_content()
    assert f"Payment method: {label}" in html.get_content()


def test_a_receipt_goes_without_the_line_when_stripe_cannot_say(
    emulator: Emulator,
    client: FlaskClient,
    shopper: Any,
    buy: Callable[..., Any],
    signed_post: Callable[..., Any],
    mailbox: Mailbox,
) -> None:
    session_id = session_id_from(buy(A=1))
    assert emulator.pay(session_id).status == 303
    assert _post(signed_post, emulator, "checkout.session.completed", session_id) == EventOutcome.APPLIED
    emulator.inject_fault("GET /v1/payment_intents/{id}", 500, times=5)
    outbox.send_pending()
    receipt = next(m for m in mailbox.wait_for(2, "welcome and receipt", shopper.email) if "receipt" in m.subject)
    body = receipt.message.get_body(("plain",))
    assert body is not None and "Payment method" not in body.get_content()
    # The charge's event still fills the order page in afterwards.
    assert _post(signed_post, emulator, "charge.succeeded", session_id) == EventOutcome.APPLIED
    order = order_for_session(session_id)
    assert "Payment method: Visa ending in 4242" in client.get(f"/orders/{order.id}").get_data(as_text=True)
