"""In Chromium: quantity messages as they are typed, "+" disabled at the maximum, and the order page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Journey

CARD_OK = "4242 4242 4242 4242"


def test_quantity_messages_as_typed_and_plus_disabled_at_max(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("typist@example.com")
    journey.log_in("typist@example.com")
    field = page.get_by_role("spinbutton", name="Quantity of Product A")
    product_id = shop.product("Product A").id
    note = page.locator(f"#qty-{product_id}-live-error")
    plus = page.get_by_role("button", name="Increase quantity of Product A")
    buy = page.get_by_role("button", name="Buy")

    field.fill("11")
    expect(note).to_have_text("You can buy at most 10 of Product A in one order.")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(buy).to_be_disabled()
    field.fill("1.5")
    expect(note).to_have_text("Please enter a whole number of items.")
    field.fill("9")
    expect(note).to_have_text("")
    expect(plus).to_be_enabled()
    plus.click()
    expect(field).to_have_value("10")
    expect(plus).to_be_disabled()  # looks and is disabled at the maximum
    expect(buy).to_be_enabled()
    journey.visit("quantity-hints")


def test_success_page_links_to_the_order_page(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("receipt@example.com")
    journey.log_in("receipt@example.com")
    page.get_by_role("spinbutton", name="Quantity of Product B").fill("2")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    page.get_by_role("link", name="See your order").click()
    page.wait_for_url(re.compile(r"/orders/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Order #")
    expect(page.locator(".order-history")).to_contain_text("paid")
    journey.visit("order-page")
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name="Print receipt")).to_be_hidden()
    page.emulate_media(media="screen")
    page.get_by_role("link", name="My orders", exact=True).click()
    expect(page.locator(".order").first.locator(".badge")).to_have_text("Paid")
