"""Extract, from Stripe's generated TypeScript declarations, which fields each object Stripe always returns.

Stripe's `stripe` package on the npm registry is generated from the same OpenAPI description as stripe-python
("File generated from our OpenAPI spec"), and its declarations say what the Python classes do not: a field written
`name: T | null;` is always present in the JSON (maybe null), a field written `name?: T;` only when expanded,
included or applicable (e.g. `Charge.refunds?`, `Checkout.Session.line_items?`).

Usage (needs npm once, on a developer machine; CI reads the committed JSON):

    npm pack stripe@23.1.0            # the release pinned to the same API version as stripe-python 16.1
    tar xzf stripe-23.1.0.tgz         # -> package/
    .venv/bin/python scripts/extract_stripe_required_fields.py package > tests/fixtures/stripe/required_fields.json

The output names the package version and its API version (package/esm/apiVersion.d.ts) and lists, per object the
local Stripe service renders, every declared field with `required` (always present) and `nullable` (`| null`), and
the nested interface a field refers to, if any.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# Object name (the JSON "object" value) -> (declaration file under esm/, interface name).
OBJECTS: dict[str, tuple[str, str]] = {
    "checkout.session": ("resources/Checkout/Sessions.d.ts", "Session"),
    "item": ("resources/LineItems.d.ts", "LineItem"),
    "price": ("resources/Prices.d.ts", "Price"),
    "payment_intent": ("resources/PaymentIntents.d.ts", "PaymentIntent"),
    "charge": ("resources/Charges.d.ts", "Charge"),
    "refund": ("resources/Refunds.d.ts", "Refund"),
    "event": ("resources/Events.d.ts", "EventBase"),  # `Event` is the union of EventBase subtypes
    "webhook_endpoint": ("resources/WebhookEndpoints.d.ts", "WebhookEndpoint"),
    "webhook_endpoint (deleted)": ("resources/WebhookEndpoints.d.ts", "DeletedWebhookEndpoint"),
    "list": ("lib.d.ts", "ApiList"),
    "balance_transaction": ("resources/BalanceTransactions.d.ts", "BalanceTransaction"),
    "dispute": ("resources/Disputes.d.ts", "Dispute"),
    "radar.early_fraud_warning": ("resources/Radar/EarlyFraudWarnings.d.ts", "EarlyFraudWarning"),
    "coupon": ("resources/Coupons.d.ts", "Coupon"),
    "promotion_code": ("resources/PromotionCodes.d.ts", "PromotionCode"),
    "shipping_rate": ("resources/ShippingRates.d.ts", "ShippingRate"),
    "invoice": ("resources/Invoices.d.ts", "Invoice"),
    "tax_code": ("resources/TaxCodes.d.ts", "TaxCode"),
}

_NAMESPACE = re.compile(r"^(?:export\s+)?(?:declare\s+)?namespace\s+([\w.]+)\s*\{$")
_INTERFACE = re.compile(r"^(?:export\s+)?(?:declare\s+)?interface\s+(\w+)(?:<[^>]*>)?(?:\s+extends\s+[^{]+)?\s*\{$")
_FIELD = re.compile(r"^(\w+)(\??):\s*(.*)$")


def interfaces(source: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every interface in a declaration file, by qualified name (`Session.AutomaticTax`), with its fields."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    stack: list[tuple[str, str]] = []  # (kind, name): kind is namespace, interface or other
    lines = [line.strip() for line in source.splitlines()]
    i = 0
    in_comment = False
    while i < len(lines):
        line = lines[i]
        i += 1
        if in_comment:
            in_comment = "*/" not in line
            continue
        if line.startswith("/*"):
            in_comment = "*/" not in line
            continue
        if not line or line.startswith("//"):
            continue
        namespaces = [name for kind, name in stack if kind in ("namespace", "interface")]
        if match := _NAMESPACE.match(line):
            stack.append(("namespace", match.group(1)))
            continue
        if match := _INTERFACE.match(line):
            qualified = ".".join([*namespaces, match.group(1)])
            found.setdefault(qualified, {})
            stack.append(("interface", match.group(1)))
            continue
        if line in ("}", "};"):
            if stack:
                stack.pop()
            continue
        top = stack[-1] if stack else ("other", "")
        if top[0] == "interface" and (match := _FIELD.match(line)):
            name, optional, kind = match.group(1), match.group(2), match.group(3)
            # A type may continue on the next lines (long unions); an inline object type opens a block.
            while not kind.endswith((";", "{")) and i < len(lines):
                kind += " " + lines[i]
                i += 1
            if kind.endswith("{"):
                stack.append(("other", name))
            kind = kind.rstrip(";{ ").strip()
            owner = ".".join(namespaces)
            found[owner][name] = {
                "required": optional != "?",
                "nullable": bool(re.search(r"(^|\|\s*)null(\s*\||$)", kind)),
                "type": kind,
            }
            continue
        if line.endswith("{"):
            stack.append(("other", ""))
    return found


def _reference(kind: str, declared: dict[str, Any], owner: str) -> str | None:
    """The nested interface a field's type names (`Session.AutomaticTax | null` -> `Session.AutomaticTax`)."""
    bare = re.sub(r"\s*\|\s*null\b", "", kind).strip()
    for candidate in (bare, f"{owner}.{bare}"):
        if candidate in declared:
            return candidate
    return None


def extract(package: Path) -> dict[str, Any]:
    """The data file: package and API version, and per object its fields and the nested interfaces they use."""
    version = json.loads((package / "package.json").read_text())["version"]
    api_version = re.search(r'"([^"]+)"', (package / "esm" / "apiVersion.d.ts").read_text())
    objects: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for object_name, (path, interface) in OBJECTS.items():
        declared = interfaces((package / "esm" / path).read_text())
        fields = declared[interface]
        objects[object_name] = {"interface": interface, "file": f"esm/{path}", "fields": {}}
        for name, field in sorted(fields.items()):
            entry = {"required": field["required"], "nullable": field["nullable"]}
            ref = _reference(field["type"], declared, interface)
            if ref is not None:
                entry["interface"] = ref
                nested.setdefault(
                    ref,
                    {
                        n: {"required": f["required"], "nullable": f["nullable"]}
                        for n, f in sorted(declared[ref].items())
                    },
                )
            objects[object_name]["fields"][name] = entry
    return {
        "source": "the `stripe` package on the npm registry (Stripe's generated TypeScript declarations)",
        "package_version": version,
        "api_version": api_version.group(1) if api_version else None,
        "generated_by": "scripts/extract_stripe_required_fields.py",
        "rule": "`name: T | null` is always present (nullable); `name: T` always present, never null; "
        "`name?: T` only when expanded, included or applicable",
        "objects": objects,
        "interfaces": nested,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(extract(Path(argv[1])), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
