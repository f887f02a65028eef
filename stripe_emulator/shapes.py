"""Fields Stripe always returns on the objects the service renders, with the value they take here.

Stripe's generated type declarations (the `stripe` package on the npm registry, 23.1.0 for API 2026-10-28.endive)
write a field Stripe always returns as `name: T | null;` and one it returns only when expanded, included or
applicable as `name?: T;`. The objects the emulator builds carry the fields a Checkout shop reads; the rest of the
always-present ones are filled here at render time, with the value a card payment in Checkout has in test mode
(null where the feature is unused, as in Stripe's own example objects, tests/fixtures/stripe/fixtures3-subset.json).
Includable fields (`charge.refunds`, `checkout.session.line_items`) are never filled: they appear only when
expanded (or at an API version that still includes them, see versions.py).

`tests/emulator/test_contract.py` checks every rendered object against the committed list extracted from those
declarations (tests/fixtures/stripe/required_fields.json), so a field missing here fails a test.

Older API versions get these fields too: Stripe counts "adding new properties to existing API responses" as a
backward-compatible change (docs.stripe.com/upgrades), made for every version; only the breaking changes listed in
versions.py differ by version.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    "charge": {
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "calculated_statement_descriptor": None,
        "failure_balance_transaction": None,
        "fraud_details": {},
        "on_behalf_of": None,
        "outcome": None,
        "receipt_number": None,
        "receipt_url": None,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "transfer_data": None,
        "transfer_group": None,
    },
    "checkout.session": {
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "allowed_payment_method_types": None,
        "billing_address_collection": None,
        "client_secret": None,
        "consent": None,
        "consent_collection": None,
        "currency_conversion": None,
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "discounts": None,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "locale": None,
        "managed_payments": None,
        "origin_context": None,
        "payment_link": None,
        "payment_method_collection": None,
        "payment_method_configuration_details": None,
        "payment_method_options": None,
        "permissions": None,
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_cost": None,
        "submit_type": None,
        "subscription": None,
        "total_details": {
            "amount_discount": 0,
            "amount_shipping": 0,
            "amount_tax": 0,
        },  # no discounts, tax or shipping rates
        "ui_mode": None,
        "wallet_options": None,
    },
    "item": {
        "adjustable_quantity": None,
        "metadata": {},
    },
    "payment_intent": {
        "allowed_payment_method_types": None,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "customer_account": None,
        "excluded_payment_method_types": None,
        "managed_payments": None,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method_configuration_details": None,
        "payment_method_options": None,
        "payment_record": None,
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "transfer_group": None,
    },
    "price": {
        "custom_unit_amount": None,
        "lookup_key": None,
        "nickname": None,
        "recurring": None,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
    },
    "refund": {
        "customer": None,
        "customer_account": None,
        "payment_method": None,
    },
}


def fill(obj: Any) -> Any:
    """`obj` (a rendered copy) and every object nested in it, with the always-present fields they lack."""
    if isinstance(obj, list):
        for item in obj:
            fill(item)
    elif isinstance(obj, dict):
        for value in obj.values():
            fill(value)
        for name, default in DEFAULTS.get(str(obj.get("object")), {}).items():
            if name not in obj:
                obj[name] = copy.deepcopy(default)
    return obj
