"""Scenarios 1, 2, 3 and 6: webhooks racing each other and the success page across 4 gunicorn workers."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session

from shopapp.gateway import get_gateway
from shopapp.models import CheckoutAttempt, Order, OrderItem, OrderStatus
from tests.concurrency.conftest import Setup
from tests.concurrency.harness import Shopper, Stack, record, released_together
from tests.support import wait_until


def _statuses(codes: list[int]) -> dict[str, int]:
    counts = Counter(codes)
    return {
        "2xx": sum(n for c, n in counts.items() if 200 <= c < 300),
        "4xx": sum(n for c, n in counts.items() if 400 <= c < 500),
        "5xx": sum(n for c, n in counts.items() if c >= 500),
    }


def test_scenario_1_fifty_simultaneous_deliveries_of_one_event(
    stack: Stack, setup: Setup, held: None, kind: str
) -> None:
    """50 copies of one signed checkout.session.completed, released together -> one PAID, one event row."""
    ((user_id, _),) = setup.users(1, "s1")
    order_id, session_id = setup.checkout(user_id, {setup.product(): 1})
    stack.stripe_post(f"sessions/{session_id}/pay")
    event = stack.event_for_session("checkout.session.completed", session_id)
    locked_before = stack.locked_errors()

    codes, seconds = released_together([lambda: stack.deliver(event)] * 50)

    statuses = _statuses(codes)
    figures = {
        "deliveries": 50,
        **statuses,
        "transitions": stack.paid_transitions(order_id),
        "paid_rows": stack.scalar("SELECT count(*) FROM orders WHERE id = :o AND status = 'paid'", o=order_id),
        "stored_events": stack.stored_events(event["id"]),
        "locked": stack.locked_errors() - locked_before,
        "seconds": round(seconds, 2),
    }
    record(1, kind, figures)
    assert statuses == {"2xx": 50, "4xx": 0, "5xx": 0}
    assert (figures["transitions"], figures["paid_rows"], figures["stored_events"], figures["locked"]) == (1, 1, 1, 0)


def test_scenario_2_success_page_races_twenty_deliveries(stack: Stack, setup: Setup, held: None, kind: str) -> None:
    """One success-page visit + 10 completed + 10 async_payment_succeeded at once -> one transition, stock once."""
    ((_, email),) = setup.users(1, "s2")
    product_id = setup.product(stock=10, name="Limited")
    shopper = Shopper(stack.base_url, email)
    shopper.login()
    bought = shopper.submit(shopper.buy_form({product_id: 2}))
    assert bought.status_code == 303, bought.text[:500]
    session_id = re.search(r"/pay/(cs_test_\w+)", bought.headers["Location"]).group(1)  # type: ignore[union-attr]
    order_id = stack.scalar("SELECT id FROM orders WHERE stripe_session_id = :s", s=session_id)
    # A delayed payment method: `completed` says unpaid, `async_payment_succeeded` says paid.
    stack.stripe_post(f"sessions/{session_id}/pay", delayed="succeed")
    stack.stripe_post(f"sessions/{session_id}/complete_async", succeed=True)
    completed = stack.event_for_session("checkout.session.completed", session_id)
    succeeded = stack.event_for_session("checkout.session.async_payment_succeeded", session_id)
    retrieves_before = stack.stripe_get("call_counts").get("GET /v1/checkout/sessions/{id}", 0)

    def visit() -> int:
        page = shopper.request("GET", f"/success/?session_id={session_id}")
        assert "Traceback" not in page.text
        return page.status_code

    jobs: list[Any] = [lambda: stack.deliver(completed)] * 10 + [lambda: stack.deliver(succeeded)] * 10 + [visit]
    codes, seconds = released_together(jobs)

    stock, reserved = stack.rows("SELECT stock, reserved FROM products WHERE id = :p", p=product_id)[0]
    figures = {
        "deliveries": 20,
        "page_visits": 1,
        **_statuses(codes),
        "transitions": stack.paid_transitions(order_id),
        "status": stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id),
        "stock_left": stock,
        "reserved": reserved,
        "stored_events": stack.stored_events(completed["id"]) + stack.stored_events(succeeded["id"]),
        "stripe_retrieves": stack.stripe_get("call_counts").get("GET /v1/checkout/sessions/{id}", 0) - retrieves_before,
        "seconds": round(seconds, 2),
    }
    record(2, kind, figures)
    assert figures["5xx"] == 0 and figures["4xx"] == 0
    assert (figures["transitions"], figures["status"]) == (1, "paid")
    # The side effect (stock taken for good) happened once: 10 - 2 left, nothing still reserved.
    assert (stock, reserved) == (8, 0)
    assert figures["stored_events"] == 2
    assert figures["stripe_retrieves"] <= 1


def test_scenario_6_webhook_before_the_order_row_is_committed(stack: Stack, setup: Setup, kind: str) -> None:
    """The event names an order whose row is not committed yet -> 5xx, then the service's retry succeeds.

    On PostgreSQL the row is INSERTed in a transaction held open while the service delivers. On SQLite an
    open write transaction would make the webhook wait (busy timeout) instead of miss the row, so the row is
    inserted only after the first delivery; to another connection that is the same thing: no row yet.
    """
    ((user_id, _),) = setup.users(1, "s6")
    order_id = 900_000 + random.randrange(90_000)
    params = {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "usd", "unit_amount": 2500, "product_data": {"name": "Early"}}, "quantity": 1}
        ],
        "success_url": "http://127.0.0.1/success/?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1/",
        "client_reference_id": str(order_id),
        "metadata": {"order_id": str(order_id), "attempt": "1"},
    }
    key = f"order-{order_id}-attempt-1-{random.randrange(10**9)}"
    params["metadata"]["attempt_key"] = key
    created = setup.gateway_call(lambda: get_gateway().create_checkout_session(params, key))
    writer = Session(stack.engine)
    row = Order(
        id=order_id,
        user_id=user_id,
        status=OrderStatus.PENDING,
        total_cents=2500,
        currency="usd",
        cart_key="early",
        stripe_session_id=created["id"],
        checkout_attempt=1,
        # An order always has its items (services/orders.py build_order): the amount check holds Stripe's
        # subtotal to them (issue 23).
        items=[OrderItem(product_id=setup.product(), product_name="Early", unit_price_cents=2500, quantity=1)],
    )
    # The session is the shop's own: its attempt is recorded with the order (as services/checkout.py does).
    attempt = CheckoutAttempt(order_id=order_id, number=1, idempotency_key=key, stripe_session_id=created["id"])
    try:
        if stack.kind == "postgresql":
            writer.add_all([row, attempt])
            writer.flush()  # INSERT sent, transaction left open
        stack.stripe_post(f"sessions/{created['id']}/pay")  # the service delivers `completed` on its own
        event = stack.event_for_session("checkout.session.completed", created["id"])
        first = wait_until(lambda: stack.attempts(event["id"]), "the first delivery")[0]
        if stack.kind != "postgresql":
            writer.add_all([row, attempt])
        writer.commit()
    finally:
        writer.close()
    attempts = wait_until(
        lambda: (a := stack.attempts(event["id"])) and 200 <= (a[-1]["status"] or 0) < 300 and a,
        "a successful redelivery",
    )
    figures = {
        "first_status": first["status"],
        "attempts_until_2xx": len(attempts),
        "final_status": attempts[-1]["status"],
        "transitions": stack.paid_transitions(order_id),
        "status": stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id),
        "stored_events": stack.stored_events(event["id"]),
    }
    record(6, kind, figures)
    assert first["status"] == 409  # "not yet": Stripe redelivers any non-2xx
    assert (figures["transitions"], figures["status"], figures["stored_events"]) == (1, "paid", 1)


def test_scenario_3_two_hundred_orders_each_event_three_times_shuffled(
    stack: Stack, setup: Setup, held: None, kind: str
) -> None:
    """200 paid orders; 600 deliveries (each event 3x) in shuffled order, 16 at a time -> exactly 200 transitions."""
    product_id = setup.product()
    users = setup.users(200, "s3")
    orders = dict(setup.checkout(uid, {product_id: 1}) for uid, _ in users)  # order id -> session id
    for session_id in orders.values():
        stack.stripe_post(f"sessions/{session_id}/pay")
    events = stack.stripe_get("events", type="checkout.session.completed")["data"]
    by_session = {e["data"]["object"]["id"]: e for e in events}
    deliveries = [by_session[s] for s in orders.values()] * 3
    random.shuffle(deliveries)
    locked_before = stack.locked_errors()

    with ThreadPoolExecutor(max_workers=16) as pool:
        started = time.perf_counter()
        codes = list(pool.map(stack.deliver, deliveries))
        seconds = time.perf_counter() - started

    ids = tuple(orders)
    per_order = dict(
        stack.rows(
            "SELECT o.id, (SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'paid') "
            "FROM orders o WHERE o.id IN (" + ",".join(map(str, ids)) + ")"
        )
    )
    statuses = _statuses(codes)
    figures = {
        "orders": len(orders),
        "deliveries": len(deliveries),
        **statuses,
        "transitions": sum(per_order.values()),
        "lost": sum(1 for n in per_order.values() if n == 0),
        "doubled": sum(1 for n in per_order.values() if n > 1),
        "paid_rows": stack.scalar(
            "SELECT count(*) FROM orders WHERE status = 'paid' AND id IN (" + ",".join(map(str, ids)) + ")"
        ),
        "stored_events": sum(stack.stored_events(by_session[s]["id"]) for s in orders.values()),
        "locked": stack.locked_errors() - locked_before,
        "seconds": round(seconds, 2),
        "events_per_second": round(len(deliveries) / seconds, 1),
    }
    record(3, kind, figures)
    assert statuses == {"2xx": 600, "4xx": 0, "5xx": 0}
    assert (figures["transitions"], figures["lost"], figures["doubled"], figures["paid_rows"]) == (200, 0, 0, 200)
    assert figures["stored_events"] == 200 and figures["locked"] == 0
