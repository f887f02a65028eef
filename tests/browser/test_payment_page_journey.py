"""The local Stripe service's payment page in Chromium: behaves like Stripe Checkout (issue 14)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from shopapp.models import OrderStatus
from tests.browser.conftest import Journey


def test_card_fields_follow_the_method_and_back_after_paying_leads_to_the_shop(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    email = "checkout-page@example.com"
    shop.create_user(email)
    journey.log_in(email)
    journey.choose(A=2, C=1)
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    summary = page.get_by_role("table", name="Order summary")
    expect(summary.get_by_role("row").last).to_contain_text("Total due")
    expect(summary.get_by_role("row").last).to_contain_text("$79.97")
    expect(page.get_by_role("button", name="Pay $79.97")).to_be_visible()

    card_number = page.get_by_label("Card number")
    page.get_by_text("Test options").click()  # test-only methods sit behind a disclosure (issue 22)
    page.get_by_label("Bank debit (delayed; later succeeds)").check()
    expect(card_number).to_be_hidden()  # bank debit needs no card
    page.get_by_label("Card", exact=True).check()
    expect(card_number).to_be_visible()
    card_number.fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM / YY)").fill("1230")  # no slash, as shoppers type it
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay $79.97").click()
    page.wait_for_url(re.compile(r"/success/\?session_id=cs_test_"))
    shop.wait_for(lambda: shop.orders(email)[0].status == OrderStatus.PAID, "the paid webhook")

    page.go_back()  # Back after paying: not a dead end
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    journey.visit("stripe-session-complete")
    page.get_by_role("link", name=re.compile("^Return to ")).click()
    page.wait_for_url(re.compile(r"/success/\?session_id=cs_test_"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
