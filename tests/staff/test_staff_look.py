"""Issue 22, staff side: one heading per page, status badges, a human-first order page, readable payloads,
exports of what the list shows."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import update

from shopapp.extensions import db
from shopapp.models import Order, PaymentEvent
from shopapp.models.base import utcnow


def _h1s(html: str) -> list[str]:
    return re.findall(r"<h1[^>]*>", html)


def test_every_staff_page_has_one_heading(staff_client, paid_order):
    order = paid_order(A=1)
    pages = ("/admin/", "/admin/exports/", "/admin/brand/", "/admin/orders/", f"/admin/orders/details/?id={order.id}",
             "/admin/products/", "/admin/payment_events/", "/admin/users/")  # fmt: skip
    for path in pages:
        html = staff_client.get(path).get_data(as_text=True)
        assert len(_h1s(html)) == 1, (path, _h1s(html))


def test_statuses_are_badges_and_the_order_page_reads_as_a_story(staff_client, paid_order):
    order = paid_order(A=2, C=1)
    listing = staff_client.get("/admin/orders/").get_data(as_text=True)
    assert '<span class="status-badge status-paid">Paid</span>' in listing
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    story = re.search(r'id="order-story">(.*?)</p>', page, re.S).group(1)
    assert "shopper@example.com ordered 2 &times; Product A, 1 &times; Product C" in story and "$79.97" in story
    # Stripe's ids are tucked into a details block, after the story.
    assert page.index('id="order-story"') < page.index('<details class="mb-3" id="stripe-ids">')
    assert page.index('id="stripe-ids"') < page.index(order.stripe_session_id)


def test_an_event_payload_is_pretty_printed(staff_client, paid_order):
    paid_order(A=1)
    event = db.session.query(PaymentEvent).filter(PaymentEvent.type == "checkout.session.completed").one()
    page = staff_client.get(f"/admin/payment_events/details/?id={event.id}").get_data(as_text=True)
    block = re.search(r'<pre class="event-payload"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert "\n  &#34;id&#34;: &#34;evt_" in block or "\n  &quot;id&quot;: &quot;evt_" in block


def test_the_orders_export_follows_a_date_range_and_search(staff_client, paid_order):
    recent, old = paid_order(A=1), paid_order(B=1)
    db.session.execute(update(Order).where(Order.id == old.id).values(created_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    since = (utcnow() - timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")
    until = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    query = f"flt0_created_between={since}+to+{until}"
    listing = staff_client.get(f"/admin/orders/?{query}").get_data(as_text=True)
    assert f"/admin/orders/export/csv/?{query}".replace("+", "%2B").split("?")[0] in listing
    rows = list(
        csv.DictReader(
            io.StringIO(staff_client.get(f"/admin/orders/export/csv/?{query}", buffered=True).get_data(as_text=True))
        )
    )
    assert {int(r["order"]) for r in rows} == {recent.id}
    searched = staff_client.get(f"/admin/orders/export/csv/?search=%23{old.id}", buffered=True).get_data(as_text=True)
    assert {int(r["order"]) for r in csv.DictReader(io.StringIO(searched))} == {old.id}
