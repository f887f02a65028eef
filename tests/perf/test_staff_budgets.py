"""Staff pages stay constant in the number of orders: the dashboard and the orders list at 100 and 100,000.

Counts are pinned from measurement (see the numbers below); both sizes must give the same count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopapp.extensions import db as _db
from shopapp.models import MailKind, MailStatus, Order, OutboxMessage
from shopapp.models.base import utcnow
from shopapp.services import bulk_seed
from tests.conftest import PASSWORD

# user by session token; today + 7 days (2); counts per status, needing review, processing (3); revenue per
# day paid + refunded (2); latest orders (1); low stock (1); failed events (1); failed emails (1); refused
# webhook signatures in 24 h (1, issue 26); the latest audit run (1, issue 21: one row by its ran_at index);
# open disputes, soonest due first (1, issue 21).
DASHBOARD = 15
# user; the page of 50 orders with their shoppers (1). No count over all orders (issue 25: the one read that
# grew with the shop; the list pages with previous/next).
ORDERS_LIST = 2
ORDERS_SEARCH_BY_NUMBER = 2


@pytest.fixture
def staff_fetch(app: Any, make_user: Callable[..., Any]) -> Callable[..., Any]:
    """GET as a logged-in staff member, each request in its own app context."""
    user = make_user("owner@example.com", staff=True)
    browser: FlaskClient = app.test_client()
    assert browser.post("/account/login", data={"email": user.email, "password": PASSWORD}).status_code in (302, 303)
    browser.get("/")  # shows (and so clears) the "logged in" message

    def get(path: str) -> Any:
        _db.session.commit()
        return browser.get(path)

    return get


def add_failed_emails(every: int) -> int:
    """A refused receipt (outbox status failed) for every `every`-th order, as the mail server's 550 leaves
    them: the dashboard lists the newest; their number grows with the orders. Returns how many."""
    now = utcnow()
    orders = _db.session.execute(_db.select(Order.id, Order.user_id).where(Order.id % every == 0)).all()
    _db.session.execute(
        _db.insert(OutboxMessage),
        [{"dedupe_key": f"order-{order_id}-receipt", "kind": MailKind.ORDER_RECEIPT, "recipient": "x@example.com",
          "user_id": user_id, "order_id": order_id, "context": "{}", "status": MailStatus.FAILED, "attempts": 1,
          "next_attempt_at": now, "created_at": now, "last_error": "recipient refused: 550"}
         for order_id, user_id in orders],
    )  # fmt: skip
    _db.session.commit()
    return len(orders)


@pytest.mark.parametrize("order_count", [100, 100_000])
def test_dashboard_and_orders_list_are_flat_in_the_number_of_orders(staff_fetch, queries, order_count, capsys):
    result = bulk_seed.seed_bulk(order_count, shoppers=max(1, order_count // 50), password=PASSWORD)
    assert result.orders == order_count
    assert add_failed_emails(every=50) == order_count // 50
    timings = {}
    for path, budget in (("/admin/", DASHBOARD), ("/admin/orders/", ORDERS_LIST),
                         ("/admin/orders/?search=%2351", ORDERS_SEARCH_BY_NUMBER)):  # fmt: skip
        staff_fetch(path)  # warm: templates compiled, pools filled
        with queries.capture():
            started = time.perf_counter()
            response = staff_fetch(path)
            timings[path] = time.perf_counter() - started
        assert response.status_code == 200, path
        if path == "/admin/":
            assert response.get_data(as_text=True).count("recipient refused: 550") == min(10, order_count // 50)
        assert queries.count == budget, f"{path}\n{queries}"
        assert queries.writes == []
    with capsys.disabled():
        figures = ", ".join(f"{path} {seconds * 1000:.0f} ms" for path, seconds in timings.items())
        print(f"\n[staff pages at {order_count} orders] {figures}")
