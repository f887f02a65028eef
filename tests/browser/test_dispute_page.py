"""Issue 21 in Chromium: a shopper pays with Stripe's dispute test card (4000 0000 0000 0259), the payment is
disputed, and staff answer from the dispute page: evidence pre-filled from the order, a draft saved, then the
evidence submitted after a confirmation; the dispute is won. Screenshots of the page at desktop and 375 px are
kept in docs/screenshots/ (from test-artifacts/screenshots/, where every journey's shots go)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, SCREENSHOTS, Journey
from tests.browser.test_staff_pages import _staff_log_in

DISPUTE_CARD = "4000 0000 0000 0259"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_staff_answer_a_dispute_and_win_it(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("disputer@example.com")
    journey.log_in("disputer@example.com")
    journey.goto("/")
    page.get_by_role("spinbutton", name="Quantity of Product A").fill("1")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    journey.pay_with(DISPUTE_CARD)
    page.wait_for_url(re.compile(r"/success/"))
    [order] = shop.orders("disputer@example.com")
    shop.wait_for(lambda: shop.orders("disputer@example.com")[0].dispute_standing == "open", "the dispute")
    journey.goto("/orders")
    expect(page.locator(f"#order-{order.id} .dispute-notice")).to_contain_text("Payment disputed")
    journey.log_out()

    _staff_log_in(journey)
    expect(page.locator("#dashboard-disputes")).to_contain_text(f"Order #{order.id}")
    page.locator("#dashboard-disputes").get_by_role("link", name=f"Order #{order.id}").click()
    page.wait_for_url(re.compile(r"/admin/disputes/\d+/$"))
    expect(page.get_by_label("Customer email address")).to_have_value("disputer@example.com")
    expect(page.get_by_label("Product description")).to_contain_text("Product A")
    journey.visit("dispute-page")
    page.get_by_label("Additional information").fill("Delivered and signed for. winning_evidence")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#evidence-state")).to_have_text("staged")
    page.get_by_role("button", name="Submit evidence").click()
    expect(page.locator("#submit-confirmation")).to_be_visible()
    page.get_by_role("button", name="Yes, submit evidence").click()
    expect(page.locator("#evidence-state")).to_have_text("submitted")
    shop.wait_for(lambda: shop.orders("disputer@example.com")[0].dispute_standing == "won", "the won dispute")
    page.reload()
    expect(page.locator("#dispute-status")).to_have_text("won")
    journey.visit("dispute-won")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    DOCS_SCREENSHOTS.mkdir(exist_ok=True)
    for shot in sorted(SCREENSHOTS.glob(f"{journey.name}-*-dispute-*.png")):
        shutil.copy(shot, DOCS_SCREENSHOTS / re.sub(r"^.*?-\d\d-", "", shot.name))
