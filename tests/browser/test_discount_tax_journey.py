"""Issue 23 in Chromium: the shopper types a promotion code on the payment page, gives the billing address Stripe
Tax needs, pays, and sees the discount and the tax on the success page and on the order page (the printable
receipt); the receipt email says the same. Screenshots: test-artifacts/screenshots/ (copies in docs/screenshots/).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from shopapp.extensions import db
from shopapp.models import OrderStatus
from shopapp.services import discounts, outbox
from tests.browser.conftest import Journey

EMAIL = "discount-journey@example.com"


def test_a_code_typed_on_the_payment_page_with_tax_reaches_the_receipt(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    app = shop.app
    with app.app_context():  # staff made the code in the admin (tests/staff cover that page); created at Stripe
        coupon = discounts.create_coupon(discounts.CouponInput(name="Spring", percent_off="15"), actor="staff")
        discounts.create_promotion_code(coupon.id, "SPRING15", actor="staff")
        db.session.remove()
    app.config["STRIPE_AUTOMATIC_TAX"] = True  # prices exclude tax (TAX_BEHAVIOR exclusive, the default)
    try:
        shop.create_user(EMAIL)
        journey.log_in(EMAIL)
        journey.choose(A=2, C=1)  # 79.97
        page.get_by_role("button", name="Buy").click()
        page.wait_for_url(re.compile(r"/pay/cs_test_"))
        page.get_by_label("Add promotion code").fill("spring15")
        page.get_by_role("button", name="Apply").click()
        summary = page.get_by_role("table", name="Order summary")
        expect(summary).to_contain_text("SPRING15")
        expect(summary).to_contain_text("$12.00")
        page.get_by_label("Name", exact=True).fill("Ann Lee")
        page.get_by_label("Address line 1").fill("1 Main St")
        page.get_by_label("City").fill("Fresno")
        page.get_by_label("State or region").fill("CA")
        page.get_by_label("Postal code").fill("93650")
        page.get_by_label("Country").select_option("US")
        journey.visit("payment-page-with-code")
        journey.pay_with("4242 4242 4242 4242")
        page.wait_for_url(re.compile(r"/success/\?session_id=cs_test_"))
        shop.wait_for(lambda: shop.orders(EMAIL)[0].status == OrderStatus.PAID, "the paid webhook")
        order = shop.orders(EMAIL)[0]
        # 79.97 - 15 % (12.00) = 67.97; California's 7.25 % on it: 4.92 (Stripe rounds per line).
        assert (order.promotion_code, order.amount_discount_cents) == ("SPRING15", 1200)
        assert order.amount_tax_cents > 0 and order.total_cents == 7997 - 1200 + order.amount_tax_cents
        page.reload()
        totals = page.locator("tfoot")
        expect(totals).to_contain_text("Discount (SPRING15)")
        expect(totals).to_contain_text("Tax")
        journey.visit("success-with-discount-and-tax")
        page.get_by_role("link", name="See your order").click()
        expect(page.locator("tfoot")).to_contain_text("Discount (SPRING15)")
        expect(page.locator("tfoot")).to_contain_text("Tax")
        journey.visit("receipt-with-discount-and-tax")
        assert shop.mail_dir is not None
        with app.app_context():  # the mail worker's job: send what the outbox holds to the shop's SMTP server
            outbox.send_pending()
            db.session.remove()
        body = shop.wait_for(lambda: _receipt_text(shop.mail_dir), "the receipt email")
        assert "Discount (SPRING15): -$12.00" in body and "Tax: $" in body
    finally:
        app.config["STRIPE_AUTOMATIC_TAX"] = False


def _receipt_text(mail_dir) -> str:  # type: ignore[no-untyped-def]
    """The text of the receipt email the shop's SMTP server kept, or "" while none has arrived."""
    import email

    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                text = part.get_payload(decode=True).decode()
                if "Total paid" in text:
                    return text
    return ""
