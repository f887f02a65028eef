"""The shipping notice: queued with the staff's "shipped" mark (one transaction, one message whatever the
repeats), sent over real SMTP with carrier, tracking number and a link to the order page; the shopper's
order page shows the address Checkout collected and the shipped state."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shopapp.models import MailKind, MailStatus, Order, OrderStatus, OutboxMessage
from shopapp.services import outbox, shipping
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, fresh, order_for_session, session_id_from
from tests.mail.conftest import links_in
from tests.mail.mailbox import Mailbox
from tests.support import csrf_token, deliver_webhooks_to, sender_for

ADDRESS = {"name": "Marge Simpson", "line1": "742 Evergreen Terrace", "line2": "", "city": "Springfield",
           "state": "OR", "postal_code": "97403", "country": "US"}  # fmt: skip


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator, mailbox: Mailbox, tmp_path: Path) -> Flask:
    """The mail tests' app, with Checkout collecting a shipping address (SHIPPING_COUNTRIES)."""
    application = app_factory(MAIL_PORT=mailbox.port, MAIL_DEV_DIR=str(mailbox.folder), SHIPPING_COUNTRIES=["US", "CA"])
    deliver_webhooks_to(application, emulator)
    mailbox.sender = sender_for(application)
    return application


@pytest.fixture
def shipped_to(client: FlaskClient, shopper: Any, buy: Callable[..., Any], emulator: Emulator) -> Callable[..., Order]:
    """A PAID order whose shopper gave ADDRESS on the local Stripe service's page."""

    def make(**quantities: int) -> Order:
        order = order_for_session(session_id_from(buy(**(quantities or {"A": 2, "C": 1}))))
        assert emulator.pay(order.stripe_session_id, shipping=ADDRESS).status == 303
        emulator.deliver_pending()
        paid = fresh().get(Order, order.id, populate_existing=True)
        assert paid is not None and paid.status == OrderStatus.PAID
        return paid

    return make


@pytest.fixture
def staff(app: Flask, make_user: Callable[..., Any]) -> Callable[..., Any]:
    """POST as a logged-in staff member with the page's CSRF token."""
    make_user("ann@example.com", staff=True)
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": "ann@example.com", "password": PASSWORD}).status_code in (
        302, 303)  # fmt: skip

    def post(url: str, data: dict[str, Any]) -> Any:
        token = csrf_token(browser.get("/").get_data(as_text=True))
        return browser.post(url, data={**data, "csrf_token": token}, buffered=True)

    return post


def notices() -> list[OutboxMessage]:
    return list(
        fresh().scalars(
            select(OutboxMessage).where(OutboxMessage.kind == MailKind.SHIPPING_NOTICE).order_by(OutboxMessage.id)
        )
    )


def test_marking_shipped_emails_the_shopper_once(app, client, shipped_to, staff, mailbox):
    order = shipped_to()
    outbox.send_pending()  # the welcome and the receipt go first
    assert len(mailbox.wait_for(2, "the welcome and the receipt", "shopper@example.com")) == 2

    response = staff(
        f"/admin/orders/{order.id}/ship/", data={"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}
    )
    assert response.status_code == 303
    # Queued by the staff request, sent by the sender process (here: the mailbox's sender pass).
    notice = mailbox.wait_for(3, "the shipping notice", "shopper@example.com")[-1]
    assert notice.subject == f"Your Tidy Shop order #{order.id} has shipped"
    assert notice.message["Message-ID"] == f"<order-{order.id}-shipped@tidy-shop.local>"
    text, html = notice.text(), notice.html()
    assert f"your order #{order.id} is on its way" in text
    assert "Carrier: UPS" in text and "Tracking number: 1Z999AA10123456784" in text
    assert "742 Evergreen Terrace" in text and "2 x Product A" in text
    assert f"/orders/{order.id}" in links_in(text) and f"/orders/{order.id}" in links_in(html)
    assert "<strong>1Z999AA10123456784</strong>" in html and "Marge Simpson" in html

    # Marked again (the form twice, the bulk action): still one row, nothing more sent.
    staff(f"/admin/orders/{order.id}/ship/", data={"carrier": "DHL", "tracking_number": "X"})
    staff("/admin/orders/action/", data={"action": "ship", "rowid": [str(order.id)]})
    outbox.send_pending()
    [row] = notices()
    assert (row.status, row.order_id, row.recipient) == (MailStatus.SENT, order.id, "shopper@example.com")
    assert len([m for m in mailbox.to("shopper@example.com") if "shipped" in m.subject]) == 1


def test_the_order_page_shows_the_address_then_the_shipped_state(client, shipped_to):
    order = shipped_to()
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    ship_to = re.search(r'id="ship-to">(.*?)</p>', page, re.S).group(1)
    assert "Marge Simpson<br>742 Evergreen Terrace<br>97403 Springfield OR<br>US" in ship_to
    assert "Not shipped yet" in page

    shipping.mark_shipped(order.id, carrier="UPS", tracking_number="1Z999", actor="staff test")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert re.search(
        r'id="shipped">Shipped \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC by UPS, tracking number <strong>1Z999</strong>\.', page
    )
    # Issue 22: the carrier's tracking page (config CARRIER_TRACKING_URLS), and "Shipped" as the shopper's status.
    assert 'href="https://www.ups.com/track?tracknum=1Z999"' in page
    assert 'badge-shipped">Shipped<' in page and "shipped by UPS</li>" in page


def test_an_order_that_cannot_ship_queues_no_notice(app, client, shopper, buy, staff):
    order = order_for_session(session_id_from(buy(A=1)))  # placed, never paid
    assert staff(f"/admin/orders/{order.id}/ship/", data={"carrier": "UPS"}).status_code == 409
    assert notices() == []
    assert fresh().get(Order, order.id, populate_existing=True).shipped_at is None


def test_smtp_down_the_mark_stands_and_the_notice_waits(app, shipped_to, mailbox):
    order = shipped_to()
    mailbox.stop()
    shipping.mark_shipped(order.id, carrier="", tracking_number="", actor="staff test")
    assert outbox.send_pending().sent == 0
    [row] = notices()
    assert row.status == MailStatus.PENDING and "unreachable" in (row.last_error or "")
    assert fresh().get(Order, order.id, populate_existing=True).shipped_at is not None
    mailbox.start()
    app.config["MAIL_RETRY_BASE_SECONDS"] = 0
    session = fresh()  # the backoff has passed (without waiting for it)
    session.execute(OutboxMessage.__table__.update().values(next_attempt_at=row.created_at))
    session.commit()
    assert outbox.send_pending().sent == 3  # the welcome, the receipt and the notice
    arrived = mailbox.wait_for(3, "the mail held back while SMTP was down", "shopper@example.com")
    [notice] = [m for m in arrived if "shipped" in m.subject]
    assert "Carrier" not in notice.text() and "Tracking number" not in notice.text()
