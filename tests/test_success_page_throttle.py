"""The success page asks Stripe about a pending order at most once per interval, and each shopper's views are
rate limited (issue 17, finding 5). The multi-process count is tests/concurrency/test_success_page_stripe_calls.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from shopapp.models import Order, OrderStatus
from shopapp.models.base import utcnow
from shopapp.services import catalog
from shopapp.services.checkout import SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS
from tests.conftest import PASSWORD, fresh, order_for_session, session_id_from

RETRIEVE = "GET /v1/checkout/sessions/{id}"


def _interval_passes(db, session_id: str) -> None:
    """Move the order's last check back past the interval (instead of waiting for the clock)."""
    earlier = utcnow() - timedelta(seconds=SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS + 1)
    fresh().execute(update(Order).where(Order.stripe_session_id == session_id).values(stripe_checked_at=earlier))
    db.session.commit()


def test_refreshes_within_the_interval_make_one_stripe_call(client, shopper, buy, emulator, db):
    session_id = session_id_from(buy(A=1))
    for _ in range(10):
        assert client.get(f"/success/?session_id={session_id}").status_code == 200
    assert emulator.call_counts.get(RETRIEVE) == 1

    # Paid at Stripe, webhook not delivered: within the interval the page shows the last known state...
    emulator.pay(session_id)
    assert client.get(f"/success/?session_id={session_id}").status_code == 200
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert emulator.call_counts.get(RETRIEVE) == 1
    # ...and once the interval has passed, the next view asks again and settles the order.
    _interval_passes(db, session_id)
    assert "payment was received" in client.get(f"/success/?session_id={session_id}").get_data(as_text=True)
    assert emulator.call_counts.get(RETRIEVE) == 2
    assert order_for_session(session_id).status == OrderStatus.PAID
    # Final: no more calls, whatever the interval.
    _interval_passes(db, session_id)
    client.get(f"/success/?session_id={session_id}")
    assert emulator.call_counts.get(RETRIEVE) == 2


def test_each_shopper_has_a_success_page_rate_limit(app_factory, make_user):
    app = app_factory(RATELIMIT_ENABLED=True, SUCCESS_PAGE_RATE_LIMIT="3 per minute")
    catalog.seed_demo_products()
    make_user("ann@example.com")
    browser = app.test_client()
    browser.post("/account/login", data={"email": "ann@example.com", "password": PASSWORD})
    statuses = [browser.get("/success/?session_id=cs_test_unknown").status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]
