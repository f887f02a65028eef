"""One outcome vocabulary from handler to PaymentEvent.outcome, and status written only by the derivation."""

from __future__ import annotations

import pytest

from shopapp.models import DERIVED_STATUSES, EventOutcome, OrderStatus, derive_status
from shopapp.services import orders
from shopapp.services.checkout import Outcome


def test_every_checkout_outcome_names_a_stored_event_outcome_member():
    assert {outcome: outcome.event_outcome for outcome in Outcome} == {
        Outcome.PAID: EventOutcome.APPLIED,
        Outcome.FAILED: EventOutcome.APPLIED,
        Outcome.EXPIRED: EventOutcome.APPLIED,
        Outcome.PROCESSING: EventOutcome.PROCESSING,
        Outcome.OPEN: EventOutcome.OPEN,
        Outcome.NOOP: EventOutcome.NO_OP,
        Outcome.FLAGGED: EventOutcome.FLAGGED,
    }
    assert {"duplicate", "unknown"} <= {member.value for member in EventOutcome}


@pytest.mark.parametrize(
    "current, paid, refunded, shown",
    [
        (OrderStatus.PENDING, False, 0, OrderStatus.PENDING),
        (OrderStatus.EXPIRED, False, 0, OrderStatus.EXPIRED),
        (OrderStatus.EXPIRED, True, 0, OrderStatus.PAID),  # a payment Stripe confirms is real money
        (OrderStatus.PAID, True, 1999, OrderStatus.PARTIALLY_REFUNDED),
        (OrderStatus.PARTIALLY_REFUNDED, True, 7997, OrderStatus.REFUNDED),
        # A late "paid" adds no fact: the refunds alone decide, so REFUNDED stays REFUNDED.
        (OrderStatus.REFUNDED, True, 7997, OrderStatus.REFUNDED),
        # A refund that failed after succeeding: a fact about the refund, not the payment.
        (OrderStatus.REFUNDED, True, 0, OrderStatus.PAID),
    ],
)
def test_status_is_derived_from_the_facts(current, paid, refunded, shown):
    assert derive_status(current, paid, 7997, refunded) == shown


@pytest.mark.parametrize("target", sorted(DERIVED_STATUSES))
def test_a_derived_status_cannot_be_written_by_a_transition(target):
    with pytest.raises(orders.InvalidTransition):
        orders.transition(None, type("O", (), {"status": OrderStatus.PENDING})(), target, actor="test")  # type: ignore[arg-type]
