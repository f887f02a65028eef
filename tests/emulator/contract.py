"""Check what the local Stripe service returns against sources we did not write.

(a) The official SDK's generated classes for the version it pins (stripe/checkout/_session.py and siblings,
    "File generated from our OpenAPI spec"): no field the class lacks, every non-Optional field present, values
    of the declared type, enum values within the class's Literal values; nested classes and lists too.
(b) Stripe's published example objects (tests/fixtures/stripe/fixtures3-subset.json): for every field we
    fill that the example also has, the same kind of value and nesting, and ids with the same prefix.
(c) Stripe's generated TypeScript declarations (tests/fixtures/stripe/required_fields.json, extracted by
    scripts/extract_stripe_required_fields.py from the npm `stripe` package pinned to the same API version): every
    field Stripe always returns (`name: T | null`) is present, maybe null; a field Stripe sends only when expanded,
    included or applicable (`name?: T`, e.g. `charge.refunds`, `checkout.session.line_items`) is absent unless the
    request expanded it or its condition holds. The SDK's Python classes cannot tell these apart (both are
    Optional there), which is how "`charge.refunds` sent unasked" once passed.
    Older API versions are checked against the same list, changed only by the breaking changes in
    `VERSION_CHANGES` (from Stripe's changelog): Stripe adds new fields to every version ("Adding new properties
    to existing API responses" is backward-compatible, docs.stripe.com/upgrades), so a field the pin always
    returns is expected at 2022-11-15 too unless a listed change says otherwise.

`python -m tests.emulator.contract` runs a full checkout/refund/endpoint lifecycle against an in-process
service and prints the coverage table (fields filled / fields in the class) per object, and the always-present
table per object and API version (in Stripe's list, filled, missing, sent unasked).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import sys
import textwrap
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
import stripe.checkout
import stripe.radar
from stripe._error_object import ErrorObject
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject, UntypedStripeObject
from werkzeug.test import Client

from stripe_emulator import Clock, Emulator
from stripe_emulator import versions as emulator_versions
from stripe_emulator.taxes import Registration, TaxSettings
from tests.support import STRIPE_FIXTURES, STRIPE_REQUIRED_FIELDS

FIXTURES = STRIPE_FIXTURES

CLASSES: dict[str, type[StripeObject]] = {
    "checkout.session": stripe.checkout.Session,
    "item": stripe.LineItem,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "balance_transaction": stripe.BalanceTransaction,
    "dispute": stripe.Dispute,
    "radar.early_fraud_warning": stripe.radar.EarlyFraudWarning,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
    "coupon": stripe.Coupon,
    "promotion_code": stripe.PromotionCode,
    "shipping_rate": stripe.ShippingRate,
    "invoice": stripe.Invoice,
    "tax_rate": stripe.TaxRate,
    "tax_code": stripe.TaxCode,
    "discount": stripe.Discount,
    "list": ListObject,
    "error": ErrorObject,
}

_NAMESPACES: dict[str, dict[str, Any]] = {}


def _namespace(module_name: str) -> dict[str, Any]:
    """The module's globals plus the names it imports only under TYPE_CHECKING (forward references)."""
    if module_name not in _NAMESPACES:
        module = sys.modules[module_name]
        namespace = dict(vars(stripe._stripe_object))
        namespace.update(vars(module))
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                exec(compile(ast.Module(body=node.body, type_ignores=[]), str(module.__file__), "exec"), namespace)
        _NAMESPACES[module_name] = namespace
    return _NAMESPACES[module_name]


def fields(cls: type) -> dict[str, Any]:
    """The public fields a generated SDK class declares, with their resolved types."""
    hints = typing.get_type_hints(cls, globalns=_namespace(cls.__module__), localns=dict(vars(cls)))
    declared = {
        name: hint
        for name, hint in hints.items()
        if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar
    }
    object_name = getattr(cls, "OBJECT_NAME", None)
    if "object" not in declared and isinstance(object_name, str):
        declared["object"] = typing.Literal[object_name]  # e.g. ListObject declares it only as OBJECT_NAME
    return declared


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _literals(hint: Any) -> list[Any]:
    if typing.get_origin(hint) is typing.Literal:
        return list(typing.get_args(hint))
    return [
        v for arg in typing.get_args(hint) if typing.get_origin(arg) is typing.Literal for v in typing.get_args(arg)
    ]


# A `str` field whose values the SDK names only in its docstring, e.g. Refund.status: "This can be `pending`,
# `requires_action`, `succeeded`, `failed`, or `canceled`." (the class types it Optional[str]).
_VALUES_SENTENCE = re.compile(r"(?:This can be|Possible values are:?|One of)\s+((?:`[^`]+`,?\s*(?:or\s+)?)+)")
_DOCUMENTED: dict[type, dict[str, list[str]]] = {}


def documented_values(cls: type) -> dict[str, list[str]]:
    """Per field, the values its docstring in the generated class lists (for fields typed plain str)."""
    if cls not in _DOCUMENTED:
        found: dict[str, list[str]] = {}
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            tree = None
        body = tree.body[0].body if tree and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                match = _VALUES_SENTENCE.search(" ".join(after.value.value.split()))
                if match:
                    found[node.target.id] = re.findall(r"`([^`]+)`", match.group(1))
        _DOCUMENTED[cls] = found
    return _DOCUMENTED[cls]


def check_object(value: Any, cls: type, path: str) -> list[str]:
    """Problems of one JSON object against an SDK class (recursively)."""
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    if cls in (UntypedStripeObject, StripeObject):
        kind = value.get("object")
        return check_object(value, CLASSES[kind], path) if kind in CLASSES else []
    declared = fields(cls)
    problems = [f"{path}.{key}: not a field of {cls.__qualname__}" for key in value if key not in declared]
    deleted_stub = value.get("deleted") is True
    problems += [
        f"{path}.{key}: required by {cls.__qualname__} but missing"
        for key, hint in declared.items()
        if not _optional(hint) and key not in value and not deleted_stub
    ]
    documented = documented_values(cls)
    for key, item in value.items():
        if key in declared:
            problems += check_value(item, declared[key], f"{path}.{key}")
            if (
                isinstance(item, str)
                and not _literals(declared[key])
                and key in documented
                and item not in documented[key]
            ):
                problems.append(
                    f"{path}.{key}: {item!r} is not one of the values documented in "
                    f"{cls.__qualname__} {documented[key]}"
                )
    return problems


def check_value(value: Any, hint: Any, path: str) -> list[str]:
    """Problems of one JSON value against a type annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if value is None:
        return [] if _optional(hint) else [f"{path}: null but not Optional"]
    if origin is typing.Union:
        literals = _literals(hint)
        # The SDK types an enum as Union[Literal[...], str] (forward compatible); we hold values to the literals.
        if literals and isinstance(value, str) and value not in literals:
            return [f"{path}: {value!r} is not one of the class's values {literals}"]
        attempts = [check_value(value, arg, path) for arg in args if arg is not type(None)]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not in {list(args)}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected bool"]
    if hint is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected int"]
    if hint is float:
        return [] if isinstance(value, int | float) else [f"{path}: expected number"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: expected string"]
    if origin in (list, typing.List):  # noqa: UP006 - the SDK annotates with typing.List
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value) for p in check_value(item, args[0], f"{path}[{i}]")]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return [] if isinstance(value, dict) else [f"{path}: expected a map"]
    cls = origin or hint
    if inspect.isclass(cls) and issubclass(cls, ListObject):
        problems = check_object(value, ListObject, path)
        item_cls = args[0] if args else UntypedStripeObject
        return problems + [
            p for i, item in enumerate(value.get("data", [])) for p in check_object(item, item_cls, f"{path}.data[{i}]")
        ]
    if inspect.isclass(cls) and issubclass(cls, StripeObject):
        return check_object(value, cls, path)
    return []


_ID = re.compile(r"^([a-z]+_(?:test_|tmp_)?)[A-Za-z0-9]{8,}$")


def compare_fixture(ours: Any, example: Any, path: str) -> list[str]:
    """Same kind of value and nesting as Stripe's example for the fields both fill; ids with its prefix."""
    if ours is None or example is None:
        return []
    if isinstance(ours, dict) and isinstance(example, str) and isinstance(ours.get("id"), str):
        return compare_fixture(ours["id"], example, path)  # an expandable field, expanded: its id must match
    if isinstance(example, dict) != isinstance(ours, dict) or isinstance(example, list) != isinstance(ours, list):
        return [f"{path}: {type(ours).__name__} where Stripe's example has {type(example).__name__}"]
    if isinstance(ours, dict):
        if ours.get("object") != example.get("object"):
            return []  # e.g. an event's data.object: compared as its own kind elsewhere
        keys = ours.keys() & example.keys()
        if ours.get("object") == "balance_transaction" and ours.get("type") != example.get("type"):
            keys -= {"source"}  # its source is a refund, a dispute...: the example's is a charge
        return [p for key in keys for p in compare_fixture(ours[key], example[key], f"{path}.{key}")]
    if isinstance(ours, list):
        return [p for item in ours[:1] for sample in example[:1] for p in compare_fixture(item, sample, f"{path}[0]")]
    if isinstance(example, str) and isinstance(ours, str):
        theirs, mine = _ID.match(example), _ID.match(ours)
        if theirs and not (mine and mine.group(1).split("_")[0] == theirs.group(1).split("_")[0]):
            return [f"{path}: id {ours!r} lacks Stripe's prefix {theirs.group(1)!r}"]
    elif type(example) is not type(ours) and not {type(example), type(ours)} <= {int, float}:
        return [f"{path}: {type(ours).__name__} where Stripe's example has {type(example).__name__}"]
    return []


def fixtures() -> dict[str, dict[str, Any]]:
    """Stripe's example objects by object name."""
    return dict(json.loads(FIXTURES.read_text())["resources"])


# ---------------------------------------------------------------- a lifecycle that returns every object


# 2022-08-01 (the oldest the service renders) shows the Charge and PaymentIntent before 2022-11-15 changed them.
OLDER_VERSIONS = ("2022-08-01", "2022-11-15", "2024-10-28.acacia", "2025-02-24.acacia", "2025-03-31.basil")


@dataclass(frozen=True)
class Read:
    """One rendered object: its JSON, the API version it was rendered in and what the request expanded."""

    obj: dict[str, Any]
    version: str
    expand: frozenset[str] = frozenset()


def collect_samples(
    older: dict[str, list[dict[str, Any]]] | None = None, reads: list[Read] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, JSON) for every object the service returns or sends during checkout, declines, refunds,
    webhook endpoints and errors, rendered at the SDK's pinned version.

    Events delivered to endpoints of OLDER_VERSIONS are put in `older` by version (for the fixture check:
    the SDK's classes describe only its pinned version). `reads` gets every rendered object with its version
    and `expand[]`: the pin's answers, the same API reads at each of OLDER_VERSIONS, and every delivery."""
    received: list[tuple[str, bytes]] = []
    pin = stripe.api_version

    def read(obj: dict[str, Any], *expand: str, version: str = pin) -> dict[str, Any]:
        if reads is not None:
            reads.append(Read(obj, version, frozenset(expand)))
        return obj

    def sender(url: str, body: bytes, headers: dict[str, str]) -> int:
        received.append((url, body))
        return 200

    tax = TaxSettings(registrations=(Registration.parse("US-CA:7.25"), Registration.parse("DE:19")))
    emu = Emulator(clock=Clock(start=float(int(time.time()))), sender=sender, tax=tax)
    web = Client(emu.wsgi_app)
    headers = {"Authorization": "Bearer sk_test_contract", "Stripe-Version": stripe.api_version}

    def call(
        method: str, path: str, data: dict[str, Any] | None = None, version: str = pin
    ) -> tuple[int, dict[str, Any]]:
        response = web.open(path, method=method, data=data, headers={**headers, "Stripe-Version": version})
        body = json.loads(response.get_data())
        if response.status_code == 200:
            expand = [v for k, v in parse_qsl(urlsplit(path).query) if k == "expand[]"]
            if (method, path) == ("POST", "/v1/webhook_endpoints"):
                expand.append("secret")  # WebhookEndpoint.secret?: "Only returned at creation"
            read(body, *expand, version=version)
        return response.status_code, body

    _, endpoint = call(
        "POST",
        "/v1/webhook_endpoints",
        {
            "url": "https://shop.test/webhook/",
            "enabled_events[]": "*",
            "api_version": stripe.api_version,
            "description": "contract",
        },
    )
    yield "webhook_endpoint", endpoint
    for version in OLDER_VERSIONS:
        call(
            "POST",
            "/v1/webhook_endpoints",
            {"url": f"https://old.test/{version}", "enabled_events[]": "*", "api_version": version},
        )
    session_form = {
        "mode": "payment",
        "success_url": "https://shop.test/ok?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.test/cart",
        "client_reference_id": "order-1",
        "customer_email": "a@b.test",
        "metadata[order_id]": "1",
        "shipping_address_collection[allowed_countries][]": ["US", "GB"],
        "line_items[0][quantity]": "2",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "1999",
        "line_items[0][price_data][product_data][name]": "Mug",
    }
    _, session = call("POST", "/v1/checkout/sessions", session_form)
    yield "checkout.session", session
    yield "list", call("GET", f"/v1/checkout/sessions/{session['id']}/line_items")[1]
    for item in call("GET", f"/v1/checkout/sessions/{session['id']}/line_items")[1]["data"]:
        yield "item", item
    address = {
        "name": "Ann Lee",
        "line1": "1 Main St",
        "city": "Springfield",
        "postal_code": "12345",
        "state": "IL",
        "country": "US",
    }
    emu.pay(session["id"], card="4000000000000002", shipping=address)  # declined first
    yield (
        "payment_intent",
        call("GET", f"/v1/checkout/sessions/{session['id']}?expand[]=payment_intent")[1]["payment_intent"],
    )
    emu.pay(session["id"], card="4000000000005126", shipping=address)
    _, paid = call("GET", f"/v1/checkout/sessions/{session['id']}?expand[]=line_items")
    yield "checkout.session", paid
    _, intent = call("GET", f"/v1/payment_intents/{paid['payment_intent']}")
    yield "payment_intent", intent
    yield "charge", call("GET", f"/v1/charges/{intent['latest_charge']}")[1]
    _, refund = call(
        "POST",
        "/v1/refunds",
        {"payment_intent": intent["id"], "amount": "999", "reason": "requested_by_customer", "metadata[order_id]": "1"},
    )
    yield "refund", refund
    emu.settle_refund(refund["id"])
    yield "refund", call("GET", f"/v1/refunds/{refund['id']}")[1]
    yield "charge", call("GET", f"/v1/charges/{intent['latest_charge']}?expand[]=refunds")[1]
    yield "list", call("GET", f"/v1/refunds?charge={intent['latest_charge']}")[1]
    # The charge's, the refund's and the failed refund's balance transactions (issue 21), a source expanded.
    _, transactions = call("GET", "/v1/balance_transactions?limit=100&expand[]=data.source")
    yield "list", transactions
    assert {t["type"] for t in transactions["data"]} == {"charge", "refund", "refund_failure"}, transactions
    for transaction in transactions["data"]:
        yield "balance_transaction", transaction
        yield "balance_transaction", call("GET", f"/v1/balance_transactions/{transaction['id']}")[1]
    yield "charge", call("GET", f"/v1/charges/{intent['latest_charge']}?expand[]=balance_transaction")[1]
    for version in OLDER_VERSIONS:  # the same reads, rendered at each older version
        call("GET", f"/v1/checkout/sessions/{session['id']}", version=version)
        call("GET", f"/v1/checkout/sessions/{session['id']}/line_items", version=version)
        call("GET", f"/v1/payment_intents/{intent['id']}", version=version)
        call("GET", f"/v1/charges/{intent['latest_charge']}", version=version)
        call("GET", f"/v1/refunds/{refund['id']}", version=version)
        call("GET", f"/v1/balance_transactions/{transactions['data'][0]['id']}", version=version)
    yield from _dispute_samples(emu, call, session_form, address)
    expiring = call("POST", "/v1/checkout/sessions", {**session_form, "client_reference_id": "order-2"})[1]
    yield "checkout.session", call("POST", f"/v1/checkout/sessions/{expiring['id']}/expire")[1]
    yield from _discounts_shipping_tax_invoices(call, emu, session_form, address)
    _, events = call("GET", "/v1/events?limit=100")
    yield "list", events
    for event in events["data"]:
        yield "event", event
    emu.deliver_pending()
    for url, body in received:
        event = json.loads(body)
        read(event, version=event["api_version"])
        if url == endpoint["url"]:
            yield "event", event
        elif older is not None:
            older.setdefault(event["api_version"], []).append(event)
    yield "list", call("GET", "/v1/webhook_endpoints")[1]
    yield (
        "webhook_endpoint",
        call(
            "POST",
            f"/v1/webhook_endpoints/{endpoint['id']}",
            {"enabled_events[]": ["refund.created", "charge.refunded"]},
        )[1],
    )
    yield "webhook_endpoint", call("GET", f"/v1/webhook_endpoints/{endpoint['id']}")[1]
    yield "webhook_endpoint", call("DELETE", f"/v1/webhook_endpoints/{endpoint['id']}")[1]
    for path in ("/v1/checkout/sessions/cs_test_missing", "/v1/refunds/re_missing"):
        yield "error", call("GET", path)[1]["error"]
    yield "error", call("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": "999999"})[1]["error"]
    yield (
        "error",
        call("POST", "/v1/webhook_endpoints", {"url": "https://x.test/", "enabled_events[]": "nope"})[1]["error"],
    )
    emu.close()


def _dispute_samples(
    emu: Emulator, call: Any, session_form: dict[str, Any], address: dict[str, str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A dispute (card 0259) staged, submitted and won, one accepted (closed as lost), an inquiry (1976), and an
    early fraud warning (5423) refunded: every dispute and warning shape and event, at each version."""
    disputes = []
    for number, card in enumerate(("4000000000000259", "4000000000002685", "4000000000001976"), start=3):
        paying = call("POST", "/v1/checkout/sessions", {**session_form, "client_reference_id": f"order-{number}"})[1]
        emu.pay(paying["id"], card=card, shipping=address)
        intent = call("GET", f"/v1/checkout/sessions/{paying['id']}")[1]["payment_intent"]
        disputes.append(call("GET", f"/v1/disputes?payment_intent={intent}")[1]["data"][0])
    yield "list", call("GET", "/v1/disputes")[1]
    won, lost, inquiry = disputes
    yield "dispute", call("GET", f"/v1/disputes/{won['id']}")[1]
    yield (
        "dispute",
        call(
            "POST",
            f"/v1/disputes/{won['id']}",
            {"evidence[customer_email_address]": "a@b.test", "metadata[order_id]": "3", "submit": "false"},
        )[1],
    )
    yield "dispute", call("POST", f"/v1/disputes/{won['id']}", {"evidence[uncategorized_text]": "winning_evidence"})[1]
    yield "dispute", call("POST", f"/v1/disputes/{lost['id']}/close")[1]
    yield "dispute", call("GET", f"/v1/disputes/{inquiry['id']}")[1]
    yield "error", call("POST", f"/v1/disputes/{lost['id']}", {"evidence[uncategorized_text]": "late"})[1]["error"]
    warned = call("POST", "/v1/checkout/sessions", {**session_form, "client_reference_id": "order-6"})[1]
    emu.pay(warned["id"], card="4000000000005423", shipping=address)
    intent = call("GET", f"/v1/checkout/sessions/{warned['id']}")[1]["payment_intent"]
    warnings = call("GET", f"/v1/radar/early_fraud_warnings?payment_intent={intent}")[1]
    yield "list", warnings
    yield "radar.early_fraud_warning", call("GET", f"/v1/radar/early_fraud_warnings/{warnings['data'][0]['id']}")[1]
    call("POST", "/v1/refunds", {"payment_intent": intent})
    for version in OLDER_VERSIONS:
        call("GET", f"/v1/disputes/{won['id']}", version=version)
        call("GET", f"/v1/radar/early_fraud_warnings/{warnings['data'][0]['id']}", version=version)


def _discounts_shipping_tax_invoices(
    call: Any, emu: Emulator, session_form: dict[str, Any], address: dict[str, str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Issue 23's objects: coupons, promotion codes, shipping rates, a taxed, discounted, shipped and invoiced
    session, its invoice, tax codes, and their reads at the older versions."""
    _, coupon = call("POST", "/v1/coupons", {"percent_off": "10", "duration": "once", "name": "Ten"})
    yield "coupon", coupon
    _, amount_coupon = call(
        "POST", "/v1/coupons", {"amount_off": "500", "currency": "usd", "redeem_by": str(emu.clock.timestamp() + 999)}
    )
    yield "coupon", amount_coupon
    _, code = call(
        "POST",
        "/v1/promotion_codes",
        {
            "promotion[type]": "coupon",
            "promotion[coupon]": coupon["id"],
            "code": "TEN",
            "max_redemptions": "5",
            "restrictions[minimum_amount]": "1000",
            "restrictions[minimum_amount_currency]": "usd",
        },
    )
    yield "promotion_code", code
    yield "list", call("GET", "/v1/promotion_codes?code=ten")[1]
    yield "list", call("GET", "/v1/coupons")[1]
    _, rate = call(
        "POST",
        "/v1/shipping_rates",
        {
            "display_name": "Ground",
            "type": "fixed_amount",
            "fixed_amount[amount]": "500",
            "fixed_amount[currency]": "usd",
            "tax_behavior": "exclusive",
            "delivery_estimate[minimum][unit]": "business_day",
            "delivery_estimate[minimum][value]": "2",
            "delivery_estimate[maximum][unit]": "business_day",
            "delivery_estimate[maximum][value]": "5",
        },
    )
    yield "shipping_rate", rate
    yield "list", call("GET", "/v1/shipping_rates")[1]
    form = {
        **session_form,
        "client_reference_id": "order-3",
        "line_items[0][price_data][tax_behavior]": "exclusive",
        "line_items[0][price_data][product_data][tax_code]": "txcd_99999999",
        "discounts[0][promotion_code]": code["id"],
        "shipping_options[0][shipping_rate]": rate["id"],
        "shipping_options[1][shipping_rate_data][display_name]": "Express",
        "shipping_options[1][shipping_rate_data][fixed_amount][amount]": "1500",
        "shipping_options[1][shipping_rate_data][fixed_amount][currency]": "usd",
        "shipping_options[1][shipping_rate_data][tax_behavior]": "inclusive",
        "automatic_tax[enabled]": "true",
        "invoice_creation[enabled]": "true",
        "invoice_creation[invoice_data][description]": "Order 3",
        "locale": "de",
    }
    _, taxed = call("POST", "/v1/checkout/sessions", form)
    yield "checkout.session", taxed
    emu.pay(taxed["id"], shipping={**address, "state": "CA"})
    _, paid = call("GET", f"/v1/checkout/sessions/{taxed['id']}?expand[]=total_details.breakdown&expand[]=invoice")
    yield "checkout.session", paid
    yield "discount", paid["total_details"]["breakdown"]["discounts"][0]["discount"]
    yield "tax_rate", paid["total_details"]["breakdown"]["taxes"][0]["rate"]
    yield "invoice", call("GET", f"/v1/invoices/{paid['invoice']['id']}")[1]
    yield "promotion_code", call("GET", f"/v1/promotion_codes/{code['id']}")[1]
    yield "list", call("GET", "/v1/tax_codes")[1]
    yield "tax_code", call("GET", "/v1/tax_codes/txcd_99999999")[1]
    for version in OLDER_VERSIONS:
        call("GET", f"/v1/checkout/sessions/{taxed['id']}", version=version)
        call("GET", f"/v1/promotion_codes/{code['id']}", version=version)
        call("GET", f"/v1/coupons/{coupon['id']}", version=version)
        call("GET", f"/v1/shipping_rates/{rate['id']}", version=version)
        call("GET", f"/v1/invoices/{paid['invoice']['id']}", version=version)


def _flatten(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The object and every object nested in it (expanded fields, list data, event data.object)."""
    found = [obj]
    for value in obj.values():
        children = value if isinstance(value, list) else [value]
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            children = value["data"]
        elif isinstance(value, dict) and isinstance(value.get("object"), dict):
            children = [value["object"]]
        for child in children:
            if isinstance(child, dict) and child.get("object") in CLASSES and child.get("object") != "list":
                found += _flatten(child)
    return found


def coverage(samples: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[int, int, int]]:
    """Per kind: (fields present in some sample, of which non-null in some sample, fields in the class)."""
    present: dict[str, set[str]] = {}
    filled: dict[str, set[str]] = {}
    for kind, obj in samples:
        for nested in _flatten(obj) if kind != "error" else [obj]:
            name = nested.get("object", kind) if kind != "error" else "error"
            present.setdefault(name, set()).update(nested)
            filled.setdefault(name, set()).update(k for k, v in nested.items() if v is not None)
    return {
        kind: (len(present[kind]), len(filled[kind]), len(fields(CLASSES[kind]))) for kind in CLASSES if kind in present
    }


# ---------------------------------------------------------------- fields Stripe always returns (issue 20)


def required_fields() -> dict[str, Any]:
    """The committed extract of Stripe's TypeScript declarations (package and API version, fields per object)."""
    return dict(json.loads(STRIPE_REQUIRED_FIELDS.read_text()))


@dataclass(frozen=True)
class Change:
    """A breaking change of Stripe's changelog that adds or removes always-present fields of one object.

    Before `version`, `added` did not exist yet and `before` (removed or no longer included since) was always
    present."""

    version: str
    kind: str
    added: frozenset[str] = frozenset()
    before: frozenset[str] = frozenset()


VERSION_CHANGES = (
    # 2022-11-15: "a Charge no longer includes `refunds` unless expanded"; PaymentIntent `charges` -> `latest_charge`.
    Change(emulator_versions.CHARGE_REFUNDS_COLLAPSED, "charge", before=frozenset({"refunds"})),
    Change(
        emulator_versions.CHARGE_REFUNDS_COLLAPSED,
        "payment_intent",
        added=frozenset({"latest_charge"}),
        before=frozenset({"charges"}),
    ),
    # 2025-02-24.acacia: Checkout Session gains `collected_information`.
    Change(
        emulator_versions.SESSION_COLLECTED_INFORMATION, "checkout.session", added=frozenset({"collected_information"})
    ),
    # 2025-09-30.clover: a Promotion Code's top-level `coupon` moves to `promotion.coupon`.
    Change(
        emulator_versions.PROMOTION_CODE_PROMOTION,
        "promotion_code",
        added=frozenset({"promotion"}),
        before=frozenset({"coupon"}),
    ),
    # 2025-03-31.basil: the Session's top-level `shipping_details` is removed.
    Change(
        emulator_versions.SESSION_SHIPPING_DETAILS_REMOVED, "checkout.session", before=frozenset({"shipping_details"})
    ),
)

# Fields Stripe declares `name?: T` that it sends when a condition holds rather than when expanded.
APPLICABLE: dict[str, dict[str, Any]] = {
    # Session.branding_settings: the branding the create call set (`branding_settings` param), echoed only then.
    "checkout.session": {"branding_settings": lambda obj: obj.get("branding_settings") is not None},
    # ShippingRate.fixed_amount: "Describes a fixed amount to charge for shipping" (type `fixed_amount`).
    "shipping_rate": {"fixed_amount": lambda obj: obj.get("type") == "fixed_amount"},
    # Invoice.hosted_invoice_url / invoice_pdf: "This will be `null` until the invoice has been finalized".
    "invoice": {
        "hosted_invoice_url": lambda obj: obj.get("status") != "draft",
        "invoice_pdf": lambda obj: obj.get("status") != "draft",
    },
    # Refund.failure_reason / failure_balance_transaction: "if the refund fails".
    # Dispute.payment_method_details: "Details about the payment method" of a card dispute; always set here.
    "dispute": {"payment_method_details": lambda obj: obj.get("payment_method_details") is not None},
    # EarlyFraudWarning.payment_intent: set when the charge was made by a PaymentIntent (always, via Checkout).
    "radar.early_fraud_warning": {"payment_intent": lambda obj: obj.get("payment_intent") is not None},
    "refund": {
        "failure_reason": lambda obj: obj.get("status") == "failed",
        "failure_balance_transaction": lambda obj: obj.get("status") == "failed",
    },
}


def object_kind(obj: dict[str, Any]) -> str:
    """The key of `obj` in the data file (a deleted webhook endpoint has its own declaration)."""
    kind = str(obj.get("object"))
    return (
        f"{kind} (deleted)"
        if obj.get("deleted") is True and f"{kind} (deleted)" in required_fields()["objects"]
        else kind
    )


def expected_fields(kind: str, version: str) -> tuple[set[str], set[str]]:
    """(always present, only when expanded or applicable) for `kind` rendered at `version`."""
    declared = required_fields()["objects"][kind]["fields"]
    always = {name for name, field in declared.items() if field["required"]}
    sometimes = {name for name, field in declared.items() if not field["required"]}
    for change in VERSION_CHANGES:
        if change.kind == kind and not emulator_versions.at_least(version, change.version):
            always = (always - change.added) | change.before
            sometimes -= change.before
    return always, sometimes


def _nested(read: Read) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every Stripe object in a read (itself, expanded fields, list data, event data.object, line item prices)
    with the expansions that apply to it (`expand[]=refunds` applies to the charge, not to the objects in it)."""
    known = required_fields()["objects"]
    stack: list[tuple[Any, frozenset[str]]] = [(read.obj, read.expand)]
    while stack:
        value, expand = stack.pop()
        if isinstance(value, list):
            stack += [(item, frozenset()) for item in value]
        elif isinstance(value, dict):
            if object_kind(value) in known:
                yield value, expand
            for key, child in value.items():
                if isinstance(child, dict | list):
                    stack.append((child, frozenset(e.partition(".")[2] for e in expand if e.startswith(key + "."))))


def nested_missing(kind: str, obj: dict[str, Any]) -> list[str]:
    """`field.sub` for each always-present field of a nested object Stripe declares (`charge.billing_details`,
    `checkout.session.customer_details`, ...) that `obj` fills but without that sub-field (one level deep)."""
    data = required_fields()
    found = []
    for name, field in data["objects"][kind]["fields"].items():
        value = obj.get(name)
        if "interface" in field and isinstance(value, dict) and value.get("object") is None:
            declared = data["interfaces"][field["interface"]]
            found += [f"{name}.{sub}" for sub, f in declared.items() if f["required"] and sub not in value]
    return sorted(found)


def required_problems(read: Read) -> list[str]:
    """Always-present fields missing, and includable fields sent unasked, in one read."""
    problems: list[str] = []
    for obj, expand in _nested(read):
        kind = object_kind(obj)
        always, sometimes = expected_fields(kind, read.version)
        where = f"{kind} {obj.get('id', '')}@{read.version}"
        absent = sorted(always - set(obj)) + nested_missing(kind, obj)
        problems += [f"{where}: {name} is always present at Stripe but missing" for name in absent]
        for name in sorted(sometimes & set(obj)):
            condition = APPLICABLE.get(kind, {}).get(name)
            if name not in expand and not (condition and condition(obj)):
                problems.append(f"{where}: {name} is sent only when expanded or applicable, but was sent unasked")
    return problems


def required_table(reads: list[Read]) -> dict[tuple[str, str], tuple[int, int, list[str], list[str]]]:
    """Per (object, version): (always present in Stripe's list, filled by us, missing, sent unasked)."""
    missing: dict[tuple[str, str], set[str]] = {}
    unasked: dict[tuple[str, str], set[str]] = {}
    for read in reads:
        for obj, expand in _nested(read):
            kind = object_kind(obj)
            always, sometimes = expected_fields(kind, read.version)
            key = (kind, read.version)
            missing.setdefault(key, set()).update(always - set(obj), nested_missing(kind, obj))
            condition = APPLICABLE.get(kind, {})
            unasked.setdefault(key, set()).update(
                name
                for name in sometimes & set(obj)
                if name not in expand and not (name in condition and condition[name](obj))
            )
    table = {}
    for (kind, version), absent in missing.items():
        always, _ = expected_fields(kind, version)
        # Counts are of top-level fields; a nested gap ("billing_details.tax_id") is listed, not counted.
        table[(kind, version)] = (len(always), len(always - absent), sorted(absent), sorted(unasked[(kind, version)]))
    return dict(sorted(table.items()))


def print_required_table(reads: list[Read]) -> None:
    """The always-present table, one row per object and API version."""
    data = required_fields()
    print(
        f"Fields Stripe always returns (stripe npm {data['package_version']}, API {data['api_version']}), "
        "per object and the version it was rendered in:"
    )
    print(f"{'object':<27} {'version':<19} {'in list':>7} {'filled':>6}  missing / sent unasked")
    for (kind, version), (total, filled, absent, unasked) in required_table(reads).items():
        extra = (" missing: " + ", ".join(absent) if absent else "") + (
            " unasked: " + ", ".join(unasked) if unasked else ""
        )
        print(f"{kind:<27} {version:<19} {total:>7} {filled:>6} {extra}")


def main() -> None:
    """Print every problem (if any) and the coverage table."""
    reads: list[Read] = []
    samples = list(collect_samples(reads=reads))
    examples = fixtures()
    problems = [p for kind, obj in samples for p in check_object(obj, CLASSES[kind], kind)]
    problems += [
        p for kind, obj in samples if kind in examples for p in compare_fixture(obj, examples[kind], f"{kind}(example)")
    ]
    print(
        f"Contract of the local Stripe service at API {stripe.api_version} "
        f"(stripe-python {stripe.VERSION}): {len(samples)} objects checked, {len(problems)} problems"
    )
    for problem in problems:
        print("  PROBLEM", problem)
    print(f"{'object':<18} {'fields present':>15} {'non-null':>9} {'in SDK class':>13}")
    for kind, (shown, non_null, total) in coverage(samples).items():
        print(f"{kind:<18} {shown:>15} {non_null:>9} {total:>13}")
    print()
    print_required_table(reads)


if __name__ == "__main__":
    main()
