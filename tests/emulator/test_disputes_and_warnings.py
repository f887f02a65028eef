"""Disputes, early fraud warnings and the statement descriptor suffix, through the SDK (docs.stripe.com/testing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator, EmulatorStateError
from stripe_emulator.disputes import DISPUTE_FEE, RESPONSE_WINDOW
from tests.emulator.conftest import Endpoint

FRAUDULENT, NOT_RECEIVED, INQUIRY, WARNING = (
    "4000000000000259",
    "4000000000002685",
    "4000000000001976",
    "4000000000005423",
)


def _paid(emu: Emulator, make_session: Callable[..., Any], card: str) -> str:
    """Pay a session with `card`; returns its PaymentIntent id."""
    session = make_session()
    emu.pay(session.id, card=card)
    return str(emu.sessions[session.id]["payment_intent"])


def _dispute(client: stripe.StripeClient, intent: str) -> stripe.Dispute:
    (dispute,) = client.v1.disputes.list(params={"payment_intent": intent}).data
    return dispute


@pytest.mark.parametrize(
    ("card", "reason", "status", "withdrawn"),
    [
        (FRAUDULENT, "fraudulent", "needs_response", True),
        (NOT_RECEIVED, "product_not_received", "needs_response", True),
        (INQUIRY, "general", "warning_needs_response", False),
    ],
)
def test_dispute_cards_pay_then_get_disputed(
    client: stripe.StripeClient,
    emu: Emulator,
    make_session: Callable[..., Any],
    endpoint: Endpoint,
    card: str,
    reason: str,
    status: str,
    withdrawn: bool,
) -> None:
    intent = _paid(emu, make_session, card)
    dispute = _dispute(client, intent)
    assert isinstance(dispute, stripe.Dispute) and dispute.id.startswith("dp_")
    assert (dispute.reason, dispute.status, dispute.amount, dispute.currency) == (reason, status, 4498, "usd")
    assert dispute.evidence_details.due_by > emu.clock.timestamp() + RESPONSE_WINDOW - 86400
    assert dispute.is_charge_refundable is (not withdrawn)
    charge = client.v1.charges.retrieve(dispute.charge)
    assert charge.disputed is True and charge.refunded is False
    emu.deliver_pending()
    types = [e.type for e in endpoint.events()]
    assert types.index("checkout.session.completed") < types.index("charge.dispute.created")
    assert ("charge.dispute.funds_withdrawn" in types) is withdrawn
    if withdrawn:
        (txn,) = dispute.balance_transactions
        assert (txn.amount, txn.fee, txn.net, txn.type, txn.reporting_category) == (
            -4498,
            DISPUTE_FEE,
            -4498 - DISPUTE_FEE,
            "adjustment",
            "dispute",
        )


def test_a_charged_back_charge_cannot_be_refunded(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any]
) -> None:
    intent = _paid(emu, make_session, FRAUDULENT)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": intent})
    assert refused.value.code == "charge_disputed"
    assert "has been charged back; cannot issue a refund" in str(refused.value.user_message)


def test_staged_evidence_then_winning_evidence_wins_and_reinstates(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any], endpoint: Endpoint
) -> None:
    dispute = _dispute(client, _paid(emu, make_session, FRAUDULENT))
    staged = client.v1.disputes.update(
        dispute.id, params={"evidence": {"customer_email_address": "ann@example.com"}, "submit": False}
    )
    assert staged.status == "needs_response" and staged.evidence_details.has_evidence is True
    assert staged.evidence_details.submission_count == 0
    won = client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert (won.status, won.evidence_details.submission_count, won.is_charge_refundable) == ("won", 1, True)
    assert won.evidence.customer_email_address == "ann@example.com"
    assert [t.reporting_category for t in won.balance_transactions] == ["dispute", "dispute_reversal"]
    assert sum(t.net for t in won.balance_transactions) == 0  # "credited the amount of the charge and related fees"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "more"}})
    emu.deliver_pending()
    types = [e.type for e in endpoint.events() if e.type.startswith("charge.dispute.")]
    assert types == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]


def test_losing_evidence_loses_and_closing_accepts(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any]
) -> None:
    lost = _dispute(client, _paid(emu, make_session, FRAUDULENT))
    lost = client.v1.disputes.update(lost.id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    assert (lost.status, lost.is_charge_refundable, len(lost.balance_transactions)) == ("lost", False, 1)
    accepted = _dispute(client, _paid(emu, make_session, NOT_RECEIVED))
    assert client.v1.disputes.close(accepted.id).status == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(accepted.id)
    inquiry = _dispute(client, _paid(emu, make_session, INQUIRY))
    assert client.v1.disputes.close(inquiry.id).status == "warning_closed"


def test_past_due_without_evidence_is_lost(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any]
) -> None:
    dispute = _dispute(client, _paid(emu, make_session, FRAUDULENT))
    emu.advance(RESPONSE_WINDOW + 86400)
    after = client.v1.disputes.retrieve(dispute.id)
    assert (after.status, after.evidence_details.past_due) == ("lost", True)
    other = _dispute(client, _paid(emu, make_session, NOT_RECEIVED))
    assert emu.advance_dispute(other.id)["status"] == "lost"
    with pytest.raises(EmulatorStateError):
        emu.advance_dispute(other.id)


def test_evidence_fields_are_checked_like_stripe(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any]
) -> None:
    dispute = _dispute(client, _paid(emu, make_session, FRAUDULENT))
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.disputes.update(dispute.id, params={"evidence": {"colour": "red"}})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "evidence[colour]"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "x" * 150_001}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.retrieve("dp_missing")


def test_early_fraud_warning_card_and_its_refund(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any], endpoint: Endpoint
) -> None:
    intent = _paid(emu, make_session, WARNING)
    (warning,) = client.v1.radar.early_fraud_warnings.list(params={"payment_intent": intent}).data
    assert isinstance(warning, stripe.radar.EarlyFraudWarning) and warning.id.startswith("issfr_")
    assert warning.actionable is True and client.v1.disputes.list(params={"payment_intent": intent}).data == []
    by_charge = client.v1.radar.early_fraud_warnings.list(params={"charge": warning.charge}).data
    assert [w.id for w in by_charge] == [warning.id]
    client.v1.refunds.create(params={"payment_intent": intent, "reason": "fraudulent"})
    assert client.v1.radar.early_fraud_warnings.retrieve(warning.id).actionable is False
    emu.deliver_pending()
    types = [e.type for e in endpoint.events() if e.type.startswith("radar.")]
    assert types == ["radar.early_fraud_warning.created", "radar.early_fraud_warning.updated"]


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("12345", "at least one letter"),
        ("MUG*SHOP", "cannot contain"),
        ("A" * 23, "at most 22"),
        ("KAFFEEMÜHLE", "Latin"),
    ],
)
def test_statement_descriptor_suffix_is_checked(make_session: Callable[..., Any], suffix: str, problem: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        make_session(payment_intent_data={"statement_descriptor_suffix": suffix})
    assert refused.value.param == "payment_intent_data[statement_descriptor_suffix]"
    assert problem in str(refused.value.user_message)


def test_statement_descriptor_suffix_reaches_the_charge(
    client: stripe.StripeClient, emu: Emulator, make_session: Callable[..., Any]
) -> None:
    session = make_session(payment_intent_data={"statement_descriptor_suffix": "TIDY 7"})
    emu.pay(session.id)
    intent = client.v1.payment_intents.retrieve(emu.sessions[session.id]["payment_intent"])
    assert intent.statement_descriptor_suffix == "TIDY 7"
    assert client.v1.charges.retrieve(intent.latest_charge).statement_descriptor_suffix == "TIDY 7"
