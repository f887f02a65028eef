"""Issue 22 in Chromium, in German: the footer's switch, the shop, a product, sign-up with a form error, the
payment page (its Checkout Session in locale "de", product pictures in the summary), the success page and the
order page naming the card; each page checked with axe and photographed at 1280 and 375 px."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Journey

CARD_OK = "4242 4242 4242 4242"


def test_a_shopper_buys_in_german(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    journey.goto("/")
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsere Produkte")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    journey.visit("de-home")
    page.get_by_role("link", name="Product B").click()
    expect(page.get_by_role("button", name="Zum Kaufen anmelden")).to_be_visible()
    journey.visit("de-product-page")
    journey.goto("/account/signup")
    page.get_by_label("E-Mail").fill("kunde@example.com")
    page.get_by_label("Passwort", exact=True).fill(PASSWORD)
    page.get_by_label("Passwort wiederholen").fill("something else entirely")
    page.get_by_role("button", name="Konto erstellen").click()
    expect(page.locator(".field-errors")).to_contain_text("Die Passwörter müssen übereinstimmen.")
    journey.visit("de-signup-error")
    page.get_by_label("Passwort", exact=True).fill(PASSWORD)
    page.get_by_label("Passwort wiederholen").fill(PASSWORD)
    page.get_by_role("button", name="Konto erstellen").click()
    page.wait_for_url(shop.url + "/")
    expect(page.locator(".flash")).to_have_text("Willkommen! Ihr Konto ist bereit.")
    page.get_by_role("spinbutton", name="Menge von Product A").fill("2")
    expect(page.get_by_role("button", name="Kaufen")).to_be_enabled()
    page.get_by_role("button", name="Kaufen").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    [session] = [s for s in shop.stripe.sessions().values() if s["status"] == "open"]
    assert session["locale"] == "de"
    expect(page.locator("img.thumb")).to_have_count(1)  # Product A's picture, from the shop
    journey.visit("de-payment-page")
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Vielen Dank! Ihre Zahlung ist eingegangen.")
    journey.visit("de-success")
    [order] = shop.orders("kunde@example.com")
    journey.goto(f"/orders/{order.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Bestellung Nr. {order.id}")

    def card_shown() -> bool:
        page.reload()
        return "Zahlungsmethode: Visa mit Endziffern 4242" in page.content()

    shop.wait_for(card_shown, "the card on the order page (its charge.succeeded event)")
    journey.visit("de-order-page")
    # Back to English with the same switch.
    page.get_by_role("navigation", name="Sprache").get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Order #{order.id}")
