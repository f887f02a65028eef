"""The eight shopper and staff journeys of issue 6, in Chromium against the live shop and Stripe service."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from shopapp.models import OrderStatus
from tests.browser.conftest import PASSWORD, STAFF_EMAIL, Journey

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"


def test_new_shopper_buys_and_sees_paid_order(journey: Journey) -> None:
    page = journey.page
    journey.goto("/")
    journey.visit("shop-anonymous")
    journey.sign_up("new@example.com")
    expect(page.locator(".flash-success")).to_contain_text("Welcome")
    buy = page.get_by_role("button", name="Buy")
    expect(buy).to_be_disabled()
    increase_a = page.get_by_role("button", name="Increase quantity of Product A")
    increase_a.click()
    increase_a.click()
    page.get_by_role("button", name="Increase quantity of Product C").click()
    expect(page.locator("#order-total")).to_have_text("$79.97")
    expect(buy).to_be_enabled()
    journey.visit("shop-selected")
    buy.click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    expect(page.get_by_role("heading", name="Pay $79.97")).to_be_visible()
    journey.visit("card-page")
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/\?session_id=cs_test_"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(page.locator(".order-total")).to_have_text("$79.97")
    journey.visit("success")
    page.get_by_role("link", name="Back to the shop").click()
    page.get_by_role("link", name="My orders").first.click()  # My orders has its own page (issue 22)
    order_card = page.locator(".order").first
    expect(order_card.locator(".badge")).to_have_text("Paid")
    expect(order_card).to_contain_text("$79.97")
    journey.visit("my-orders-paid")
    [order] = journey.shop.orders("new@example.com")
    assert order.status == OrderStatus.PAID
    assert order.total_cents == 7997


def _session_id(url: str) -> str:
    match = re.search(r"(cs_test_[A-Za-z0-9]+)", url)
    assert match, url
    return match.group(1)


def _start_purchase(journey: Journey, email: str, **quantities: int) -> str:
    """Log in a new shopper, choose quantities, press Buy; return the Checkout Session id of the card page."""
    journey.shop.create_user(email)
    journey.log_in(email)
    journey.choose(**quantities)
    journey.page.get_by_role("button", name="Buy").click()
    journey.page.wait_for_url(re.compile(r"/pay/cs_test_"))
    return _session_id(journey.page.url)


def test_declined_card_then_retry_pays_once(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    session_id = _start_purchase(journey, "declined@example.com", B=1)
    journey.pay_with(CARD_DECLINED)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Your card was declined")
    journey.visit("card-declined")
    [order] = shop.orders("declined@example.com")
    assert order.status == OrderStatus.PENDING
    assert shop.stripe.sessions()[session_id]["payment_status"] == "unpaid"

    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    journey.visit("paid-after-retry")
    [order] = shop.orders("declined@example.com")
    assert order.status == OrderStatus.PAID
    session = shop.stripe.sessions()[session_id]
    assert session["payment_status"] == "paid"
    completed = [e for e in shop.stripe.events("checkout.session.completed") if e["data"]["object"]["id"] == session_id]
    assert len(completed) == 1
    assert len(shop.stripe.sessions()) == 1


def test_cancel_on_card_page_closes_the_checkout_and_keeps_the_selection(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    session_id = _start_purchase(journey, "cancel@example.com", A=1)
    journey.visit("card-page")
    page.get_by_role("link", name="Cancel and return to the shop").click()
    page.wait_for_url(shop.url + "/")
    expect(page.get_by_role("status").filter(has_text="Payment canceled")).to_be_visible()
    # The same quantity is chosen again, ready to buy; the order was closed, not left pending.
    expect(page.get_by_role("spinbutton", name="Quantity of Product A")).to_have_value("1")
    journey.visit("shop-after-cancel")
    # In My orders a checkout the shopper left is collapsed as "not completed", not listed as an order.
    journey.goto("/orders")
    expect(page.locator(".order")).to_have_count(0)
    expect(page.locator(".not-completed summary")).to_have_text("1 checkout not completed (nothing was charged)")
    [order] = shop.orders("cancel@example.com")
    assert order.status == OrderStatus.CANCELED
    assert order.paid_at is None
    assert shop.stripe.sessions()[session_id]["status"] == "expired"
    assert shop.stripe.events("checkout.session.completed") == []


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_double_click_on_buy_makes_one_order_and_one_session(journey: Journey, javascript: bool) -> None:
    if not javascript:
        journey.use_context(java_script_enabled=False)
    page, shop = journey.page, journey.shop
    shop.create_user("double@example.com")
    journey.log_in("double@example.com")
    journey.choose(A=1, B=1)
    buy = page.get_by_role("button", name="Buy")
    if javascript:
        expect(page.locator("#order-total")).to_have_text("$49.98")
    buy.dblclick()
    # Without scripts the browser submits the form twice and cancels its first navigation when the second
    # starts; page.wait_for_url may report that cancelled one (net::ERR_ABORTED) as an error. So wait, with
    # a deadline, for where the page ends up, then for that page to finish loading.
    expect(page).to_have_url(re.compile(r"/pay/cs_test_"), timeout=15_000)
    page.wait_for_load_state()
    # axe-core runs as page script, so it can only check the pages when scripts are on (other journeys cover them).
    if javascript:
        journey.visit("card-page-after-double-click")
    else:
        journey.snap("card-page-after-double-click")
    orders = shop.orders("double@example.com")
    assert len(orders) == 1
    assert orders[0].total_cents == 4998
    assert list(shop.stripe.sessions()) == [orders[0].stripe_session_id]


def test_delayed_payment_shows_processing_then_paid(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    session_id = _start_purchase(journey, "delayed@example.com", C=1)
    journey.pay_with(CARD_OK, method="Bank debit (delayed; later succeeds)")
    page.wait_for_url(re.compile(r"/success/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your payment is processing")
    expect(page.locator(".badge")).to_have_text("Processing")
    journey.visit("success-processing")
    [order] = shop.orders("delayed@example.com")
    assert order.status == OrderStatus.PENDING

    shop.stripe.control(f"sessions/{session_id}/complete_async", {"succeed": True})
    shop.wait_for(
        lambda: shop.orders("delayed@example.com")[0].status == OrderStatus.PAID,
        "the async_payment_succeeded webhook to mark the order paid",
    )
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(page.locator(".badge")).to_have_text("Paid")
    journey.visit("success-paid")
    journey.goto("/orders")
    expect(page.locator(".order .badge")).to_have_text("Paid")


ADMIN_PAGES = [
    "/admin/",
    "/admin/products/",
    "/admin/products/edit/?id=2",
    "/admin/orders/",
    "/admin/orders/details/?id=1",
    "/admin/users/",
    "/admin/payment_events/",
]


def test_staff_change_price_keeps_earlier_orders(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    _start_purchase(journey, "early@example.com", B=1)
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    journey.log_out()

    journey.goto("/admin/")
    page.wait_for_url(re.compile(r"/account/login"))
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    for path in ADMIN_PAGES:
        response = journey.goto(path)
        assert response.status == 200, path
        journey.visit(path.strip("/").replace("/", "-").replace("?id=", "-"))

    journey.goto("/admin/products/")
    page.get_by_role("row").filter(has_text="Product B").get_by_role(
        "link", name=re.compile("edit record", re.I)
    ).click()
    price = page.get_by_label("Price")
    expect(price).to_have_value("29.99")
    price.fill("24.50")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").or_(page.locator(".alert"))).to_contain_text("saved")
    expect(page.get_by_role("row").filter(has_text="Product B")).to_contain_text("$24.50")
    journey.visit("admin-products-after-edit")
    assert shop.product("Product B").price_cents == 2450

    journey.goto("/")
    card = page.locator(".product-card").filter(has_text="Product B")
    expect(card.locator(".product-price")).to_have_text("$24.50")
    journey.visit("shop-new-price")
    [order] = shop.orders("early@example.com")
    assert order.total_cents == 2999
    assert order.items[0].unit_price_cents == 2999
    journey.goto(f"/admin/orders/details/?id={order.id}")
    item_row = page.locator("#order-items tr").filter(has_text="Product B")
    expect(item_row).to_contain_text("$29.99")

    # The shopper's own list still shows the price paid.
    page.get_by_role("button", name="Log out").click()  # the admin's own log-out button
    journey.log_in("early@example.com")
    journey.goto("/orders")
    expect(page.locator(".order-items")).to_contain_text("1 \u00d7 Product B at $29.99")
    expect(page.locator(".order .order-total")).to_have_text("$29.99")


def test_shopper_cannot_reach_admin(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    for path in ADMIN_PAGES:
        journey.goto(path)
        assert "/account/login" in page.url, path
    expect(page.get_by_role("status")).to_contain_text("Please log in with a staff account")
    journey.visit("login-required")
    shop.create_user("curious@example.com")
    journey.log_in("curious@example.com")
    expect(page.get_by_role("link", name="Staff admin")).to_have_count(0)
    for path in [*ADMIN_PAGES, "/admin/products/new/", "/admin/users/edit/?id=1"]:
        response = journey.goto(path)
        assert response.status == 403, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    journey.visit("admin-forbidden")
    response = page.request.post(shop.url + "/admin/products/edit/?id=2", form={"price": "0.01", "name": "Product B"})
    assert response.status in (400, 403)
    assert shop.product("Product B").price_cents == 2999


def test_purchase_with_keyboard_alone(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("keys@example.com")
    journey.goto("/account/login")
    journey.tab_to("Email")
    page.keyboard.type("keys@example.com")
    journey.tab_to("Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(shop.url + "/")

    journey.tab_to("Increase quantity of Product A")
    journey.assert_focus_visible()
    journey.snap("keyboard-focus")
    page.keyboard.press("Enter")
    page.keyboard.press("Space")
    journey.tab_to("Increase quantity of Product C")
    page.keyboard.press("Enter")
    expect(page.locator("#order-total")).to_have_text("$79.97")
    journey.tab_to("Buy")
    journey.assert_focus_visible()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/pay/cs_test_"))

    journey.tab_to("Card number")
    page.keyboard.type("4242424242424242")
    page.keyboard.press("Tab")
    page.keyboard.type("12 / 34")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/success/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    journey.visit("keyboard-success")
    [order] = shop.orders("keys@example.com")
    assert order.status == OrderStatus.PAID
    assert order.total_cents == 7997
