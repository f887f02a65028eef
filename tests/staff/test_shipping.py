"""Shipping: the address read from a completed session (any supported API version), stored on the order,
shown to staff and exported; staff mark a paid order shipped with a carrier and tracking number."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from shopapp.models import OrderStatus
from shopapp.services import checkout, shipping
from tests.staff.conftest import fresh_order

ADDRESS = {"city": "Springfield", "country": "US", "line1": "742 Evergreen Terrace", "line2": None,
           "postal_code": "49007", "state": "OR"}  # fmt: skip


def _completed(order, where: str) -> dict:
    """The order's own Checkout Session, completed and paid, with the address where an API version puts it."""
    session = {
        "id": order.stripe_session_id, "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": "paid", "amount_total": order.total_cents, "currency": order.currency,
        "metadata": {"order_id": str(order.id)}, "client_reference_id": str(order.id), "payment_intent": "pi_ship",
    }  # fmt: skip
    details = {"name": "Marge Simpson", "address": ADDRESS}
    if where == "collected_information":  # current API versions
        session["collected_information"] = {"business_name": None, "individual_name": None,
                                            "shipping_details": details}  # fmt: skip
    elif where == "shipping_details":  # before 2025-03-31
        session["collected_information"] = None
        session["shipping_details"] = details
    else:  # before 2022-08-01
        session["shipping"] = details
    return session


@pytest.mark.parametrize("where", ["collected_information", "shipping_details", "shipping"])
def test_the_address_is_read_from_every_supported_api_shape(place_order, where):
    order = place_order(A=1)
    assert checkout.finalize_checkout(_completed(order, where), actor="test") == checkout.Outcome.PAID
    stored = fresh_order(order.id)
    assert stored.status == OrderStatus.PAID
    assert json.loads(stored.shipping_address) == {"name": "Marge Simpson", "address": ADDRESS}


def test_no_address_collected_stores_none(place_order):
    order = place_order(A=1)
    session = _completed(order, "collected_information")
    session["collected_information"]["shipping_details"] = None
    checkout.finalize_checkout(session, actor="test")
    assert fresh_order(order.id).shipping_address is None


def test_checkout_asks_for_an_address_only_when_configured():
    assert shipping.session_params(()) == {}
    assert shipping.session_params(("us", "CA")) == {"shipping_address_collection": {"allowed_countries": ["US", "CA"]}}


def test_staff_see_the_address_mark_shipped_and_export_it(staff_client, staff_post, place_order):
    order = place_order(A=1)
    checkout.finalize_checkout(_completed(order, "collected_information"), actor="test")
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    ship_to = re.search(r'id="ship-to">(.*?)</td>', page, re.S).group(1)
    assert ship_to == "Marge Simpson<br>742 Evergreen Terrace<br>49007 Springfield OR<br>US"
    assert 'id="ship-form"' in page

    response = staff_post(f"/admin/orders/{order.id}/ship/", data={"carrier": "UPS", "tracking_number": "1Z999"})
    assert response.status_code == 303
    shipped = fresh_order(order.id)
    assert shipped.shipped_at is not None and (shipped.shipping_carrier, shipped.tracking_number) == ("UPS", "1Z999")
    assert [e.note for e in shipped.events][-1] == "Shipped via UPS 1Z999"
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "UPS 1Z999" in page and 'id="ship-form"' not in page
    again = staff_post(f"/admin/orders/{order.id}/ship/", data={"carrier": "DHL"})
    assert again.status_code == 303 and fresh_order(order.id).shipping_carrier == "UPS"

    export = staff_client.get("/admin/exports/orders.csv", buffered=True).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(export)))
    [row] = rows
    assert (row["ship_name"], row["ship_line1"], row["ship_city"], row["ship_country"]) == (
        "Marge Simpson",
        "742 Evergreen Terrace",
        "Springfield",
        "US",
    )
    assert (row["carrier"], row["tracking_number"]) == ("UPS", "1Z999") and row["shipped_at"]
    listed = staff_client.get("/admin/orders/export/csv/?flt0_shipped_equals=1", buffered=True).get_data(as_text=True)
    assert f"\r\n{order.id}," in listed


def test_an_unpaid_order_cannot_be_shipped(staff_post, place_order):
    order = place_order(A=1)
    response = staff_post(f"/admin/orders/{order.id}/ship/", data={"carrier": "UPS"})
    assert response.status_code == 409
    assert "only paid orders can be shipped" in response.get_data(as_text=True)
    assert fresh_order(order.id).shipped_at is None


def test_bulk_mark_shipped_action(staff_client, staff_post, paid_order, place_order):
    paid, pending = paid_order(A=1), place_order(B=1)
    response = staff_post("/admin/orders/action/", data={"action": "ship", "rowid": [str(paid.id), str(pending.id)]})
    assert response.status_code == 302
    message = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    refused = f"Not shipped: #{pending.id} (Pending: only paid orders can be shipped.)"
    assert f"Marked 1 order(s) shipped. {refused}" in message
    assert fresh_order(paid.id).shipped_at is not None and fresh_order(pending.id).shipped_at is None


def test_the_shopper_sees_the_order_shipped(client, staff_post, paid_order):
    order = paid_order(A=1)
    assert "Shipped" not in client.get("/orders").get_data(as_text=True)  # also fills the page cache
    staff_post(f"/admin/orders/{order.id}/ship/", data={"carrier": "UPS", "tracking_number": "1Z999"})
    page = client.get("/orders").get_data(as_text=True)
    assert re.search(r"Shipped \d{4}-\d{2}-\d{2} by UPS, tracking number <a [^>]*>1Z999</a>\.", page)
