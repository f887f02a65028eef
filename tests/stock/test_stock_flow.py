"""Limited stock through the real shop: holds, the short session, release, consume, late payments, staff."""

from __future__ import annotations

import re

from shopapp.extensions import db
from shopapp.models import Order, OrderEvent, OrderStatus, Refund
from shopapp.models.base import utcnow
from shopapp.services import accounts, catalog, stock
from tests.conftest import PASSWORD, fresh, order_for_session, session_id_from
from tests.support import back_to_shop, refused_checkout

CREATE = "POST /v1/checkout/sessions"


def _expire_at_stripe(emulator, session_id: str) -> None:
    """Let the service clock pass the session's expires_at, as Stripe would, and deliver the events."""
    expires_at = emulator.sessions[session_id]["expires_at"]
    emulator.clock.advance(expires_at - emulator.clock.timestamp() + 1)
    emulator.tick()
    emulator.deliver_pending()


def test_buy_holds_units_with_a_short_session(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=2, B=1))
    assert counts("A") == (1, 2)
    assert counts("B") == (None, 0)  # unlimited products hold nothing
    order = order_for_session(session_id)
    assert order.stock_reserved is True
    assert [(i.product_name, i.reserved_quantity) for i in order.items] == [("Product A", 2), ("Product B", 0)]
    ttl = emulator.sessions[session_id]["expires_at"] - int(utcnow().timestamp())
    assert 30 * 60 <= ttl <= 32 * 60  # Stripe's minimum plus a little slack, not the 24 h maximum


def test_hold_ttl_is_configurable_and_unlimited_orders_use_the_default(app_factory, emulator):
    app = app_factory(CHECKOUT_SESSION_TTL_MINUTES=600, CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK=45)
    catalog.seed_demo_products()
    by_name = {p.name: p for p in catalog.list_active_products()}
    stock.set_on_hand(by_name["Product A"].id, 5)
    user = accounts.create_user("ttl@example.com", PASSWORD)
    client = app.test_client()
    client.post("/account/login", data={"email": user.email, "password": PASSWORD})
    limited = session_id_from(client.post("/checkout", data={f"qty-{by_name['Product A'].id}": "1"}))
    now = int(utcnow().timestamp())
    assert 45 * 60 <= emulator.sessions[limited]["expires_at"] - now <= 47 * 60
    unlimited = session_id_from(client.post("/checkout", data={f"qty-{by_name['Product B'].id}": "1"}))
    now = int(utcnow().timestamp())
    assert 600 * 60 <= emulator.sessions[unlimited]["expires_at"] - now <= 602 * 60


def test_selection_above_what_is_left_is_refused_clearly(client, shopper, buy, limit, counts):
    limit("A", 2)
    assert "only 2 of Product A left" in refused_checkout(buy(A=3, C=1, follow=True))
    assert counts("A") == (2, 0)
    assert fresh().scalar(db.select(db.func.count(Order.id))) == 0


def test_sold_out_is_refused_and_shown(client, shopper, buy, limit, make_user, auth):
    limit("A", 1)
    session_id_from(buy(A=1))
    other = make_user("late@example.com")
    auth.logout()
    auth.login(other.email)
    # The last unit is held by the first shopper's open checkout: "reserved", not "sold out" (issue 15).
    assert "the last Product A are reserved by shoppers who are checking out" in refused_checkout(buy(A=1, follow=True))
    page = client.get("/").get_data(as_text=True)
    assert "All reserved by shoppers who are checking out" in page and "Sold out" not in page


def test_shop_page_shows_only_n_left_and_caps_the_input(client, products, limit):
    product = limit("A", 4)
    page = client.get("/").get_data(as_text=True)
    assert "Only 4 left" in page
    field = re.search(rf'<input[^>]*name="qty-{product.id}"[^>]*>', page, re.S)
    assert field and 'max="4"' in field.group(0)


def test_expiry_returns_the_units(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=2))
    _expire_at_stripe(emulator, session_id)
    assert order_for_session(session_id).status == OrderStatus.EXPIRED
    assert counts("A") == (3, 0)
    emulator.redeliver(emulator.events("checkout.session.expired")[0]["id"])
    assert counts("A") == (3, 0)  # a duplicate event gives nothing back twice


def test_paid_consumes_the_units(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=2))
    emulator.pay(session_id)
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID and order.stock_reserved is False
    assert counts("A") == (1, 0)
    emulator.redeliver(emulator.events("checkout.session.completed")[0]["id"])
    assert counts("A") == (1, 0)


def test_failed_delayed_payment_returns_the_units(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=1))
    emulator.pay(session_id, delayed="fail")
    emulator.deliver_pending()
    assert counts("A") == (2, 1)  # still held while the bank decides
    emulator.complete_async(session_id, succeed=False)
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.FAILED
    assert counts("A") == (3, 0)


def test_cancel_page_does_not_write_and_cancel_button_releases(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=2))
    order_id = order_for_session(session_id).id
    page = client.get("/?checkout=canceled")
    assert page.status_code == 200 and "cancel it under My orders" in page.get_data(as_text=True)
    assert counts("A") == (1, 2)
    assert order_for_session(session_id).status == OrderStatus.PENDING
    response = client.post(f"/orders/{order_id}/cancel")
    assert response.status_code == 302
    assert order_for_session(session_id).status == OrderStatus.CANCELED
    assert emulator.sessions[session_id]["status"] == "expired"
    assert counts("A") == (3, 0)


def test_changed_cart_releases_the_old_hold(client, shopper, buy, limit, counts):
    limit("A", 3)
    first = session_id_from(buy(A=2))
    session_id_from(buy(A=1))
    assert order_for_session(first).status in (OrderStatus.EXPIRED, OrderStatus.CANCELED)
    assert counts("A") == (2, 1)


def test_product_made_limited_after_an_unlimited_sale_does_not_break_release(
    client, shopper, buy, limit, counts, emulator
):
    session_id = session_id_from(buy(A=2))  # A is unlimited: nothing held
    limit("A", 5)
    _expire_at_stripe(emulator, session_id)
    assert order_for_session(session_id).status == OrderStatus.EXPIRED
    assert counts("A") == (5, 0)


def test_product_made_unlimited_while_held_keeps_reserved_exact(client, shopper, buy, limit, counts, emulator):
    limit("A", 3)
    session_id = session_id_from(buy(A=2))
    limit("A", None)
    assert counts("A") == (None, 2)
    _expire_at_stripe(emulator, session_id)
    assert counts("A") == (None, 0)


# ---------------------------------------------------------------------------------------------
# A late payment for a session whose hold was released


def _orphan_session(client, buy, emulator, **quantities) -> tuple[int, str]:
    """A session Stripe created whose reply was lost; the shopper then changed cart, releasing the hold."""
    emulator.inject_fault(CREATE, status=500, process=True)
    assert back_to_shop(buy(**quantities))
    order = fresh().scalar(db.select(Order).order_by(Order.id.desc()))
    assert order is not None and order.stripe_session_id is None
    orphan = next(s for s in emulator.sessions.values() if s["metadata"]["order_id"] == str(order.id))
    session_id_from(buy(B=1))  # a different cart: the old order is canceled and its units released
    return order.id, orphan["id"]


def test_late_payment_with_stock_still_there_is_paid(client, shopper, buy, limit, counts, emulator, fresh_order):
    limit("A", 2)
    order_id, orphan = _orphan_session(client, buy, emulator, A=2)
    assert fresh_order(order_id).status == OrderStatus.CANCELED
    assert counts("A") == (2, 0)
    emulator.pay(orphan)
    emulator.deliver_pending()
    order = fresh_order(order_id)
    assert order.status == OrderStatus.PAID and not order.stock_shortfall and not order.needs_review
    assert counts("A") == (0, 0)
    assert emulator.events("refund.created") == []


def test_late_payment_with_stock_gone_is_refunded_and_shopper_told(
    client, shopper, buy, limit, counts, emulator, make_user, auth, fresh_order
):
    limit("A", 1)
    order_id, orphan = _orphan_session(client, buy, emulator, A=1)
    # Someone else buys the released unit.
    auth.logout()
    auth.login(make_user("quick@example.com").email)
    quick = session_id_from(buy(A=1))
    emulator.pay(quick)
    emulator.deliver_pending()
    assert counts("A") == (0, 0)
    # The first shopper's orphan session is paid anyway.
    emulator.pay(orphan)
    emulator.deliver_pending()
    order = fresh_order(order_id)
    assert order.status == OrderStatus.PAID  # the money did arrive ...
    assert order.stock_shortfall and order.needs_review  # ... but it cannot be fulfilled
    assert counts("A") == (0, 0)  # never oversold
    refunds = emulator.events("refund.created")
    assert [(r["data"]["object"]["amount"], r["data"]["object"]["payment_intent"]) for r in refunds] == [
        (order.total_cents, order.stripe_payment_intent_id)
    ]
    row = fresh().scalar(db.select(Refund).where(Refund.order_id == order_id))
    assert row is not None and row.stripe_refund_id == refunds[0]["data"]["object"]["id"]
    notes = [e.note for e in db.session.scalars(db.select(OrderEvent).where(OrderEvent.order_id == order_id))]
    assert any("stock is gone" in n for n in notes) and any(n.startswith("Refund re_") for n in notes)
    # A replayed event sends no second refund.
    emulator.redeliver(emulator.events("checkout.session.completed")[-1]["id"])
    assert len(emulator.events("refund.created")) == 1
    # The shopper is told, on the success page and in My orders.
    auth.logout()
    auth.login("shopper@example.com")
    page = client.get(f"/success/?session_id={orphan}").get_data(as_text=True)
    assert "Sorry, this sold out" in page and "refunded in full" in page
    assert "refunded in full" in client.get("/orders").get_data(as_text=True)


def test_refund_that_could_not_reach_stripe_is_sent_by_the_cli(
    client, shopper, buy, limit, counts, emulator, make_user, auth, fresh_order, runner
):
    limit("A", 1)
    order_id, orphan = _orphan_session(client, buy, emulator, A=1)
    auth.logout()
    auth.login(make_user("quick@example.com").email)
    session_id_from(buy(A=1))  # holds the released unit
    emulator.inject_fault("POST /v1/refunds", status=500)
    emulator.pay(orphan)
    emulator.deliver_pending()
    order = fresh_order(order_id)
    assert order.stock_shortfall and emulator.events("refund.created") == []
    result = runner.invoke(args=["stock", "send-refunds"])
    assert "Out-of-stock refunds sent: 1." in result.output
    assert len(emulator.events("refund.created")) == 1
    assert "sent: 0." in runner.invoke(args=["stock", "send-refunds"]).output


# ---------------------------------------------------------------------------------------------
# Staff


def _csrf(page: str, prefix: str) -> str:
    match = re.search(rf'name="{prefix}-csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        rf'value="([^"]+)"[^>]*name="{prefix}-csrf_token"', page
    )
    assert match, page[:2000]
    return match.group(1)


def test_staff_restock_and_count_keep_holds_intact(client, make_user, auth, buy, limit, counts, products):
    product = limit("A", 2)
    shopper = make_user("s@example.com")
    auth.login(shopper.email)
    session_id_from(buy(A=2))
    assert counts("A") == (0, 2)
    auth.logout()
    auth.login(make_user("staff@example.com", staff=True).email)
    listing = client.get("/admin/products/").get_data(as_text=True)
    assert "Held by open checkouts" in listing and "manage stock" in listing
    url = f"/admin/products/stock/{product.id}"
    page = client.get(url).get_data(as_text=True)
    response = client.post(
        url, data={"restock-csrf_token": _csrf(page, "restock"), "restock-add": "5", "restock-restock": "Restock"}
    )
    assert response.status_code == 302
    assert counts("A") == (5, 2)
    page = client.get(url).get_data(as_text=True)
    assert "Product A: 5 available, 2 held by open checkouts." in page
    # A count below what is held is refused; a valid count keeps the holds.
    bad = client.post(
        url, data={"count-csrf_token": _csrf(page, "count"), "count-on_hand": "1", "count-set_on_hand": "Set"}
    )
    assert bad.status_code == 400 and "2 units of Product A are held" in bad.get_data(as_text=True)
    assert counts("A") == (5, 2)
    client.post(url, data={"count-csrf_token": _csrf(page, "count"), "count-on_hand": "10", "count-set_on_hand": "S"})
    assert counts("A") == (8, 2)
    # The edit form has no stock field: saving it cannot overwrite holds taken meanwhile.
    edit = client.get(f"/admin/products/edit/?id={product.id}").get_data(as_text=True)
    assert 'name="stock"' not in edit


def test_stock_changes_need_staff_and_csrf(client, make_user, auth, limit, counts):
    product = limit("A", 2)
    url = f"/admin/products/stock/{product.id}"
    auth.login(make_user("s@example.com").email)
    assert client.post(url, data={"restock-add": "5", "restock-restock": "Restock"}).status_code == 403
    auth.logout()
    auth.login(make_user("staff@example.com", staff=True).email)
    response = client.post(url, data={"restock-add": "5", "restock-restock": "Restock"})
    assert response.status_code == 400
    assert counts("A") == (2, 0)
    page = client.get(url).get_data(as_text=True)
    for bad in ("-3", "0", "abc", "1000001"):
        response = client.post(
            url, data={"restock-csrf_token": _csrf(page, "restock"), "restock-add": bad, "restock-restock": "R"}
        )
        assert response.status_code == 400, bad
    assert counts("A") == (2, 0)


def test_cli_restock(runner, limit, counts, products):
    product = limit("A", 1)
    result = runner.invoke(args=["stock", "restock", str(product.id), "4"])
    assert "Product A: 5 available, 0 held" in result.output
    assert counts("A") == (5, 0)
    unlimited = products["Product B"]
    result = runner.invoke(args=["stock", "restock", str(unlimited.id), "4"])
    assert result.exit_code != 0 and "unlimited stock" in result.output
