"""The extractor of Stripe's TypeScript declarations reads `name: T | null` as always present (maybe null) and
`name?: T` as sent only when expanded or applicable (scripts/extract_stripe_required_fields.py). CI has no npm,
so the parser is checked on a declaration written like Stripe's; the committed data file it produced is checked
by tests/emulator/test_contract.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "extract_stripe_required_fields.py"

DECLARATION = """
import { StripeResource } from '../StripeResource.js';
export declare class ChargeResource extends StripeResource {
    retrieve(id: string, options?: RequestOptions): Promise<Response<Charge>>;
}
export interface Charge {
    /**
     * Unique identifier for the object.
     */
    id: string;
    object: 'charge';
    amount: number;
    /**
     * The ID of the Connect application that created the charge. { not a block }
     */
    application: string | Application | null;
    billing_details: Charge.BillingDetails;
    outcome: Charge.Outcome | null;
    /**
     * A list of refunds that have been applied to the charge.
     */
    refunds?: ApiList<Refund> | null;
    status: 'failed'
        | 'pending'
        | 'succeeded';
    shipping_inline: {
        carrier: string | null;
    };
    transfer?: string | Transfer;
}
export declare namespace Charge {
    interface BillingDetails {
        email: string | null;
        name?: string;
    }
    interface Outcome {
        type: string;
    }
    namespace Outcome {
        interface Rule {
            id: string;
        }
    }
}
"""


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_stripe_required_fields", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_required_nullable_and_includable_fields_are_read_from_the_declaration() -> None:
    found = _script().interfaces(DECLARATION)
    charge = found["Charge"]
    assert {name for name, field in charge.items() if field["required"]} == {
        "id",
        "object",
        "amount",
        "application",
        "billing_details",
        "outcome",
        "status",
        "shipping_inline",
    }
    assert {name for name, field in charge.items() if not field["required"]} == {"refunds", "transfer"}
    assert [name for name, field in charge.items() if field["nullable"]] == ["application", "outcome", "refunds"]
    assert "carrier" not in charge  # a field of an inline object type, not of the Charge
    assert found["Charge.BillingDetails"] == {
        "email": {"required": True, "nullable": True, "type": "string | null"},
        "name": {"required": False, "nullable": False, "type": "string"},
    }
    assert found["Charge.Outcome.Rule"] == {"id": {"required": True, "nullable": False, "type": "string"}}
