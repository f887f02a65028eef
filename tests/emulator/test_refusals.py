"""Issue 20, example 5: the local service refuses what Stripe refuses, with Stripe's status, error type and param.

Each case is a Checkout Session create the shop could send; each source is in docs/STRIPE_EMULATOR.md ("What it
refuses"). Before this, every one of them was a 200 and a session, so the shop's own checks went untested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator


def _line(unit_amount: int = 1999, quantity: int = 1, currency: str = "usd", name: str = "Mug") -> dict[str, Any]:
    return {
        "quantity": quantity,
        "price_data": {"currency": currency, "unit_amount": unit_amount, "product_data": {"name": name}},
    }


REFUSED = [
    # (id, overrides, Stripe's error code (None: the service names none), param); all are 400 invalid_request_error
    ("101 line items", {"line_items": [_line(100) for _ in range(101)]}, "parameter_invalid_array", "line_items"),
    (
        "9-digit unit_amount",
        {"line_items": [_line(100_000_000)]},
        "amount_too_large",
        "line_items[0][price_data][unit_amount]",
    ),
    ("9-digit total", {"line_items": [_line(60_000_000, quantity=2)]}, "amount_too_large", "line_items"),
    (
        "9-digit total over several lines",
        {"line_items": [_line(99_999_999), _line(1, name="Sticker")]},
        "amount_too_large",
        "line_items",
    ),
    (
        "currency xyz",
        {"line_items": [_line(currency="xyz")]},
        "parameter_invalid_string",
        "line_items[0][price_data][currency]",
    ),
    ("customer_email=not-an-email", {"customer_email": "not-an-email"}, "email_invalid", "customer_email"),
    ("metadata: 51 keys", {"metadata": {f"k{i}": "v" for i in range(51)}}, None, "metadata"),
    ("metadata: 41-character key", {"metadata": {"k" * 41: "v"}}, None, f"metadata[{'k' * 41}]"),
    ("metadata: 501-character value", {"metadata": {"order_id": "7" * 501}}, None, "metadata[order_id]"),
    ("client_reference_id of 201 characters", {"client_reference_id": "r" * 201}, None, "client_reference_id"),
]


@pytest.mark.parametrize(("case", "overrides", "code", "param"), REFUSED, ids=[c[0] for c in REFUSED])
def test_stripe_refuses_it_so_the_service_does(
    client: stripe.StripeClient,
    emu: Emulator,
    session_params: Callable[..., dict[str, Any]],
    case: str,
    overrides: dict[str, Any],
    code: str | None,
    param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(**overrides))
    error = raised.value
    assert error.http_status == 400
    assert error.error is not None and error.error.type == "invalid_request_error"
    assert error.param == param
    if code is not None:
        assert error.code == code
    assert emu.sessions == {}


@pytest.mark.parametrize(
    ("overrides", "total"),
    [
        ({"line_items": [_line(99_999_999)]}, 99_999_999),  # exactly 8 digits: Stripe's own example
        ({"line_items": [_line(100) for _ in range(100)]}, 10_000),
        ({"line_items": [_line(5000, currency="jpy")]}, 5000),
        ({"customer_email": "ann+shop@example.co.uk"}, 4498),
    ],
    ids=["8-digit total", "100 line items", "jpy", "plus-addressed email"],
)
def test_the_limits_themselves_are_accepted(
    client: stripe.StripeClient, session_params: Callable[..., dict[str, Any]], overrides: dict[str, Any], total: int
) -> None:
    assert client.v1.checkout.sessions.create(params=session_params(**overrides)).amount_total == total


def test_the_currency_error_lists_what_stripe_supports(
    client: stripe.StripeClient, session_params: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(line_items=[_line(currency="xyz")]))
    assert raised.value.user_message is not None
    assert raised.value.user_message.startswith(
        "Invalid currency: xyz. Stripe currently supports these currencies: usd"
    )


@pytest.mark.parametrize(("length", "refused"), [(255, False), (256, True)])
def test_an_idempotency_key_is_at_most_255_characters(
    client: stripe.StripeClient,
    emu: Emulator,
    session_params: Callable[..., dict[str, Any]],
    length: int,
    refused: bool,
) -> None:
    key = "k" * length
    create = lambda: client.v1.checkout.sessions.create(  # noqa: E731
        params=session_params(), options={"idempotency_key": key}
    )
    if not refused:
        assert create().id == create().id  # accepted, and replayed
        return
    with pytest.raises(stripe.IdempotencyError) as raised:
        create()
    assert raised.value.http_status == 400
    assert raised.value.error is not None and raised.value.error.type == "idempotency_error"
    assert "Idempotent Keys must be 1-255 characters long" in str(raised.value.user_message)
    assert emu.sessions == {} and emu.idempotency_keys() == []
