"""The eight shopper and staff journeys of issue 6, in Chromium against the live shop and Stripe service."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from shopapp.models import OrderStatus
from tests.browser.conftest import Journey

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
    expect(page.get_by_role("heading", name="Pay 79.97 USD")).to_be_visible()
    journey.visit("card-page")
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/\?session_id=cs_test_"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(page.locator(".order-total")).to_have_text("$79.97")
    journey.visit("success")
    page.get_by_role("link", name="Back to the shop").click()
    order_card = page.locator(".order").first
    expect(order_card.locator(".badge")).to_have_text("Paid")
    expect(order_card).to_contain_text("$79.97")
    journey.visit("my-orders-paid")
    [order] = journey.shop.orders("new@example.com")
    assert order.status == OrderStatus.PAID
    assert order.total_cents == 7997
