"""Scenarios 4 and 8: Buy submits racing each other, and Stripe failing while a session is created."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import requests

from tests.concurrency.conftest import Setup
from tests.concurrency.harness import Shopper, Stack, record, released_together

CREATE = "POST /v1/checkout/sessions"


def _creates(stack: Stack) -> int:
    return int(stack.stripe_get("call_counts").get(CREATE, 0))


def _keys_for(stack: Stack, order_id: int) -> list[str]:
    return [k["key"] for k in stack.stripe_get("idempotency_keys")["data"] if k["key"].startswith(f"order-{order_id}-")]


def _orders_of(stack: Stack, email: str) -> list[Any]:
    return stack.rows(
        "SELECT o.id, o.status, o.checkout_attempt FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = :e",
        e=email,
    )


def _no_traceback(response: requests.Response) -> None:
    assert response.status_code != 500 and "Traceback" not in response.text, response.text[:1000]


def test_scenario_4_twenty_simultaneous_buy_submits(stack: Stack, setup: Setup, kind: str) -> None:
    """One shopper submits the same cart 20 times at once -> 1 order and 1 Checkout Session at the service."""
    ((_, email),) = setup.users(1, "s4")
    product_id = setup.product(stock=50, name="Popular")
    shopper = Shopper(stack.base_url, email)
    shopper.login()
    form = shopper.buy_form({product_id: 3})
    creates_before = _creates(stack)

    responses, seconds = released_together([lambda: shopper.submit(form)] * 20)

    for response in responses:
        _no_traceback(response)
    codes = Counter(r.status_code for r in responses)
    locations = {r.headers["Location"] for r in responses if r.status_code == 303}
    orders = _orders_of(stack, email)
    assert len(orders) == 1, orders
    order_id = orders[0][0]
    sessions = stack.sessions_for_order(order_id)
    stock, reserved = stack.rows("SELECT stock, reserved FROM products WHERE id = :p", p=product_id)[0]
    figures = {
        "submits": 20,
        "303": codes[303],
        "other": sum(n for c, n in codes.items() if c != 303),
        "orders": len(orders),
        "sessions_at_stripe": len(sessions),
        "hosted_urls": len(locations),
        "create_calls": _creates(stack) - creates_before,
        "idempotency_keys": len(_keys_for(stack, order_id)),
        "reserved": reserved,
        "seconds": round(seconds, 2),
    }
    record(4, kind, figures)
    assert codes[303] == 20 and len(locations) == 1
    assert (figures["orders"], figures["sessions_at_stripe"], figures["idempotency_keys"]) == (1, 1, 1)
    assert (stock, reserved) == (47, 3)  # reserved once, for the one order


def _fault(stack: Stack, **fault: Any) -> None:
    stack.stripe_post("faults", endpoint=CREATE, **fault)


def test_scenario_8_stripe_faults_at_session_creation(stack: Stack, setup: Setup, kind: str) -> None:
    """Timeout then success, 5xx three times, 409: one session and one idempotency key per order attempt.

    The shop's client retries twice (STRIPE_MAX_NETWORK_RETRIES=2) with the same key and times out after
    STRIPE_TIMEOUT_SECONDS=2. The timeout is injected *after* the service created the session (the reply is
    lost), so only the idempotency key stops a second session.
    """
    product_id = setup.product(name="Faulty")
    cases: dict[str, dict[str, Any]] = {}
    for name, faults in (
        ("timeout_then_success", [{"status": "timeout", "times": 1, "process": True}]),
        ("5xx_three_times", [{"status": 500, "times": 3}]),
        ("409", [{"status": 409, "times": 1}]),
    ):
        ((_, email),) = setup.users(1, f"s8-{name}")
        shopper = Shopper(stack.base_url, email)
        shopper.login()
        creates_before = _creates(stack)
        for fault in faults:
            _fault(stack, **fault)
        answers = []
        for _ in range(3):  # the shopper presses Buy again after an error page, at most twice
            response = shopper.submit(shopper.buy_form({product_id: 1}))
            _no_traceback(response)
            if response.status_code == 303 and "/pay/" in response.headers["Location"]:
                answers.append("303")
                break
            # Refused: 303 back to the shop page, which says why (issue 15).
            assert response.status_code == 303, response.text[:500]
            answers.append("back")
            page = shopper.request("GET", "/")
            assert "Nothing was charged" in page.text, page.text[:500]
        orders = _orders_of(stack, email)
        assert len(orders) == 1, orders
        order_id, _status, attempt = orders[0]
        cases[name] = {
            "answers": "/".join(map(str, answers)),
            "create_calls": _creates(stack) - creates_before,
            "orders": len(orders),
            "sessions_at_stripe": len(stack.sessions_for_order(order_id)),
            "attempts": attempt,
            "keys": sorted(_keys_for(stack, order_id)),
            "session_stored": bool(
                stack.scalar("SELECT stripe_session_id IS NOT NULL FROM orders WHERE id = :o", o=order_id)
            ),
        }
        assert re.fullmatch(r"(back/)*303", cases[name]["answers"]), cases[name]
    figures = {name: {k: v for k, v in case.items() if k != "keys"} for name, case in cases.items()}
    record(
        8,
        kind,
        {
            name: f"{c['answers']} calls={c['create_calls']} sessions={c['sessions_at_stripe']} "
            f"keys={len(cases[name]['keys'])}"
            for name, c in figures.items()
        },
    )
    for name, case in cases.items():
        assert case["sessions_at_stripe"] == 1, (name, case)
        assert case["attempts"] == 1 and len(case["keys"]) == 1 and "-attempt-1-" in case["keys"][0], (name, case)
        assert case["session_stored"], (name, case)
    assert cases["timeout_then_success"]["create_calls"] == 2
    assert cases["5xx_three_times"]["answers"] == "back/303" and cases["5xx_three_times"]["create_calls"] == 4
    assert cases["409"]["create_calls"] == 2
