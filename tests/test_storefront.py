"""Issue 22: a shop that looks and feels real (brand, frame, product and footer pages, My orders, mails)."""

from __future__ import annotations

import re

from sqlalchemy import select

from shopapp.models import MailKind, OrderStatus, OutboxMessage, Product
from shopapp.services import catalog, mail
from tests.conftest import PASSWORD, fresh, order_for_session, session_id_from
from tests.support import csrf_token

BRAND_FORM = {
    "shop_name": "Harbour & Kiln",
    "accent_color": "#1f5f4a",
    "contact_email": "Hello@Harbour-Kiln.example",
    "order_email": "orders@harbour-kiln.example",
    "postal_address": "Harbour & Kiln\n3 Quay Lane\nFalmouth TR11 3HL",
    "footer_line": "Thrown, glazed and packed in Cornwall.",
    "contact_page": "",
    "terms_page": "",
    "privacy_page": "",
    "returns_page": "",
}


def _staff(make_user, auth):
    make_user("owner@example.com", staff=True)
    auth.logout()
    auth.login("owner@example.com")


def _save_brand(client, **changes):
    page = client.get("/admin/brand/").get_data(as_text=True)
    return client.post("/admin/brand/", data={**BRAND_FORM, **changes, "csrf_token": csrf_token(page)})


def test_signup_refuses_a_local_part_over_64_octets(client, products):
    too_long = "a" * 65 + "@example.com"
    response = client.post("/account/signup", data={"email": too_long, "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400
    assert "at most 64 characters (1 too many)" in response.get_data(as_text=True)
    ok = client.post(
        "/account/signup", data={"email": "a" * 64 + "@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert ok.status_code == 302


def test_the_selection_survives_log_in(client, products, make_user):
    a, b = products["Product A"].id, products["Product B"].id
    make_user("keeper@example.com")
    # "Log in to buy" is a GET of the shop's form (no JavaScript, no session needed).
    response = client.get(f"/buy/login?qty-{a}=2&qty-{b}=0")
    assert response.status_code == 302
    login_url = response.headers["Location"]
    assert login_url.startswith("/account/login?next=")
    login_page = client.get(login_url).get_data(as_text=True)
    # The sign-up link on the log-in page carries the same way back.
    assert f"qty-{a}%3D2" in login_page.split("Create an account")[0].rsplit("href=", 1)[1]
    logged_in = client.post(login_url, data={"email": "keeper@example.com", "password": PASSWORD})
    assert logged_in.status_code == 302
    shop = client.get(logged_in.headers["Location"]).get_data(as_text=True)
    assert re.search(rf'id="qty-{a}"[^>]*value="2"', shop)
    assert re.search(rf'id="qty-{b}"[^>]*value="0"', shop)


def test_the_selection_survives_sign_up(client, products):
    a = products["Product C"].id
    back = client.get(f"/buy/login?qty-{a}=3").headers["Location"]
    next_url = back.split("next=", 1)[1]
    response = client.post(
        f"/account/signup?next={next_url}",
        data={"email": "new@example.com", "password": PASSWORD, "confirm": PASSWORD},
    )
    shop = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(rf'id="qty-{a}"[^>]*value="3"', shop)


def test_abandoned_checkouts_are_collapsed_not_listed_as_orders(client, shopper, buy, emulator):
    first = order_for_session(session_id_from(buy(A=1)))
    session_id_from(buy(B=2))  # a changed cart closes the first checkout
    page = client.get("/orders").get_data(as_text=True)
    assert fresh().get(type(first), first.id).status in (OrderStatus.CANCELED, OrderStatus.EXPIRED)
    listed = page.split('class="not-completed"')[0]
    assert "Canceled" not in listed and "Expired" not in listed
    assert "1 checkout not completed (nothing was charged)" in page
    assert "1 &times; Product A" in page.split('class="not-completed"')[1]


def test_each_product_has_its_own_page(client, products, db):
    product = products["Product B"]
    page = client.get(f"/products/{product.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Product B</h1>" in html and "$29.99" in html and f'name="qty-{product.id}"' in html
    assert f'href="/products/{product.id}"' in client.get("/").get_data(as_text=True)
    fresh().execute(db.update(Product).where(Product.id == product.id).values(active=False))
    db.session.commit()
    assert client.get(f"/products/{product.id}").status_code == 404
    assert client.get("/products/99999").status_code == 404


def test_footer_pages_have_default_text_and_staff_markdown_is_sanitised(client, products, make_user, auth):
    for slug in ("contact", "terms", "privacy", "returns"):
        assert client.get(f"/pages/{slug}").status_code == 200
    assert client.get("/pages/other").status_code == 404
    assert "30 days" in client.get("/pages/returns").get_data(as_text=True)
    _staff(make_user, auth)
    hostile = "## Returns\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) and **60 days**."
    assert _save_brand(client, returns_page=hostile).status_code == 303
    page = client.get("/pages/returns").get_data(as_text=True)
    assert "<h2>Returns</h2>" in page and "<strong>60 days</strong>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, never run
    assert 'href="javascript:' not in page


def test_brand_settings_frame_every_page_and_refuse_unreadable_colours(client, products, make_user, auth):
    _staff(make_user, auth)
    assert _save_brand(client).status_code == 303
    home = client.get("/").get_data(as_text=True)
    assert "Harbour &amp; Kiln" in home and "3 Quay Lane" in home and "Thrown, glazed and packed in Cornwall." in home
    assert "Hello@harbour-kiln.example" in home  # the domain normalised to lower case
    css_url = re.search(r'href="(/brand\.css\?v=[0-9a-f]+)"', home).group(1)
    css = client.get(css_url)
    assert "--brand: #1f5f4a" in css.get_data(as_text=True) and css.cache_control.immutable
    refused = _save_brand(client, accent_color="#f0e000")
    assert refused.status_code == 400
    assert "buttons need at least 4.5:1" in refused.get_data(as_text=True)
    assert _save_brand(client, accent_color="blue").status_code == 400


def test_a_paid_order_tells_the_owner_once_through_the_outbox(client, products, make_user, auth, paid_order, emulator):
    _staff(make_user, auth)
    assert _save_brand(client).status_code == 303
    auth.logout()
    auth.login("shopper@example.com")
    order = paid_order(A=1)
    emulator.deliver_pending()  # duplicates change nothing
    rows = fresh().scalars(select(OutboxMessage).where(OutboxMessage.kind == MailKind.NEW_ORDER)).all()
    assert [(r.recipient, r.order_id) for r in rows] == [("orders@harbour-kiln.example", order.id)]
    composed = mail.compose(rows[0])
    assert composed.subject == f"New paid order #{order.id}: $19.99"
    assert "shopper@example.com" in composed.text and f"/admin/orders/details/?id={order.id}" in composed.text


def test_no_owner_notice_without_an_order_address(paid_order):
    paid_order(A=1)
    assert fresh().scalars(select(OutboxMessage).where(OutboxMessage.kind == MailKind.NEW_ORDER)).all() == []


def test_the_receipt_names_the_shop_its_address_and_the_paid_time(app, paid_order):
    app.config["SHOP_TIMEZONE"] = "Europe/London"
    order = paid_order(A=2, C=1)
    row = fresh().scalar(select(OutboxMessage).where(OutboxMessage.kind == MailKind.ORDER_RECEIPT))
    composed = mail.compose(row)
    assert re.search(r"paid \d{4}-\d{2}-\d{2} \d{2}:\d{2} (GMT|BST)", composed.text)
    assert "12 Harbour Street" in composed.text and "hello@tidy-shop.example" in composed.text
    assert "Sold by Tidy Shop" in composed.html
    page = fresh().get(type(order), order.id)
    assert page.status == OrderStatus.PAID


def test_seed_draws_pictures_once_and_keeps_the_catalogue(app, runner):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0 and "Drew pictures for 3 demo product(s)." in first.output
    rows = fresh().execute(select(Product.name, Product.price_cents, Product.image_name)).all()
    assert sorted((name, price) for name, price, _ in rows) == [(n, p) for n, _, p in catalog.DEMO_PRODUCTS]
    assert all(image for _, _, image in rows)
    again = runner.invoke(args=["seed"])
    assert again.exit_code == 0 and "Drew" not in again.output and "0 created, 3 already present" in again.output
    assert fresh().execute(select(Product.name, Product.price_cents, Product.image_name)).all() == rows
