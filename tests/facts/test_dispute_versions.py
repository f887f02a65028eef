"""Issue 21: a dispute and an early fraud warning, delivered at every API version the shop supports (the
webhook endpoint's version decides how Stripe renders the events), reach the same facts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from shopapp.models import Dispute, EarlyFraudWarning, EventOutcome, PaymentEvent
from stripe_emulator import Emulator
from stripe_emulator.disputes import DISPUTE_FEE
from tests.conftest import fresh, order_for_session, session_id_from
from tests.payments.stripe_shapes import VERSIONS

TOTAL = 7997


@pytest.mark.parametrize("emulator", VERSIONS, indirect=True)
def test_a_lost_dispute_at_every_version(
    client: Any, shopper: Any, buy: Any, emulator: Emulator, stripe_dashboard: Any
) -> None:
    session_id = session_id_from(buy(A=2, C=1))
    assert emulator.pay(session_id, card="4000000000000259").status == 303
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.dispute_standing == "open"
    (dispute_id,) = list(emulator.store.disputes)
    stripe_dashboard.v1.disputes.update(dispute_id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert (order.dispute_standing, order.dispute_lost_cents) == ("lost", TOTAL + DISPUTE_FEE)
    rows = fresh().execute(select(PaymentEvent.type, PaymentEvent.outcome, PaymentEvent.payload)).all()
    disputes = [(t, o, json.loads(p)["api_version"]) for t, o, p in rows if t.startswith("charge.dispute.")]
    assert {t for t, _, _ in disputes} == {
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
    }
    assert {(o, v) for _, o, v in disputes} == {(EventOutcome.APPLIED, emulator.store.api_version)}
    row = fresh().scalar(select(Dispute))
    assert row is not None and row.status.value == "lost"


@pytest.mark.parametrize("emulator", VERSIONS, indirect=True)
def test_an_early_fraud_warning_at_every_version(client: Any, shopper: Any, buy: Any, emulator: Emulator) -> None:
    session_id = session_id_from(buy(A=1))
    assert emulator.pay(session_id, card="4000000000005423").status == 303
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.fraud_warning and order.needs_review
    warning = fresh().scalar(select(EarlyFraudWarning))
    assert warning is not None and warning.actionable and warning.order_id == order.id
