"""Stripe Tax and paid invoices end to end (issue 23), through the real SDK and the local Stripe service in Stripe
Tax's test mode (a registration for California at 7.25 %), at the three webhook API versions.

- Tax on (STRIPE_AUTOMATIC_TAX), exclusive or inclusive prices (TAX_BEHAVIOR): the session asks for it, Stripe
  computes it from the billing address, the order records and shows it.
- Tax off while the account's Stripe Tax default is "enabled when possible": the shop says `enabled=false`, so
  Stripe adds nothing and the order is paid as priced.
- STRIPE_INVOICE_CREATION: Stripe's paid invoice (hosted page and PDF) is linked from the order page and receipt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from shopapp.extensions import db
from shopapp.models import OrderStatus, OutboxMessage, Product
from shopapp.services import mail
from stripe_emulator import Clock, Emulator
from stripe_emulator.taxes import Registration, TaxSettings
from tests.conftest import WEBHOOK_SECRET, fresh, order_for_session, session_id_from
from tests.payments.stripe_shapes import VERSIONS
from tests.staff.conftest import fresh_order
from tests.support import deliver_webhooks_to

CALIFORNIA = {
    "name": "Ann Lee",
    "line1": "1 Main St",
    "city": "Fresno",
    "state": "CA",
    "postal_code": "93650",
    "country": "US",
}


@pytest.fixture(params=VERSIONS)
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The local Stripe service with Stripe Tax set up for California (7.25 %) and its account default on."""
    tax = TaxSettings((Registration("US", "CA", Decimal("7.25")),), checkout_default="enabled_when_possible")
    emu = Emulator(
        webhook_url="http://shop.test/webhook/",
        webhook_secret=WEBHOOK_SECRET,
        async_delay=None,
        clock=Clock(start=time.time()),
        api_version=request.param,
        tax=tax,
    )
    yield emu
    emu.close()


@pytest.mark.parametrize(("behavior", "tax", "total"), [("exclusive", 580, 7997 + 580), ("inclusive", 540, 7997)])
def test_tax_the_shop_asks_for_is_computed_by_stripe_recorded_and_shown(
    emulator: Emulator, client: Any, shopper: Any, buy: Any, behavior: str, tax: int, total: int
) -> None:
    db.session.execute(db.update(Product).where(Product.name == "Product A").values(tax_code="txcd_99999999"))
    db.session.commit()
    session_id = session_id_from(buy(A=2, C=1))
    sent = emulator.sessions[session_id]
    assert sent["automatic_tax"]["enabled"] is True
    with emulator.store.lock:  # each price carries the shop's tax behaviour, each product its tax code
        lines = [(li["price"]["tax_behavior"], li["_tax_code"]) for li in emulator.store.line_items[session_id]]
    assert lines == [(behavior, "txcd_99999999"), (behavior, None)]
    assert emulator.pay(session_id, billing=CALIFORNIA).status == 303
    emulator.deliver_pending()
    order = fresh_order(order_for_session(session_id).id)
    assert (order.status, order.needs_review) == (OrderStatus.PAID, False), order.review_reason
    assert (order.amount_tax_cents, order.total_cents, order.tax_behavior) == (tax, total, behavior)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert ("Tax (included)" if behavior == "inclusive" else "Tax") in page


@pytest.fixture
def app(request: pytest.FixtureRequest, app_factory: Callable[..., Flask], emulator: Emulator) -> Flask:
    """The shop with tax settings from the test's `behavior` parameter (absent: tax off, invoices on)."""
    callspec = getattr(request.node, "callspec", None)
    behavior = callspec.params.get("behavior") if callspec else None
    if behavior:
        settings: dict[str, Any] = {"STRIPE_AUTOMATIC_TAX": True, "TAX_BEHAVIOR": behavior}
    else:
        settings = {"STRIPE_AUTOMATIC_TAX": False, "STRIPE_INVOICE_CREATION": True}
    application = app_factory(**settings)
    deliver_webhooks_to(application, emulator)
    return application


def test_an_account_default_adds_no_tax_because_the_shop_says_no(
    emulator: Emulator, client: Any, shopper: Any, buy: Any
) -> None:
    session_id = session_id_from(buy(A=2, C=1))
    assert emulator.sessions[session_id]["automatic_tax"]["enabled"] is False  # sent explicitly
    assert emulator.pay(session_id, billing=CALIFORNIA).status == 303
    emulator.deliver_pending()
    order = fresh_order(order_for_session(session_id).id)
    assert (order.status, order.needs_review, order.amount_tax_cents, order.total_cents) == (
        OrderStatus.PAID,
        False,
        0,
        7997,
    )


def test_a_paid_invoice_is_linked_from_the_order_page_and_receipt(
    emulator: Emulator, client: Any, shopper: Any, buy: Any
) -> None:
    session_id = session_id_from(buy(A=1))
    assert emulator.sessions[session_id]["invoice_creation"]["enabled"] is True
    assert emulator.pay(session_id).status == 303
    emulator.deliver_pending()
    order = fresh_order(order_for_session(session_id).id)
    assert order.status == OrderStatus.PAID and order.stripe_invoice_id
    assert order.invoice_url and order.invoice_pdf_url
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "View your invoice" in page and order.invoice_url in page
    receipt = fresh().scalar(db.select(OutboxMessage).where(OutboxMessage.dedupe_key == f"order-{order.id}-receipt"))
    # The receipt may be composed before the invoice arrives; composed now, it links the invoice.
    assert order.invoice_url in mail.compose(receipt).text
