"""Shopper data rights: download my data, delete my account (issue 24)."""

from __future__ import annotations

import json

from shopapp.extensions import db
from shopapp.models import Order, OutboxMessage, User
from shopapp.services import data_rights
from tests.conftest import PASSWORD, fresh, session_id_from


def test_download_my_data(client, shopper, paid_order):
    order = paid_order()
    response = client.get("/account/data.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == shopper.email
    [exported] = data["orders"]
    assert (exported["number"], exported["total_cents"], exported["status"]) == (order.id, order.total_cents, "paid")
    assert sorted((i["product"], i["quantity"]) for i in exported["items"]) == [("Product A", 2), ("Product C", 1)]
    assert {m["kind"] for m in data["emails"]} >= {"welcome", "order_receipt"}
    assert set(data) == {"account", "orders", "addresses", "emails"}
    assert "password" not in response.get_data(as_text=True).lower()


def test_delete_is_refused_while_an_order_awaits_payment(client, shopper, buy):
    session_id_from(buy(A=1))
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "cannot be deleted yet" in page and "waiting for payment" in page
    assert fresh().scalars(db.select(User.email).where(User.id == shopper.id)).one() == shopper.email


def test_delete_needs_the_password(client, shopper):
    assert client.post("/account/delete", data={"password": "not my password"}).status_code == 400
    assert fresh().scalars(db.select(User.anonymised_at).where(User.id == shopper.id)).one() is None


def test_delete_anonymises_and_keeps_the_books(client, shopper, paid_order, auth, app):
    order = paid_order()
    other_browser = app.test_client()
    other_browser.post("/account/login", data={"email": shopper.email, "password": PASSWORD})
    response = client.post("/account/delete", data={"password": PASSWORD}, follow_redirects=True)
    assert response.status_code == 200 and str(data_rights.KEPT_REASON) in response.get_data(as_text=True)
    user = fresh().scalars(db.select(User).where(User.id == shopper.id)).one()
    assert user.email == f"deleted-{shopper.id}@deleted.invalid" and user.anonymised_at is not None
    kept = fresh().scalars(db.select(Order).where(Order.id == order.id)).one()
    assert (kept.status.value, kept.total_cents, kept.user_id) == ("paid", order.total_cents, shopper.id)
    recipients = set(fresh().scalars(db.select(OutboxMessage.recipient).where(OutboxMessage.user_id == shopper.id)))
    assert recipients == {user.email}
    # Every session ended, and the old password opens nothing.
    assert other_browser.get("/account/").status_code == 302
    assert auth.login(shopper.email).status_code == 400


def test_staff_cannot_delete_themselves(app, make_user):
    user = make_user("staff@example.com", staff=True)
    browser = app.test_client()
    browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    response = browser.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 409 and "Staff accounts" in response.get_data(as_text=True)


def test_open_means_unpaid_unshipped_refunding_or_under_review(client, shopper, paid_order, emulator):
    from shopapp.services import refunds

    order = paid_order()
    assert data_rights.open_orders(shopper.id) == []  # paid, nothing to ship: closed
    address = json.dumps({"name": "Zoë", "address": {"line1": "1 Main St", "country": "US"}})
    with db.engine.begin() as conn:
        conn.execute(Order.__table__.update().where(Order.id == order.id).values(shipping_address=address))
    db.session.remove()
    assert [o.reason for o in data_rights.open_orders(shopper.id)] == ["paid and not shipped yet"]
    with db.engine.begin() as conn:
        conn.execute(Order.__table__.update().where(Order.id == order.id).values(shipping_address=None))
    refunds.request_refund(order.id, "5.00", "Asked", requested_by="staff ann@example.com", sequence=1)
    db.session.remove()
    assert [o.reason for o in data_rights.open_orders(shopper.id)] == ["a refund is still on its way"]
    emulator.deliver_pending()
    db.session.remove()
    assert data_rights.open_orders(shopper.id) == []
