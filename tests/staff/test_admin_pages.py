"""Staff pages: order detail and refund form, orders list filters/search/CSV export, event log, dashboard."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import update

from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, PaymentEvent
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services.tx import write_transaction
from tests.conftest import fresh
from tests.staff.conftest import endpoint_down, fresh_order, refunds_of, stripe_refunds


def _flag(order_id: int, reason: str) -> None:
    with write_transaction() as session:
        order = session.get(Order, order_id)
        order_rules.flag_for_review(session, order, reason, actor="test")


def test_order_detail_shows_items_totals_ids_timeline_and_flag(staff_client, paid_order, emulator):
    order = paid_order(A=2, C=1)
    _flag(order.id, "amount 100 != order total 7997")
    page = staff_client.get(f"/admin/orders/details/?id={order.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for expected in (
        "Product A",
        "Product C",
        "$19.99",
        "$39.98",
        "$79.97",
        order.stripe_session_id,
        order.stripe_payment_intent_id,
        "shopper@example.com",
        "Needs review:",
        "amount 100 != order total 7997",
        "checkout.session.completed",  # the Stripe event, with its outcome
        "pending → paid",  # the status change and who made it
        "webhook evt_",
        "Order placed",
    ):
        assert expected in html, expected
    assert 'name="sequence" type="hidden" value="1"' in html
    assert 'value="79.97"' not in html  # the refund form starts empty (a full refund asks to confirm)


def test_refund_through_the_order_page(staff_client, staff_post, paid_order, emulator):
    order = paid_order()
    form = {"amount": "20.00", "reason": "Late delivery", "sequence": "1"}
    asked = staff_post(f"/admin/orders/{order.id}/refund/", data=form)  # every refund asks first (issue 22)
    assert asked.status_code == 200 and "Refund part of order" in asked.get_data(as_text=True)
    response = staff_post(f"/admin/orders/{order.id}/refund/", data={**form, "confirm": "yes"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/orders/details/?id={order.id}")
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Refund of $20.00 sent to Stripe" in page
    assert fresh_order(order.id).status == OrderStatus.PAID  # not on the click
    emulator.deliver_pending()
    refunded = fresh_order(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 2000)
    [row] = refunds_of(order.id)
    assert (row.requested_by, row.reason, row.status) == ("staff ann@example.com", "Late delivery", "succeeded")
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "Partially refunded" in page and "$59.97" in page and 'value="2"' in page


def test_double_click_on_refund_makes_one_refund_at_stripe(staff_client, staff_post, paid_order, emulator):
    order = paid_order()
    form = {"amount": "79.97", "reason": "Customer asked", "sequence": "1", "confirm": "yes"}
    first = staff_post(f"/admin/orders/{order.id}/refund/", data=form)
    second = staff_post(f"/admin/orders/{order.id}/refund/", data=form)
    assert first.status_code == second.status_code == 303
    assert "already sent to Stripe" in staff_client.get(second.headers["Location"]).get_data(as_text=True)
    assert len(stripe_refunds(emulator, order.stripe_payment_intent_id)) == 1
    assert len(refunds_of(order.id)) == 1
    emulator.deliver_pending()
    assert fresh_order(order.id).status == OrderStatus.REFUNDED


def test_refund_form_errors_are_4xx_and_change_nothing(staff_client, staff_post, paid_order, emulator):
    order = paid_order()
    cases = [
        ({"amount": "80.00", "reason": "x", "sequence": "1"}, 400, "At most $79.97 can be refunded"),
        ({"amount": "", "reason": "x", "sequence": "1"}, 400, "Enter an amount."),
        ({"amount": "abc", "reason": "x", "sequence": "1"}, 400, "Not a valid decimal value"),
        ({"amount": "5.001", "reason": "x", "sequence": "1"}, 400, "USD amounts have at most 2 decimal places."),
        ({"amount": "5", "reason": "", "sequence": "1"}, 400, "Give a reason."),
        ({"amount": "5", "reason": "r" * 501, "sequence": "1"}, 400, "500"),
        ({"amount": "5", "reason": "x", "sequence": "7"}, 409, "out of date"),
        ({"amount": "5", "reason": "x"}, 400, "out of date"),
    ]
    for data, status, message in cases:
        response = staff_post(f"/admin/orders/{order.id}/refund/", data=data)
        assert response.status_code == status, (data, response.status_code)
        assert message in response.get_data(as_text=True), data
    assert staff_post("/admin/orders/999/refund/", data=cases[0][0]).status_code == 404
    # Admin forms check their CSRF token even where the site-wide check is off (as in these tests).
    no_token = staff_client.post(
        f"/admin/orders/{order.id}/refund/", data={"amount": "5", "reason": "x", "sequence": "1"}
    )
    assert no_token.status_code == 400
    assert "This form expired or was not sent from this page" in no_token.get_data(as_text=True)
    assert refunds_of(order.id) == []
    assert stripe_refunds(emulator, order.stripe_payment_intent_id) == []
    assert staff_client.get("/admin/orders/details/?id=999").status_code == 404
    assert staff_client.get("/admin/orders/details/?id=abc").status_code == 404


def _orders_fixture(paid_order, place_order):
    """Three orders: paid (flagged), paid two days ago, and pending."""
    flagged = paid_order(A=1)
    _flag(flagged.id, "currency eur != order currency usd")
    older = paid_order(B=1)
    two_days_ago = utcnow() - timedelta(days=2)
    db.session.execute(update(Order).where(Order.id == older.id).values(created_at=two_days_ago, paid_at=two_days_ago))
    db.session.commit()
    pending = place_order(C=3)
    return flagged, older, pending


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_orders_list_filters_and_search(staff_client, paid_order, place_order):
    flagged, older, pending = _orders_fixture(paid_order, place_order)

    def ids(query: str) -> set[int]:
        rows = _csv(staff_client.get(f"/admin/orders/export/csv/?{query}", buffered=True))
        return {int(r["order"]) for r in rows}

    assert staff_client.get("/admin/orders/?flt0_status_equals=pending").status_code == 200
    assert ids("") == {flagged.id, older.id, pending.id}
    assert ids("flt0_status_equals=paid") == {flagged.id, older.id}
    assert ids("flt0_status_equals=pending") == {pending.id}
    assert ids("flt0_needs_review_equals=1") == {flagged.id}
    since = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    until = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert ids(f"flt0_created_between={since}+to+{until}") == {flagged.id, pending.id}
    assert ids(f"flt0_created_smaller_than={since}") == {older.id}
    assert ids(f"search={flagged.stripe_session_id}") == {flagged.id}
    assert ids(f"search={older.stripe_payment_intent_id}") == {older.id}
    assert ids("search=shopper@example.com") == {flagged.id, older.id, pending.id}
    assert ids("search=nobody@example.com") == set()


def test_csv_export_content_of_the_filtered_list(staff_client, paid_order, place_order):
    flagged, _, _ = _orders_fixture(paid_order, place_order)
    response = staff_client.get(
        "/admin/orders/export/csv/?flt0_status_equals=paid&flt1_needs_review_equals=1", buffered=True
    )
    assert "attachment" in response.headers["Content-Disposition"]
    assert "orders.csv" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert len(rows) == 1  # one line item
    [row] = rows
    expected = {
        "order": str(flagged.id),
        "shopper_email": "shopper@example.com",
        "status": "paid",
        "order_total": "19.99",
        "refunded": "0.00",
        "currency": "USD",
        "needs_review": "yes",
        "review_reason": "currency eur != order currency usd",
        "checkout_session": flagged.stripe_session_id,
        "payment_intent": flagged.stripe_payment_intent_id,
        "product": "Product A",
        "quantity": "1",
        "unit_price": "19.99",
        "line_total": "19.99",
    }
    assert {key: row[key] for key in expected} == expected
    assert row["created_at"] == flagged.created_at.isoformat(timespec="seconds")
    assert row["paid_at"].endswith("+00:00")


def test_payment_events_list_and_reprocess_action(staff_client, staff_post, paid_order, emulator):
    order = paid_order()
    page = staff_client.get("/admin/payment_events/").get_data(as_text=True)
    assert "checkout.session.completed" in page and "Reprocess" in page
    completed = fresh().scalar(db.select(PaymentEvent).where(PaymentEvent.type == "checkout.session.completed"))
    assert staff_client.get(f"/admin/payment_events/details/?id={completed.id}").status_code == 200
    # Read-only: no create, edit or delete.
    assert staff_client.get("/admin/payment_events/new/").status_code in (302, 303)
    assert staff_client.get(f"/admin/payment_events/edit/?id={completed.id}").status_code in (302, 303)
    response = staff_post("/admin/payment_events/action/", data={"action": "reprocess", "rowid": [str(completed.id)]})
    assert response.status_code == 302
    follow = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Replayed 1 event(s): 1 no-op." in follow
    assert [e.to_status for e in fresh_order(order.id).events if e.to_status] == ["paid"]
    bad = staff_post("/admin/payment_events/action/", data={"action": "reprocess", "rowid": ["x' OR 1=1"]})
    assert "Choose the events to reprocess." in staff_client.get(bad.headers["Location"]).get_data(as_text=True)


def test_reprocess_applies_a_failed_event(staff_client, staff_post, place_order, emulator, stripe_dashboard, runner):
    order = place_order(A=1)
    with endpoint_down(emulator):  # the payment's webhook is lost
        emulator.pay(order.stripe_session_id)
        emulator.deliver_pending()
    payment_intent = emulator.sessions[order.stripe_session_id]["payment_intent"]
    stripe_dashboard.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 999})
    # Stripe cannot say which session made the payment (twice per event: delivery and the first reprocess).
    emulator.inject_fault("GET /v1/checkout/sessions", status=500, times=4)
    emulator.deliver_pending()  # the refund's events cannot be placed yet: stored as failed
    failed = fresh().scalars(db.select(PaymentEvent).where(PaymentEvent.outcome == "failed")).all()
    assert len(failed) == 2  # refund.created and charge.refunded (Stripe sends no refund.updated on create)
    listing = staff_client.get("/admin/payment_events/?flt0_outcome_equals=failed").get_data(as_text=True)
    assert all(e.stripe_event_id in listing for e in failed)
    rowids = [str(e.id) for e in failed]

    still = staff_post("/admin/payment_events/action/", data={"action": "reprocess", "rowid": rowids})
    assert "2 failed" in staff_client.get(still.headers["Location"]).get_data(as_text=True)
    assert runner.invoke(args=["payments", "reconcile", "--older-than", "0s"]).exit_code == 0
    done = staff_post("/admin/payment_events/action/", data={"action": "reprocess", "rowid": rowids})
    assert "Replayed 2 event(s): 1 applied, 1 no-op." in staff_client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    refunded = fresh_order(order.id)
    assert (refunded.status, refunded.refunded_cents) == (OrderStatus.PARTIALLY_REFUNDED, 999)


def test_dashboard_figures(staff_client, staff_post, paid_order, place_order, emulator):
    today = paid_order(A=1)  # 19.99
    week = paid_order(B=1)  # 29.99
    old = paid_order(C=1)  # 39.99
    for order_id, days in ((week.id, 3), (old.id, 10)):
        when = utcnow() - timedelta(days=days)
        db.session.execute(update(Order).where(Order.id == order_id).values(created_at=when, paid_at=when))
    db.session.commit()
    staff_post(
        f"/admin/orders/{today.id}/refund/", data={"amount": "4.99", "reason": "x", "sequence": "1", "confirm": "yes"}
    )
    emulator.deliver_pending()
    _flag(week.id, "check me")
    place_order(A=1)  # pending
    html = staff_client.get("/admin/").get_data(as_text=True)
    assert 'data-figure="paid-1">1<' in html  # today
    assert 'data-figure="paid-2">2<' in html  # last 7 days
    assert 'data-figure="revenue-1-usd">$19.99<' in html
    assert "(refunded $4.99)" in html
    assert 'data-figure="revenue-1-usd">$49.98<' in html
    assert 'data-figure="pending">1<' in html
    assert 'data-figure="failed">0<' in html
    assert 'data-figure="expired">0<' in html
    assert 'data-figure="needs-review">1<' in html
