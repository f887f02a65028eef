"""Disputes and Radar early fraud warnings, as Stripe's test mode makes them.

Sources (docs.stripe.com):
- testing#disputes: 4000 0000 0000 0259 (fraudulent), 2685 (product not received), 1976 (an inquiry) make a
  charge that succeeds "only to be disputed"; 5423 gets an early fraud warning. Evidence whose
  `uncategorized_text` is `winning_evidence` closes the dispute as won ("Your account is credited the amount of
  the charge and related fees"), `losing_evidence` as lost ("Your account isn't credited").
- api/disputes/update: evidence[...] fields, `metadata`, `submit` (default true: "Whether to immediately
  submit evidence to the bank. If false, evidence is staged on the dispute"); updating a dispute that no longer
  needs a response is refused.
- api/disputes/close: "The status of the dispute will change from needs_response to lost" (the SDK's
  Dispute.close docstring); an inquiry closes as warning_closed.
- disputes/how-disputes-work: a chargeback withdraws the disputed amount plus the dispute fee at once
  (`charge.dispute.funds_withdrawn`), an inquiry withdraws nothing; a won dispute reinstates them
  (`charge.dispute.funds_reinstated`). Past `evidence_details.due_by` without evidence, the dispute is lost.
- pricing: the dispute fee is 15.00 USD; the emulator charges 1500 minor units of the charge's currency.
- api/radar/early_fraud_warnings/object: `actionable` is true until the charge is disputed or fully refunded.
- error `charge_disputed`: "Charge ch_... has been charged back; cannot issue a refund."
"""

from __future__ import annotations

import copy
from typing import Any

from . import balance
from .errors import EmulatorStateError, StripeAPIError, invalid, no_such
from .objects import list_object, new_id
from .store import Origin, Store
from .versions import render_object

DISPUTE_FEE = 1500  # minor units of the charge's currency (15.00 USD, Stripe's US dispute fee)
RESPONSE_WINDOW = 7 * 24 * 60 * 60  # service-clock seconds from creation to evidence_details.due_by
WINNING_EVIDENCE = "winning_evidence"
LOSING_EVIDENCE = "losing_evidence"

# card -> (reason, inquiry?)
DISPUTE_CARDS: dict[str, tuple[str, bool]] = {
    "4000000000000259": ("fraudulent", False),
    "4000000000002685": ("product_not_received", False),
    "4000000000001976": ("general", True),
}
EARLY_FRAUD_WARNING_CARD = "4000000000005423"

# Stripe's Dispute.Evidence fields that take text (file fields take a File id; none are uploaded here).
EVIDENCE_TEXT_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
EVIDENCE_FILE_FIELDS = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
# "The combined character count of all fields is limited to 150,000" (DisputeModifyParamsEvidence).
MAX_EVIDENCE_CHARACTERS = 150_000
NEEDS_RESPONSE = frozenset({"needs_response", "warning_needs_response"})
CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})


def _blank_evidence() -> dict[str, Any]:
    evidence: dict[str, Any] = dict.fromkeys(EVIDENCE_TEXT_FIELDS + EVIDENCE_FILE_FIELDS)
    evidence["enhanced_evidence"] = {}
    return dict(sorted(evidence.items()))


def _end_of_day(timestamp: int) -> int:
    # Stripe's due_by is the last second of a day (UTC), e.g. 1723679999.
    return timestamp - timestamp % 86400 + 86399


def balance_transaction(
    store: Store, *, amount: int, fee: int, currency: str, source: str, category: str, description: str
) -> dict[str, Any]:
    """One BalanceTransaction as Stripe shows it on a dispute (type `adjustment`, reporting_category `dispute`
    or `dispute_reversal`); `fee` is the dispute fee, positive when charged and negative when given back.
    The one place the service makes a dispute's money movement (a balance-transaction listing may read them)."""
    # Made through the service's one maker of balance transactions, so GET /v1/balance_transactions lists it.
    return balance.record_balance_transaction(
        store,
        amount=amount,
        fee=fee,
        fee_description="Dispute fee",
        currency=currency,
        type="adjustment",
        reporting_category=category,
        source=source,
        description=description,
        available_immediately=True,
    )


def after_payment(store: Store, charge: dict[str, Any]) -> None:
    """Open the dispute or early fraud warning a test card asks for, right after its charge succeeded."""
    card = str(charge.get("_card"))
    if card in DISPUTE_CARDS:
        reason, inquiry = DISPUTE_CARDS[card]
        open_dispute(store, charge, reason, inquiry)
    elif card == EARLY_FRAUD_WARNING_CARD:
        warn(store, charge)


def open_dispute(store: Store, charge: dict[str, Any], reason: str, inquiry: bool) -> dict[str, Any]:
    """Create a dispute on `charge` and announce it; a chargeback also withdraws the funds and the fee."""
    with store.lock:
        now = store.clock.timestamp()
        dispute: dict[str, Any] = {
            "id": new_id("dp_"),
            "object": "dispute",
            "amount": charge["amount"] - charge["amount_refunded"],
            "balance_transactions": [],
            "charge": charge["id"],
            "created": now,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": _blank_evidence(),
            "evidence_details": {
                "due_by": _end_of_day(now + RESPONSE_WINDOW),
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
                "submission_method": "not_submitted",
            },
            "intended_submission_method": None,
            "is_charge_refundable": inquiry,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": {
                    "brand": "visa",
                    "case_type": "inquiry" if inquiry else "chargeback",
                    "network": "visa",
                    "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
                },
                "type": "card",
            },
            "reason": reason,
            "status": "warning_needs_response" if inquiry else "needs_response",
        }
        store.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        store.emit("charge.dispute.created", dispute, None)
        for efw in store.early_fraud_warnings.values():
            if efw["charge"] == charge["id"] and efw["actionable"]:
                efw["actionable"] = False
                store.emit("radar.early_fraud_warning.updated", efw, None, previous_attributes={"actionable": True})
        if not inquiry:
            _withdraw(store, dispute)
        return dispute


def _withdraw(store: Store, dispute: dict[str, Any]) -> None:
    txn = balance_transaction(
        store,
        amount=-dispute["amount"],
        fee=DISPUTE_FEE,
        currency=dispute["currency"],
        source=dispute["id"],
        category="dispute",
        description=f"Chargeback withdrawal for {dispute['charge']}",
    )
    dispute["balance_transactions"].append(txn)
    store.emit("charge.dispute.funds_withdrawn", dispute, None)


def _reinstate(store: Store, dispute: dict[str, Any]) -> None:
    txn = balance_transaction(
        store,
        amount=dispute["amount"],
        fee=-DISPUTE_FEE,
        currency=dispute["currency"],
        source=dispute["id"],
        category="dispute_reversal",
        description=f"Chargeback reversal for {dispute['charge']}",
    )
    dispute["balance_transactions"].append(txn)
    store.emit("charge.dispute.funds_reinstated", dispute, None)


def get_dispute(store: Store, dispute_id: str) -> dict[str, Any]:
    """The stored dispute or a 404."""
    dispute = store.disputes.get(dispute_id)
    if dispute is None:
        raise no_such("dispute", dispute_id)
    return dispute


def _refuse_unless_open(dispute: dict[str, Any]) -> None:
    if dispute["status"] not in NEEDS_RESPONSE:
        raise invalid(
            f"This dispute is {dispute['status']} and can no longer be updated: evidence can only be changed while "
            "the dispute needs a response.",
            None,
            "dispute_already_closed" if dispute["status"] in CLOSED else "dispute_not_updatable",
        )


def _evidence(raw: Any) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", "evidence")
    for name, value in raw.items():
        if name in EVIDENCE_FILE_FIELDS:
            raise no_such("file", str(value), f"evidence[{name}]")
        if name not in EVIDENCE_TEXT_FIELDS:
            raise invalid(f"Received unknown parameter: evidence[{name}]", f"evidence[{name}]", "parameter_unknown")
        if not isinstance(value, str):
            raise invalid("Invalid string", f"evidence[{name}]", "parameter_invalid_string")
    return {str(k): v for k, v in raw.items()}


def _bool_param(value: Any, param: str) -> bool:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise invalid(f"Invalid boolean: {value}", param, "parameter_invalid_boolean")


def update_dispute(
    store: Store, dispute_id: str, params: dict[str, Any], origin: Origin, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST /v1/disputes/{id}: stage or submit evidence, set `metadata` (already checked by the caller with the
    rules every object's metadata follows)."""
    for name in params:
        if name not in ("evidence", "metadata", "submit", "expand"):
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    with store.lock:
        dispute = get_dispute(store, dispute_id)
        evidence = _evidence(params.get("evidence"))
        submit = _bool_param(params.get("submit", "true"), "submit")
        if evidence or submit:
            _refuse_unless_open(dispute)
        merged = {**dispute["evidence"], **{k: (v or None) for k, v in evidence.items()}}
        size = sum(len(v) for k, v in merged.items() if isinstance(v, str))
        if size > MAX_EVIDENCE_CHARACTERS:
            raise invalid(
                f"The combined character count of all evidence fields is limited to {MAX_EVIDENCE_CHARACTERS}.",
                "evidence",
                "parameter_invalid_string",
            )
        previous: dict[str, Any] = {}
        if evidence:
            previous["evidence"] = copy.deepcopy(dispute["evidence"])
            dispute["evidence"] = merged
            dispute["evidence_details"]["has_evidence"] = any(
                isinstance(v, str) and v for k, v in merged.items() if k != "enhanced_evidence"
            )
        if metadata is not None:
            previous["metadata"] = dict(dispute["metadata"])
            dispute["metadata"] = {**dispute["metadata"], **metadata}
            dispute["metadata"] = {k: v for k, v in dispute["metadata"].items() if v != ""}
        if submit:
            previous["status"] = dispute["status"]
            details = dispute["evidence_details"]
            details["submission_count"] += 1
            details["submission_method"] = "manual"
            inquiry = dispute["status"] == "warning_needs_response"
            dispute["status"] = "warning_under_review" if inquiry else "under_review"
        if previous:
            store.emit("charge.dispute.updated", dispute, origin, previous_attributes=previous)
        if submit:
            text = dispute["evidence"].get("uncategorized_text") or ""
            if WINNING_EVIDENCE in text:
                _close(store, dispute, won=True, origin=origin)
            elif LOSING_EVIDENCE in text:
                _close(store, dispute, won=False, origin=origin)
        return dispute


def _close(store: Store, dispute: dict[str, Any], *, won: bool, origin: Origin | None) -> None:
    inquiry = dispute["status"].startswith("warning_")
    if inquiry:
        # An inquiry never withdrew funds: won, it just closes; lost, it escalates no further here (the
        # docs' losing_evidence "closed and marked as lost": the account is not credited, nothing was taken).
        dispute["status"] = "warning_closed" if won else "lost"
        dispute["is_charge_refundable"] = won
    else:
        dispute["status"] = "won" if won else "lost"
        # Won: the funds come back, and the charge may be refunded again; lost: the money is gone for good.
        dispute["is_charge_refundable"] = won
    store.emit("charge.dispute.closed", dispute, origin)
    if won and not inquiry:
        _reinstate(store, dispute)


def close_dispute(store: Store, dispute_id: str, origin: Origin) -> dict[str, Any]:
    """POST /v1/disputes/{id}/close: accept the dispute (lost; an inquiry closes as warning_closed)."""
    with store.lock:
        dispute = get_dispute(store, dispute_id)
        _refuse_unless_open(dispute)
        if dispute["status"] == "warning_needs_response":
            dispute["status"] = "warning_closed"
            store.emit("charge.dispute.closed", dispute, origin)
        else:
            _close(store, dispute, won=False, origin=origin)
        return dispute


def advance_dispute(store: Store, dispute_id: str, outcome: str | None = None) -> dict[str, Any]:
    """Test control: move a dispute's own clock past its due date (no evidence submitted -> lost, as Stripe
    does), or decide a dispute under review now (`outcome` "won" or "lost")."""
    with store.lock:
        dispute = get_dispute(store, dispute_id)
        if outcome is not None:
            if outcome not in ("won", "lost") or dispute["status"] not in ("under_review", "warning_under_review"):
                raise EmulatorStateError(f"dispute {dispute_id} is {dispute['status']}; cannot decide it {outcome}")
            _close(store, dispute, won=outcome == "won", origin=None)
            return dispute
        _past_due(store, dispute)
        return dispute


def _past_due(store: Store, dispute: dict[str, Any]) -> None:
    details = dispute["evidence_details"]
    if dispute["status"] not in NEEDS_RESPONSE:
        raise EmulatorStateError(f"dispute {dispute['id']} is {dispute['status']}, not waiting for evidence")
    details["past_due"] = True
    if dispute["status"] == "warning_needs_response":
        dispute["status"] = "warning_closed"
        store.emit("charge.dispute.closed", dispute, None)
    else:
        _close(store, dispute, won=False, origin=None)


def close_past_due(store: Store) -> list[str]:
    """Close every dispute still waiting for evidence whose due_by the service clock has passed."""
    with store.lock:
        now = store.clock.timestamp()
        due = [
            d
            for d in store.disputes.values()
            if d["status"] in NEEDS_RESPONSE and d["evidence_details"]["due_by"] < now
        ]
        for dispute in due:
            _past_due(store, dispute)
        return [d["id"] for d in due]


def refuse_refund_if_disputed(store: Store, charge: dict[str, Any]) -> None:
    """Stripe refuses to refund a charge whose dispute holds the funds (is_charge_refundable false)."""
    for dispute in store.disputes.values():
        if dispute["charge"] == charge["id"] and not dispute["is_charge_refundable"]:
            raise StripeAPIError(
                400, f"Charge {charge['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
            )


def after_refund(store: Store, charge: dict[str, Any]) -> None:
    """A fully refunded charge's early fraud warnings are no longer actionable."""
    if charge["amount_refunded"] < charge["amount"]:
        return
    for efw in store.early_fraud_warnings.values():
        if efw["charge"] == charge["id"] and efw["actionable"]:
            efw["actionable"] = False
            store.emit("radar.early_fraud_warning.updated", efw, None, previous_attributes={"actionable": True})


def warn(store: Store, charge: dict[str, Any]) -> dict[str, Any]:
    """Create an actionable early fraud warning on `charge` and announce it."""
    with store.lock:
        efw = {
            "id": new_id("issfr_"),
            "object": "radar.early_fraud_warning",
            "actionable": True,
            "charge": charge["id"],
            "created": store.clock.timestamp(),
            "fraud_type": "made_with_stolen_card",
            "livemode": False,
            "payment_intent": charge["payment_intent"],
        }
        store.early_fraud_warnings[efw["id"]] = efw
        store.emit("radar.early_fraud_warning.created", efw, None)
        return efw


def list_disputes(store: Store, params: dict[str, Any], version: str) -> dict[str, Any]:
    """GET /v1/disputes: newest first, optionally one charge's or one payment intent's."""
    return _list(store.disputes, "/v1/disputes", params, version)


def list_early_fraud_warnings(store: Store, params: dict[str, Any], version: str) -> dict[str, Any]:
    """GET /v1/radar/early_fraud_warnings: newest first, optionally one charge's or one payment intent's."""
    return _list(store.early_fraud_warnings, "/v1/radar/early_fraud_warnings", params, version)


def _list(table: dict[str, dict[str, Any]], url: str, params: dict[str, Any], version: str) -> dict[str, Any]:
    items = list(reversed(table.values()))
    for name in ("charge", "payment_intent"):
        if name in params:
            items = [item for item in items if item.get(name) == params[name]]
    page = {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}
    return list_object([render_object(item, version) for item in items], url, page)
