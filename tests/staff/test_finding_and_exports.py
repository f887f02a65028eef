"""Finding orders (number, email, Stripe ids), readable lists, formula-safe complete exports, refund confirm."""

from __future__ import annotations

import csv
import io
import re

import pytest

from shopapp.extensions import db
from shopapp.models import EventOutcome, PaymentEvent
from tests.conftest import PASSWORD, fresh
from tests.staff.conftest import refunds_of, stripe_refunds

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def _rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _listed(staff_client, query: str) -> set[int]:
    return {int(r["order"]) for r in _rows(staff_client.get(f"/admin/orders/export/csv/?{query}", buffered=True))}


def test_search_by_the_number_the_shopper_sees(staff_client, paid_order, place_order):
    orders = [paid_order(A=1), paid_order(B=1), place_order(C=1)]
    target = orders[1]
    assert _listed(staff_client, f"search={target.id}") == {target.id}
    assert _listed(staff_client, f"search=%23{target.id}") == {target.id}  # "#2"
    assert _listed(staff_client, "search=%23999") == set()
    page = staff_client.get(f"/admin/orders/?search=%23{target.id}").get_data(as_text=True)
    assert f"/admin/orders/details/?id={target.id}" in page
    assert f"/admin/orders/details/?id={orders[0].id}" not in page


def test_search_by_email_any_case_and_by_stripe_ids(staff_client, paid_order):
    order = paid_order(A=1)
    assert _listed(staff_client, "search=SHOPPER@Example.COM") == {order.id}
    assert _listed(staff_client, "search=Shopper") == {order.id}
    assert _listed(staff_client, "search=someone@example.com") == set()
    assert _listed(staff_client, f"search={order.stripe_session_id}") == {order.id}
    assert _listed(staff_client, f"search={order.stripe_payment_intent_id}") == {order.id}
    assert _listed(staff_client, "search=100%25") == set()  # LIKE wildcards are literal


def test_lists_show_readable_local_times_and_events_link_to_orders(app, staff_client, paid_order):
    order = paid_order(A=1)
    app.config["SHOP_TIMEZONE"] = "America/New_York"
    orders_page = staff_client.get("/admin/orders/").get_data(as_text=True)
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", orders_page)  # no microseconds
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} E[SD]T", orders_page)
    events_page = staff_client.get("/admin/payment_events/").get_data(as_text=True)
    assert f'<a href="/admin/orders/details/?id={order.id}">Order #{order.id}</a>' in events_page
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", events_page)


def test_event_outcomes_read_as_in_the_filter_and_the_export(app, staff_client, paid_order):
    # The list and the event's page say "applied", as the Outcome filter and events.csv do, not the enum's
    # Python name ("APPLIED", "NO_OP").
    paid_order(A=1)
    with app.app_context():
        event_id = db.session.scalar(db.select(PaymentEvent.id).where(PaymentEvent.outcome == EventOutcome.APPLIED))
    for path in ("/admin/payment_events/", f"/admin/payment_events/details/?id={event_id}"):
        page = staff_client.get(path).get_data(as_text=True)
        assert re.search(r">\s*applied\s*<", page), path
        assert "APPLIED" not in page and "NO_OP" not in page, path


def test_shipped_filter(staff_client, paid_order):
    order = paid_order(A=1)
    assert _listed(staff_client, "flt0_shipped_equals=0") == {order.id}
    assert _listed(staff_client, "flt0_shipped_equals=1") == set()


def test_every_text_cell_of_every_export_is_formula_safe(app, client, staff_client, products, emulator):
    # A shopper who signs up as "=1+2@example.com" and buys a product staff named "-2+3 mug".
    response = client.post(
        "/account/signup", data={"email": "=1+2@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    from shopapp.services.products import ProductInput, update_product

    update_product(products["Product A"].id, ProductInput(name="-2+3 mug", price="19.99", currency="usd"),
                   actor="test")  # fmt: skip
    bought = client.post("/checkout", data={f"qty-{products['Product A'].id}": "1"})
    assert bought.status_code == 303
    emulator.pay(re.search(r"(cs_test_[A-Za-z0-9]+)", bought.headers["Location"]).group(1))
    emulator.deliver_pending()
    session = fresh()
    session.add(PaymentEvent(stripe_event_id="@evt_x", type="+cmd", error="\t=HYPERLINK(1)", payload="{}",
                             outcome="failed"))  # fmt: skip
    session.commit()

    seen = {}
    for kind in ("orders", "items", "events", "users"):
        text = staff_client.get(f"/admin/exports/{kind}.csv", buffered=True).get_data(as_text=True)
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        seen[kind] = cells
        for cell in cells:
            if cell and cell.startswith(FORMULA_START):
                assert re.fullmatch(r"-?[0-9.,]+", cell), f"{kind}: live formula cell {cell!r}"
    assert "'=1+2@example.com" in seen["orders"] and "'=1+2@example.com" in seen["users"]
    assert "'-2+3 mug" in seen["orders"] and "'-2+3 mug" in seen["items"]
    assert "'@evt_x" in seen["events"] and "'+cmd" in seen["events"] and "'\t=HYPERLINK(1)" in seen["events"]
    # The list views' Export buttons give the same safe files.
    users = staff_client.get("/admin/users/export/csv/", buffered=True).get_data(as_text=True)
    assert "'=1+2@example.com" in users and "password" not in users.lower()


def test_orders_export_is_complete_with_items(staff_client, paid_order):
    order = paid_order(A=2, C=1)
    rows = _rows(staff_client.get("/admin/exports/orders.csv", buffered=True))
    lines = [(r["order"], r["product"], r["quantity"], r["unit_price"], r["line_total"]) for r in rows]
    assert lines == [(str(order.id), "Product A", "2", "19.99", "39.98"), (str(order.id), "Product C", "1", "39.99",
                                                                             "39.99")]  # fmt: skip
    assert {"ship_name", "ship_line1", "ship_city", "ship_postal_code", "ship_country", "shipped_at", "carrier",
            "tracking_number"} <= set(rows[0])  # fmt: skip


def test_a_full_refund_asks_for_confirmation_first(staff_client, staff_post, paid_order, emulator):
    order = paid_order(A=1)
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="amount"[^>]*value=""', page) or 'id="amount" name="amount" type="text">' in page
    form = {"amount": "19.99", "reason": "Damaged", "sequence": "1"}
    asked = staff_post(f"/admin/orders/{order.id}/refund/", data=form)
    assert asked.status_code == 200
    text = asked.get_data(as_text=True)
    assert 'id="refund-confirmation"' in text and "$19.99" in text and "shopper@example.com" in text
    assert refunds_of(order.id) == [] and stripe_refunds(emulator, order.stripe_payment_intent_id) == []
    done = staff_post(f"/admin/orders/{order.id}/refund/", data={**form, "confirm": "yes"})
    assert done.status_code == 303
    assert [r.amount_cents for r in refunds_of(order.id)] == [1999]


def test_a_partial_refund_asks_for_confirmation_too(staff_client, staff_post, paid_order, emulator):
    # Issue 22: every refund names the amount and the shopper before anything is sent.
    order = paid_order(A=2)
    form = {"amount": "5.00", "reason": "x", "sequence": "1"}
    asked = staff_post(f"/admin/orders/{order.id}/refund/", data=form)
    text = asked.get_data(as_text=True)
    assert asked.status_code == 200 and 'id="refund-confirmation"' in text
    assert "$5.00" in text and "shopper@example.com" in text and "$39.98 still refundable" in text
    assert refunds_of(order.id) == []
    done = staff_post(f"/admin/orders/{order.id}/refund/", data={**form, "confirm": "yes"})
    assert done.status_code == 303 and [r.amount_cents for r in refunds_of(order.id)] == [500]
    # Until Stripe confirms, the order page says the refund is pending (not a stale status).
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert 'id="refund-pending">Refund of $5.00 pending' in page and "waiting for Stripe" in page
    emulator.deliver_pending()
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert 'id="refund-pending"' not in page and "Partially refunded" in page


@pytest.mark.parametrize("kind", ["nope", "orders.exe"])
def test_unknown_export_is_404(staff_client, kind):
    assert staff_client.get(f"/admin/exports/{kind}.csv").status_code == 404


def test_exports_page_lists_every_export(staff_client):
    page = staff_client.get("/admin/exports/").get_data(as_text=True)
    for kind in ("orders", "items", "events", "users"):
        assert f"/admin/exports/{kind}.csv" in page
    # The characters staff are told about are the ones typed in a cell: "-" (U+002D), not the minus sign (U+2212).
    assert "starting with =, +, -, @," in page and "\u2212" not in page
