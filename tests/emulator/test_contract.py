"""Everything the local Stripe service returns or sends, checked against the official SDK's generated classes
(for the version the SDK pins) and Stripe's published example objects. See tests/emulator/contract.py."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.emulator import contract


@pytest.fixture(scope="module")
def older() -> dict[str, list[dict[str, Any]]]:
    return {}


@pytest.fixture(scope="module")
def reads() -> list[contract.Read]:
    return []


@pytest.fixture(scope="module")
def samples(older: dict[str, list[dict[str, Any]]], reads: list[contract.Read]) -> list[tuple[str, dict[str, Any]]]:
    return list(contract.collect_samples(older, reads))


def test_every_kind_of_object_is_sampled(samples: list[tuple[str, dict[str, Any]]]) -> None:
    assert {kind for kind, _ in samples} == set(contract.CLASSES)
    types = {obj["type"] for kind, obj in samples if kind == "event"}
    assert {
        "checkout.session.completed",
        "checkout.session.expired",
        "payment_intent.payment_failed",
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
        "radar.early_fraud_warning.created",
        "radar.early_fraud_warning.updated",
    } <= types


def test_objects_match_the_sdk_classes_of_the_pinned_version(samples: list[tuple[str, dict[str, Any]]]) -> None:
    problems = [p for kind, obj in samples for p in contract.check_object(obj, contract.CLASSES[kind], kind)]
    assert problems == []


def test_objects_match_stripes_example_objects(
    samples: list[tuple[str, dict[str, Any]]], older: dict[str, list[dict[str, Any]]]
) -> None:
    examples = contract.fixtures()
    problems = [
        p for kind, obj in samples if kind in examples for p in contract.compare_fixture(obj, examples[kind], kind)
    ]
    # Events rendered at older versions: same shapes as the examples for every field they fill.
    assert set(older) == set(contract.OLDER_VERSIONS)
    for version, events in older.items():
        for event in events:
            problems += contract.compare_fixture(event, examples["event"], f"event@{version}")
            inner = event["data"]["object"]
            if inner["object"] in examples:
                problems += contract.compare_fixture(inner, examples[inner["object"]], f"{event['type']}@{version}")
    assert problems == []


def test_coverage_table(samples: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]) -> None:
    table = contract.coverage(samples)
    with capsys.disabled():
        print(f"\ncontract coverage at {stripe.api_version}: object, fields present, non-null, in SDK class")
        for kind, (present, non_null, total) in table.items():
            print(f"  {kind:<18} {present:>3} {non_null:>3} {total:>3}")
    assert all(0 < present <= total for present, _, total in table.values())


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (
            {"id": "re_1", "object": "refund", "amount": 1, "created": 1, "currency": "usd", "colour": "red"},
            "refund.colour: not a field of Refund",
        ),
        (
            {"id": "re_1", "object": "refund", "created": 1, "currency": "usd"},
            "refund.amount: required by Refund but missing",
        ),
        (
            {"id": "re_1", "object": "refund", "amount": "1", "created": 1, "currency": "usd"},
            "refund.amount: expected int",
        ),
        # Refund.status is typed Optional[str]; its values are named only in the class's docstring.
        (
            {"id": "re_1", "object": "refund", "amount": 1, "created": 1, "currency": "usd", "status": "done"},
            "refund.status: 'done' is not one of the values documented in Refund "
            "['pending', 'requires_action', 'succeeded', 'failed', 'canceled']",
        ),
    ],
)
def test_the_checker_catches_what_it_should(obj: dict[str, Any], problem: str) -> None:
    assert problem in contract.check_object(obj, stripe.Refund, "refund")


def test_the_checker_holds_enums_to_the_literals_and_checks_nested_classes() -> None:
    session = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "automatic_tax": {"enabled": False},
        "created": 1,
        "custom_fields": [],
        "custom_text": {},
        "expires_at": 1,
        "livemode": False,
        "mode": "payment",
        "payment_method_types": ["card"],
        "payment_status": "almost_paid",
        "shipping_options": [],
    }
    problems = contract.check_object(session, stripe.checkout.Session, "s")
    assert any(p.startswith("s.payment_status: 'almost_paid' is not one of") for p in problems)
    nested = contract.check_object(
        {**session, "payment_status": "paid", "automatic_tax": {"enabled": "no"}}, stripe.checkout.Session, "s"
    )
    assert "s.automatic_tax.enabled: expected bool" in nested
    assert contract.compare_fixture(
        {"id": "refund_1234567890", "object": "refund"}, {"id": "re_1Pgc72B7WZ01zgkWqPvrRrPE", "object": "refund"}, "r"
    ) == ["r.id: id 'refund_1234567890' lacks Stripe's prefix 're_'"]


# ---------------------------------------------------------------- fields Stripe always returns (issue 20)


def test_the_data_file_is_for_the_sdks_api_version() -> None:
    data = contract.required_fields()
    assert data["api_version"] == stripe.api_version and data["package_version"]
    session = data["objects"]["checkout.session"]["fields"]
    assert sum(field["required"] for field in session.values()) == 59
    assert (
        session["line_items"]["required"] is False
        and data["objects"]["charge"]["fields"]["refunds"]["required"] is False
    )
    assert session["customer"] == {"required": True, "nullable": True}


def test_every_object_and_version_is_read(
    samples: list[tuple[str, dict[str, Any]]], reads: list[contract.Read]
) -> None:
    table = contract.required_table(reads)
    versions = {*contract.OLDER_VERSIONS, stripe.api_version}
    for kind in (
        "checkout.session",
        "item",
        "price",
        "payment_intent",
        "charge",
        "refund",
        "dispute",
        "radar.early_fraud_warning",
        "balance_transaction",
        "event",
        "list",
    ):
        assert {version for k, version in table if k == kind} == versions, kind
    assert {"webhook_endpoint", "webhook_endpoint (deleted)"} <= {kind for kind, _ in table}


def test_every_always_present_field_is_sent_and_includable_ones_only_when_asked(
    samples: list[tuple[str, dict[str, Any]]], reads: list[contract.Read], capsys: pytest.CaptureFixture[str]
) -> None:
    problems = [p for read in reads for p in contract.required_problems(read)]
    with capsys.disabled():
        print()
        contract.print_required_table(reads)
    assert problems == []
    # Includable fields do appear when asked: the checks above are not passing because nothing is ever sent.
    expanded = {(contract.object_kind(r.obj), name) for r in reads for name in r.expand if name in r.obj}
    assert {("checkout.session", "line_items"), ("charge", "refunds"), ("webhook_endpoint", "secret")} <= expanded


def _charge(**extra: Any) -> dict[str, Any]:
    fields = contract.required_fields()["objects"]["charge"]["fields"]
    charge: dict[str, Any] = {name: None for name, field in fields.items() if field["required"]}
    return {**charge, "id": "ch_1", "object": "charge", **extra}


def test_the_checker_tells_always_present_from_includable() -> None:
    refunds = {"object": "list", "data": [], "has_more": False, "url": "/v1/charges/ch_1/refunds"}
    pin = stripe.api_version
    # The old bug: a charge that lists its refunds unasked, at a version where Stripe no longer includes them.
    assert contract.required_problems(contract.Read(_charge(refunds=refunds), pin)) == [
        f"charge ch_1@{pin}: refunds is sent only when expanded or applicable, but was sent unasked"
    ]
    assert contract.required_problems(contract.Read(_charge(refunds=refunds), pin, frozenset({"refunds"}))) == []
    # Before 2022-11-15 Stripe included them, so they must be there.
    assert contract.required_problems(contract.Read(_charge(refunds=refunds), "2022-08-01")) == []
    assert contract.required_problems(contract.Read(_charge(), "2022-08-01")) == [
        "charge ch_1@2022-08-01: refunds is always present at Stripe but missing"
    ]
    # An always-present field may be null but not absent.
    missing = _charge()
    del missing["outcome"]
    assert contract.required_problems(contract.Read(missing, pin)) == [
        f"charge ch_1@{pin}: outcome is always present at Stripe but missing"
    ]
    # One level down too: an always-present field of a nested object Stripe declares.
    billed = _charge(billing_details={"address": None, "email": None, "name": None, "phone": None})
    assert contract.required_problems(contract.Read(billed, pin)) == [
        f"charge ch_1@{pin}: billing_details.tax_id is always present at Stripe but missing"
    ]
    # A refund's failure fields are "applicable" only once it failed.
    refund_fields = contract.required_fields()["objects"]["refund"]["fields"]
    refund = {name: None for name, field in refund_fields.items() if field["required"]}
    refund.update(id="re_1", object="refund", status="succeeded", failure_reason="expired_or_canceled_card")
    assert contract.required_problems(contract.Read(refund, pin)) == [
        f"refund re_1@{pin}: failure_reason is sent only when expanded or applicable, but was sent unasked"
    ]
    assert contract.required_problems(contract.Read({**refund, "status": "failed"}, pin)) == []
