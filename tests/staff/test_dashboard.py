"""The owner's dashboard: every status counted, 30-day net revenue drawn as SVG within the CSP, latest orders,
low stock against a staff-set threshold, failed payment events."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, PaymentEvent, Product
from shopapp.models.base import utcnow
from shopapp.services import staff
from tests.conftest import fresh


def test_dashboard_counts_chart_recent_low_stock_and_failures(staff_client, staff_post, paid_order, place_order,
                                                               emulator, products):  # fmt: skip
    first = paid_order(A=1)  # 19.99 today
    older = paid_order(B=1)  # 29.99, moved to 3 days ago
    when = utcnow() - timedelta(days=3)
    db.session.execute(update(Order).where(Order.id == older.id).values(paid_at=when, created_at=when))
    db.session.execute(update(Product).where(Product.name == "Product C").values(stock=2, low_stock_threshold=3))
    db.session.add(PaymentEvent(stripe_event_id="evt_broken", type="checkout.session.completed", outcome="failed",
                                error="OrderNotFound 999", payload="{}"))  # fmt: skip
    db.session.commit()
    place_order(C=1)  # holds one of the two units: 1 left
    staff_post(
        f"/admin/orders/{first.id}/refund/", data={"amount": "5.00", "reason": "x", "sequence": "1", "confirm": "yes"}
    )
    emulator.deliver_pending()

    fresh()  # end the test's read snapshot: the refund was committed by the requests
    dashboard = staff.dashboard()
    days = dashboard.revenue_by_day["usd"]
    assert len(days) == 30 and days[-1].day == utcnow().date()
    assert (days[-1].paid, days[-1].refunded, days[-1].net) == (1999, 500, 1499)
    assert days[-4].net == 2999 and sum(d.net for d in days) == 1999 + 2999 - 500
    assert dashboard.counts["paid"] == 1 and dashboard.counts["partially_refunded"] == 1
    assert dashboard.counts["pending"] == 1 and set(dashboard.counts) == {s.value for s in OrderStatus}

    response = staff_client.get("/admin/")
    html = response.get_data(as_text=True)
    assert 'data-figure="partially_refunded">1<' in html and 'data-figure="pending">1<' in html
    chart = re.search(r'<svg class="revenue-chart".*?</svg>', html, re.S).group(0)
    assert chart.count("<rect") == 30
    assert "$14.99 net ($19.99 paid, $5.00 refunded)" in chart
    assert "style=" not in chart and "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script anywhere on the page
    csp = response.headers["Content-Security-Policy"]
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    recent = re.search(r'<table class="table table-sm" id="recent-orders">.*?</table>', html, re.S).group(0)
    assert recent.count("<tr>") == 1 + 3  # header + three orders, newest first
    assert recent.index(f"#{first.id + 2}") < recent.index(f"#{first.id}")
    assert re.search(r'id="low-stock">\s*<li><a href="[^"]+">Product C</a>: 1 left \(alert at 3\)', html)
    assert "OrderNotFound 999" in html


def test_empty_dashboard_says_so(staff_client):
    html = staff_client.get("/admin/").get_data(as_text=True)
    assert 'id="revenue-none"' in html and "No orders yet." in html and 'id="failed-events-none"' in html
    assert 'id="failed-emails-none"' in html
    assert fresh().scalar(db.select(db.func.count(Order.id))) == 0
