"""Payment intents, charges and refunds through the SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator, EmulatorStateError


def test_payment_creates_intent_and_charge(client: stripe.StripeClient, paid_session: Any, emu: Emulator) -> None:
    session = client.v1.checkout.sessions.retrieve(paid_session.id)
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert isinstance(intent, stripe.PaymentIntent) and intent.id.startswith("pi_")
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 4498, "usd")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert isinstance(charge, stripe.Charge) and charge.id.startswith("ch_")
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (4498, 0, False)


def test_pay_refuses_sessions_that_are_not_open(emu: Emulator, paid_session: Any) -> None:
    with pytest.raises(EmulatorStateError):
        emu.pay(paid_session.id)
    with pytest.raises(EmulatorStateError):
        emu.expire(paid_session.id)


def _intent(emu: Emulator, session: Any) -> str:
    return emu.sessions[session.id]["payment_intent"]


def test_partial_then_full_refund(client: stripe.StripeClient, paid_session: Any, emu: Emulator) -> None:
    intent = _intent(emu, paid_session)
    partial = client.v1.refunds.create(
        params={
            "payment_intent": intent,
            "amount": 1000,
            "reason": "requested_by_customer",
            "metadata": {"order_id": "7"},
        }
    )
    assert isinstance(partial, stripe.Refund) and partial.id.startswith("re_")
    assert (partial.amount, partial.status, partial.reason) == (1000, "succeeded", "requested_by_customer")
    rest = client.v1.refunds.create(params={"charge": partial.charge})
    assert rest.amount == 3498
    charge = client.v1.charges.retrieve(partial.charge)
    assert (charge.amount_refunded, charge.refunded) == (4498, True)
    assert "refunds" not in charge  # since 2022-11-15 only when expanded
    expanded = client.v1.charges.retrieve(partial.charge, params={"expand": ["refunds"]})
    assert [r.id for r in expanded.refunds.data] == [rest.id, partial.id]
    listed = client.v1.refunds.list(params={"charge": partial.charge})
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    assert client.v1.refunds.retrieve(rest.id).amount == 3498
    refunded = emu.events("charge.refunded")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [1000, 4498]
    assert [e["data"]["object"]["refunded"] for e in refunded] == [False, True]
    # A card refund that succeeds at once: refund.created (from 2024-10-28.acacia) and charge.refunded.
    assert len(emu.events("refund.created")) == 2 and emu.events("refund.updated") == []


def test_refund_beyond_remaining_is_refused(client: stripe.StripeClient, paid_session: Any, emu: Emulator) -> None:
    intent = _intent(emu, paid_session)
    client.v1.refunds.create(params={"payment_intent": intent, "amount": 4000})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent, "amount": 499})
    assert (info.value.code, info.value.param) == ("amount_too_large", "amount")
    client.v1.refunds.create(params={"payment_intent": intent})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent})
    assert info.value.code == "charge_already_refunded"


def test_refund_needs_a_paid_charge(client: stripe.StripeClient, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    emu.pay(session.id, delayed="succeed")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": _intent(emu, session)})
    assert info.value.param == "payment_intent"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={})
    assert info.value.code == "parameter_missing"
