"""Scenario 11 (issue 17, finding 5): 300 success-page refreshes across 4 gunicorn workers make a bounded number
of Stripe calls, counted at the local Stripe service: at most one retrieve per order per interval, whichever
worker serves the view (the interval is claimed by compare-and-set in the database)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shopapp.services.checkout import SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS
from tests.concurrency.conftest import Setup
from tests.concurrency.harness import Shopper, Stack, record, start_stack, stop_stack

RETRIEVE = "GET /v1/checkout/sessions/{id}"
REFRESHES = 300


@pytest.fixture(scope="module")
def stack(database_url: str, workdir: Path) -> Iterator[Stack]:
    """The live stack with the per-shopper success-page limit out of the way (the interval is under test)."""
    running = start_stack(database_url, workdir, SUCCESS_PAGE_RATE_LIMIT="100000 per minute")
    yield running
    stop_stack(running)


def _retrieves(stack: Stack) -> int:
    return int(stack.stripe_get("call_counts").get(RETRIEVE, 0))


def test_scenario_11_300_refreshes_make_a_bounded_number_of_stripe_calls(stack: Stack, setup: Setup, kind: str) -> None:
    ((user_id, email),) = setup.users(1, "s11")
    order_id, session_id = setup.checkout(user_id, {setup.product(): 1})  # pending: never paid in this test
    shopper = Shopper(stack.base_url, email)
    shopper.login()
    before = _retrieves(stack)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: shopper.request("GET", f"/success/?session_id={session_id}").status_code, range(REFRESHES)
            )
        )
    elapsed = time.monotonic() - started
    calls = _retrieves(stack) - before
    # One claim per started interval at most (the database's clock decides, so a slow machine only widens it).
    bound = math.ceil(elapsed / SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS) + 1
    record(
        11,
        kind,
        {
            "refreshes": REFRESHES,
            "ok": statuses.count(200),
            "stripe_retrieves": calls,
            "interval_s": SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS,
            "bound": bound,
        },
    )
    assert statuses == [200] * REFRESHES
    assert 1 <= calls <= bound
    assert stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id) == "pending"
