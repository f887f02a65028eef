"""Staff journeys of issue 16 in Chromium: a product picture from the admin to the shop page (desktop and
375 px, no layout shift), and the owner's dashboard and an order page with their screenshots."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, PHONE, STAFF_EMAIL, Journey

CARD_OK = "4242 4242 4242 4242"


def _staff_log_in(journey: Journey) -> None:
    page = journey.page
    journey.goto("/admin/")
    page.wait_for_url(re.compile(r"/account/login"))
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def _photo(path: Path) -> Path:
    image = Image.new("RGB", (1200, 900), (236, 201, 75))
    for x in range(300, 900):
        for y in range(250, 650, 40):
            image.putpixel((x, y), (40, 60, 90))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    path.write_bytes(out.getvalue())
    return path


def test_staff_upload_a_picture_and_shoppers_see_it(journey: Journey, tmp_path: Path) -> None:
    page = journey.page
    _staff_log_in(journey)
    product_id = journey.shop.product("Product A").id
    journey.goto(f"/admin/products/edit/?id={product_id}")
    page.get_by_role("link", name="Change the picture").click()  # the seed drew one (issue 22)
    page.wait_for_url(re.compile(rf"/admin/products/picture/{product_id}$"))
    journey.visit("admin-picture-seeded")
    page.get_by_label("Picture (JPEG, PNG or WebP)").set_input_files(str(_photo(tmp_path / "mug.jpg")))
    page.get_by_label("Picture description (alt text)").fill("A yellow mug with blue stripes")
    page.get_by_role("button", name="Upload picture").click()
    expect(page.locator(".alert")).to_contain_text("Picture saved for Product A")
    expect(page.locator("#current-picture")).to_be_visible()
    journey.visit("admin-picture-saved")
    stored = journey.shop.product("Product A")
    assert (stored.image_width, stored.image_height) == (1200, 900)

    journey.goto("/")
    card = page.locator(".product-card").filter(has_text="Product A")
    picture = card.get_by_role("img", name="A yellow mug with blue stripes")
    expect(picture).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 1200", arg=picture.element_handle())
    # The other cards show their (seed-drawn) pictures in the same 4:3 box, so the grid lines up.
    placeholder = page.locator(".product-card").filter(has_text="Product B").locator(".product-picture")
    for width in (1280, PHONE["width"]):
        page.set_viewport_size({"width": width, "height": 900})
        box, empty = picture.bounding_box(), placeholder.bounding_box()
        assert box and empty and abs(box["height"] - box["width"] * 3 / 4) < 1.5, (width, box)
        assert abs(empty["height"] - empty["width"] * 3 / 4) < 1.5, (width, empty)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing overflows the page
    page.set_viewport_size({"width": 1280, "height": 900})
    # No layout shift: the box is reserved from the width/height attributes before the picture arrives.
    # A fresh load (the resizes above count as shifts), with the picture not yet in the browser's cache.
    journey.context.clear_cookies()
    page.route(
        "**/pictures/*", lambda route: route.continue_(headers={**route.request.headers, "cache-control": "no-cache"})
    )
    journey.goto("/")
    shift = page.evaluate(
        """() => new Promise(done => {
             let total = 0;
             new PerformanceObserver(list => { for (const e of list.getEntries()) total += e.value; })
               .observe({type: 'layout-shift', buffered: true});
             setTimeout(() => done(total), 300);
           })"""
    )
    assert shift < 0.01, shift
    journey.visit("shop-with-picture")


def test_owner_dashboard_and_order_page(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    shop.create_user("buyer@example.com")
    journey.log_in("buyer@example.com")
    journey.goto("/")
    page.get_by_role("spinbutton", name="Quantity of Product A").fill("2")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    journey.pay_with(CARD_OK)
    page.wait_for_url(re.compile(r"/success/"))
    journey.log_out()

    _staff_log_in(journey)
    expect(page.locator('[data-figure="paid"]')).to_have_text("1")
    expect(page.locator("svg.revenue-chart rect.bar")).to_have_count(30)
    expect(page.locator("#recent-orders")).to_contain_text("buyer@example.com")
    journey.visit("dashboard")
    [order] = shop.orders("buyer@example.com")
    journey.goto(f"/admin/orders/?search=%23{order.id}")
    expect(page.locator("table.model-list tbody tr")).to_have_count(1)
    journey.goto(f"/admin/orders/details/?id={order.id}")
    expect(page.locator("#order-status")).to_have_text("Paid")
    journey.visit("order-page")
    page.get_by_label("Carrier").fill("UPS")
    page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    page.get_by_role("button", name="Mark shipped").click()
    expect(page.locator("#shipped")).to_contain_text("UPS 1Z999AA10123456784")
    journey.visit("order-page-shipped")

    # With a refund and its notice listed, the order page still fits a phone: wide tables (refunds, emails,
    # timeline) scroll inside their own box, not the page.
    page.get_by_label("Amount").fill("10.00")
    page.get_by_label("Reason").fill("One mug arrived chipped; the customer keeps it")
    page.get_by_role("button", name="Refund").click()
    page.get_by_role("button", name="Yes, refund $10.00").click()  # every refund asks first (issue 22)
    expect(page.locator("#order-refunds")).to_contain_text("$10.00")
    journey.visit("order-page-refunded")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for table in ("#order-refunds", "#order-emails", "#order-timeline"):
        expect(page.locator(f".table-responsive > {table}")).to_have_count(1)
    # The same kind on the other detail pages: a stored event's payload (long ids, no spaces) and a user's
    # address in the page heading wrap instead of widening the page.
    with shop.app.app_context():
        from sqlalchemy import select

        from shopapp.extensions import db
        from shopapp.models import PaymentEvent

        event_id = db.session.scalar(select(PaymentEvent.id).where(PaymentEvent.order_id == order.id).limit(1))
        db.session.remove()
    for path in (f"/admin/payment_events/details/?id={event_id}", f"/admin/users/edit/?id={order.user_id}"):
        journey.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    # ... while at desktop width the labels keep whole words ("Processed At", not "Pr/oc/es/se/d At").
    page.set_viewport_size({"width": 1280, "height": 900})
    journey.goto(f"/admin/payment_events/details/?id={event_id}")
    label_lines = page.evaluate(
        """() => Array.from(document.querySelectorAll('table.searchable tr > td:first-child')).map(td => {
             const range = document.createRange(); range.selectNodeContents(td);
             return [td.innerText.trim(), new Set(Array.from(range.getClientRects()).map(r => r.top)).size];
           })"""
    )
    assert label_lines and all(lines <= len(label.split()) for label, lines in label_lines), label_lines
    page.set_viewport_size(PHONE)
    # The dashboard's latest orders scroll sideways in their box with one line per order (the date in the last,
    # scrolled-away column used to wrap onto four lines, making every row four lines high).
    journey.goto("/admin/")
    row = page.locator("#recent-orders tbody tr").first
    line = page.locator("#recent-orders thead tr").bounding_box()
    box = row.bounding_box()
    assert line and box and box["height"] < 1.5 * line["height"], (box, line)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_zero_decimal_prices_agree_on_the_page_the_live_total_and_stripe(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    with shop.app.app_context():
        from shopapp.extensions import db
        from shopapp.services.products import ProductInput, update_product

        product = shop.product("Product B")
        update_product(product.id, ProductInput(name="Product B", price="500", currency="jpy"), actor="test")
        db.session.remove()
    shop.create_user("yen@example.com")
    journey.log_in("yen@example.com")
    journey.goto("/")
    card = page.locator(".product-card").filter(has_text="Product B")
    expect(card.locator(".product-price")).to_have_text("¥500")  # Babel, on the server
    journey.choose(B=2)
    expect(page.locator("#order-total")).to_have_text("¥1,000")  # Intl in shop.js, with JPY's 0 digits
    journey.choose(A=1)  # a USD product as well: one cart, one currency
    expect(page.locator("#currency-mix")).to_be_visible()
    expect(page.get_by_role("button", name="Buy")).to_be_disabled()
    journey.visit("shop-mixed-currencies")
    journey.choose(A=0)
    expect(page.locator("#currency-mix")).to_be_hidden()
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_"))
    session = shop.stripe.sessions()[re.search(r"(cs_test_[A-Za-z0-9]+)", page.url).group(1)]
    assert (session["amount_total"], session["currency"]) == (1000, "jpy")
