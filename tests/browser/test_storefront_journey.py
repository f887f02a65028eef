"""Issue 22 in Chromium: the frame, product and footer pages, My orders, the selection through log-in, the
local payment page, and the staff brand, order and refund pages, each checked with axe and photographed."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from shopapp.models import OrderStatus
from tests.browser.conftest import PASSWORD, STAFF_EMAIL, Journey

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
LONG_EMAIL = "a.very.long.name.for.a.shopper.who.likes.long.addresses@subdomain.example-shop-customer.com"


def test_a_visitor_browses_the_frame_and_keeps_the_selection_through_sign_up(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    started = time.monotonic()
    journey.goto("/")
    expect(page.locator("img.product-picture")).to_have_count(3)  # the seed's drawings, not initials
    journey.visit("home-visitor")
    page.get_by_role("link", name="Product B").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Product B")
    journey.visit("product-page")
    for name in ("Contact", "Terms", "Privacy", "Returns"):
        page.get_by_role("navigation", name="Shop information").get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
    journey.visit("footer-page-returns")
    journey.goto("/")
    journey.choose(A=2, C=1)
    page.get_by_role("button", name="Log in to buy").click()
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(LONG_EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # Back on the shop with the same quantities.
    expect(page.get_by_role("spinbutton", name="Quantity of Product A")).to_have_value("2")
    expect(page.get_by_role("spinbutton", name="Quantity of Product C")).to_have_value("1")
    expect(page.locator("#order-total")).to_have_text("$79.97")
    journey.visit("home-selection-kept")
    # A long address stays inside the header at 375 px and 1280 px.
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (width, overflow)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(".account-menu summary").click()
    expect(page.get_by_role("link", name="Account")).to_be_visible()
    journey.visit("account-menu-open")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    expect(page.locator(".test-badge")).to_have_text("Test mode")
    expect(page.locator(".thumb")).to_have_count(2)
    journey.visit("payment-page")
    # The card number is spaced as it is typed.
    page.get_by_label("Card number").press_sequentially("4000000000000002")
    expect(page.get_by_label("Card number")).to_have_value("4000 0000 0000 0002")
    page.get_by_label("Expiry (MM / YY)").fill("1234")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    journey.visit("payment-page-declined")
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    elapsed = time.monotonic() - started
    print(f"\npurchase journey (shop, product, footer pages, sign-up with selection, decline, pay): {elapsed:.1f} s")
    # Back from the success page: the paid page, never "Confirm Form Resubmission".
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    journey.visit("payment-page-back-after-paid")
    journey.goto("/orders")
    expect(page.locator(".order .badge").first).to_have_text("Paid")
    journey.visit("my-orders")
    [order] = shop.orders(LONG_EMAIL)
    assert order.status == OrderStatus.PAID


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_huge_quantity_names_the_limit_and_the_product(journey: Journey, javascript: bool) -> None:
    if not javascript:
        journey.use_context(java_script_enabled=False)
    page, shop = journey.page, journey.shop
    shop.create_user("huge@example.com")
    journey.log_in("huge@example.com")
    journey.goto("/")
    journey.choose(A=999999)
    if javascript:
        expect(page.locator("#order-total")).to_have_text("\u2014")  # no total while a field is invalid
        expect(page.locator("#qty-1-live-error")).to_have_text("You can buy at most 10 of Product A in one order.")
        journey.visit("quantity-too-large-js")
    else:
        page.get_by_role("button", name="Buy").click()
        expect(page.locator("#buy-error")).to_contain_text("You can buy at most 10 of Product A in one order")
        journey.snap("quantity-too-large-no-js")
    assert shop.orders("huge@example.com") == []


def test_abandoned_checkouts_are_collapsed_in_my_orders(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("tries@example.com")
    journey.log_in("tries@example.com")
    for quantities in ({"A": 1}, {"B": 1}, {"C": 1}):
        journey.goto("/")
        journey.choose(**quantities)
        page.get_by_role("button", name="Buy").click()
        page.wait_for_url(re.compile(r"/pay/cs_test_"))
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    journey.goto("/orders")
    expect(page.locator(".order")).to_have_count(1)
    expect(page.locator(".not-completed summary")).to_have_text("2 checkouts not completed (nothing was charged)")
    page.locator(".not-completed summary").click()
    journey.visit("my-orders-not-completed")


def test_staff_brand_order_page_and_refund_confirmation(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("buyer@example.com")
    journey.log_in("buyer@example.com")
    journey.choose(A=1, B=1)
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    journey.pay_with("4000 0000 0000 7726")  # its refunds start pending, as some cards' do at Stripe
    page.wait_for_url(re.compile(r"/success/"))
    [order] = shop.orders("buyer@example.com")
    journey.use_context()  # a new browser for staff
    page = journey.page
    journey.goto("/account/login")
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    journey.goto("/admin/brand/")
    journey.visit("admin-brand")
    page.get_by_label("Shop name").fill("Harbour & Kiln")
    page.get_by_label("Accent colour").fill("#1f5f4a")
    page.get_by_label("New order notices to").fill("orders@harbour-kiln.example")
    page.get_by_role("button", name="Save brand and pages").click()
    expect(page.locator(".alert-success, .alert")).to_contain_text("Brand and pages saved")
    journey.goto("/admin/orders/")
    expect(page.locator(".status-badge").first).to_have_text("Paid")
    journey.visit("admin-orders-list")
    journey.goto(f"/admin/orders/details/?id={order.id}")
    story = "buyer@example.com ordered 1 \u00d7 Product A, 1 \u00d7 Product B"
    expect(page.locator("#order-story")).to_contain_text(story)
    journey.visit("admin-order-page")
    page.get_by_label("Amount").fill("5.00")
    page.get_by_label("Reason").fill("Scratched mug")
    page.get_by_role("button", name="Refund").click()
    expect(page.locator("#refund-confirmation")).to_contain_text("buyer@example.com")
    expect(page.locator("#confirm-amount")).to_have_text("$5.00")
    journey.visit("admin-refund-confirm")
    page.get_by_role("button", name="Yes, refund $5.00").click()
    expect(page.locator("#refund-pending")).to_contain_text("Refund of $5.00 pending")
    journey.visit("admin-order-refund-pending")
    journey.goto("/admin/payment_events/")
    page.get_by_role("link", name=re.compile("View Record|view", re.I)).first.click()
    expect(page.locator("pre.event-payload")).to_be_visible()
    journey.visit("admin-event-payload")
    journey.goto("/")
    expect(page.locator(".brand")).to_have_text("Harbour & Kiln")
    journey.visit("home-rebranded")
