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
def samples(older: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return list(contract.collect_samples(older))


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
