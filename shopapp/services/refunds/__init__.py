"""Refunds: one door for every refund the shop makes, and Stripe's refund events settle the order.

Three rooms: `asking` (record a refund with its key, then ask Stripe), `events` (apply what Stripe reports
about refunds, whoever made them) and `recovery` (re-send an interrupted refund, ask about one whose
events were lost). Every refund the shop asks for (staff through the admin, or the shop itself for a late
payment whose stock was gone) is first recorded as a Refund row (status pending, `origin` saying what made
it) with an idempotency key unique to it for ever ("order-<id>-refund-<n>-<random>", also in the refund's
metadata); the same form sent twice finds the same row (by its number n) and the same key, so Stripe creates
one refund. The order moves only from what Stripe reports (orders.settle derives it from the refunds).
"""

from shopapp.services.refunds.asking import (
    IDEMPOTENCY_KEY_LIFETIME,
    MAX_REASON_LENGTH,
    RefundError,
    RefundRequested,
    SendOutcome,
    dispute_blocks_refund,
    next_refund_sequence,
    record_refund_request,
    refund_key,
    remaining_refundable_cents,
    request_refund,
    send_refund,
    to_cents,
)
from shopapp.services.refunds.events import (
    METADATA_KEY,
    OUTSIDE_ACTOR,
    RefundNotApplicable,
    RefundNotOurs,
    apply_charge_refunded,
    apply_refund_event,
    complete_charge,
    mark_not_ours,
    pending_refund_cents,
    succeeded_refund_cents,
    unknown_payment_intent,
)
from shopapp.services.refunds.recovery import RefreshOutcome, refresh_in_flight, resend_unanswered, unanswered_refunds

__all__ = [
    "IDEMPOTENCY_KEY_LIFETIME",
    "MAX_REASON_LENGTH",
    "METADATA_KEY",
    "OUTSIDE_ACTOR",
    "RefreshOutcome",
    "RefundError",
    "RefundNotApplicable",
    "RefundNotOurs",
    "RefundRequested",
    "SendOutcome",
    "apply_charge_refunded",
    "apply_refund_event",
    "complete_charge",
    "dispute_blocks_refund",
    "mark_not_ours",
    "next_refund_sequence",
    "pending_refund_cents",
    "record_refund_request",
    "refresh_in_flight",
    "refund_key",
    "remaining_refundable_cents",
    "request_refund",
    "resend_unanswered",
    "send_refund",
    "succeeded_refund_cents",
    "to_cents",
    "unanswered_refunds",
    "unknown_payment_intent",
]
