"""Issue 21, disputes and early fraud warnings: the journeys on the local Stripe service, end to end.

Before this issue the shop subscribed to no `charge.dispute.*` event: a disputed, then lost order stayed "Paid",
refundable and shippable, and nobody was told. Each test below fails without the change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from shopapp.extensions import db
from shopapp.models import (
    Dispute,
    EarlyFraudWarning,
    EventOutcome,
    EvidenceState,
    MailKind,
    Order,
    OrderStatus,
    OutboxMessage,
    PaymentEvent,
)
from shopapp.models.base import utcnow
from shopapp.services import data_rights, disputes, operations, refunds, shipping
from shopapp.services.webhooks import SUBSCRIBED_EVENTS
from stripe_emulator import Emulator
from stripe_emulator.disputes import DISPUTE_FEE
from tests.conftest import fresh
from tests.staff.conftest import fresh_order

FRAUDULENT, NOT_RECEIVED, INQUIRY, WARNING = (
    "4000000000000259",
    "4000000000002685",
    "4000000000001976",
    "4000000000005423",
)
TOTAL = 7997


@pytest.fixture
def disputed_order(place_order: Callable[..., Order], emulator: Emulator) -> Callable[..., Order]:
    """Pay an order with a test card (the dispute cards dispute it right after), events delivered."""

    def make(card: str = FRAUDULENT) -> Order:
        order = place_order(A=2, C=1)
        assert emulator.pay(order.stripe_session_id, card=card).status == 303
        emulator.deliver_pending()
        return fresh_order(order.id)

    return make


def _dispute_row(order_id: int) -> Dispute:
    row = fresh().scalar(select(Dispute).where(Dispute.order_id == order_id))
    assert row is not None
    return row


def _mails(order_id: int, kind: MailKind) -> list[OutboxMessage]:
    return list(
        fresh().scalars(select(OutboxMessage).where(OutboxMessage.order_id == order_id, OutboxMessage.kind == kind))
    )


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _evidence_form(staff_client: FlaskClient, dispute_id: int) -> dict[str, str]:
    """The dispute page's form fields as the browser would send them (pre-filled values included)."""
    page = staff_client.get(f"/admin/disputes/{dispute_id}/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', html))
    fields.update(
        {
            name: value
            for name, value in re.findall(r'<textarea[^>]*name="(\w+)"[^>]*>\s*([^<]*)</textarea>', html, re.S)
        }
    )
    fields.update({m: v for m, v in re.findall(r'<input[^>]*id="(\w+)"[^>]*name="\w+"[^>]*value="([^"]*)"', html)})
    fields.pop("save_draft", None)
    fields.pop("submit_evidence", None)
    fields["csrf_token"] = _csrf(html)
    return fields


def _dispute_keys(emulator: Emulator) -> set[str]:
    """The idempotency keys the shop sent with evidence: one per staged draft or submission."""
    return {k["key"] for k in emulator.idempotency_keys() if k["path"].startswith("/v1/disputes/")}


def test_the_shop_subscribes_to_every_dispute_and_warning_event() -> None:
    assert {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "radar.early_fraud_warning.created",
        "radar.early_fraud_warning.updated",
    } <= set(SUBSCRIBED_EVENTS)


def test_a_dispute_holds_refund_and_shipping_and_tells_staff_once(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, client: FlaskClient, emulator: Emulator
) -> None:
    order = disputed_order(FRAUDULENT)
    assert order.status == OrderStatus.PAID
    # The checkout sent the configured statement descriptor suffix; Stripe put it on the charge.
    (charge,) = [c for c in emulator.store.charges.values() if c["payment_intent"] == order.stripe_payment_intent_id]
    assert charge["statement_descriptor_suffix"] == "TIDY SHOP"
    assert order.dispute_standing == "open" and order.dispute_due_by is not None
    assert not order.is_shippable and order.hold_reason is not None
    row = _dispute_row(order.id)
    assert (row.reason, row.amount_cents, row.withdrawn_cents, row.withdrawn_fee_cents) == (
        "fraudulent",
        TOTAL,
        TOTAL,
        DISPUTE_FEE,
    )
    assert refunds.remaining_refundable_cents(fresh(), fresh_order(order.id)) == 0
    with pytest.raises(refunds.RefundError) as refused:
        refunds.request_refund(order.id, "1.00", "asked", requested_by="staff ann@example.com", sequence=1)
    assert refused.value.status == 409 and "disputed" in str(refused.value)
    with pytest.raises(shipping.ShippingError) as held:
        shipping.mark_shipped(order.id, actor="staff ann@example.com")
    assert "disputed" in str(held.value)
    assert len(_mails(order.id, MailKind.DISPUTE_OPENED)) == 1
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "Disputed: respond by" in page
    listing = staff_client.get("/admin/orders/").get_data(as_text=True)
    assert "dispute-badge" in listing and "Disputed: respond by" in listing
    dashboard = staff_client.get("/admin/").get_data(as_text=True)
    assert "Open disputes" in dashboard and f"Order #{order.id}" in dashboard
    # The shopper sees it on their orders and on the order's page.
    assert "Payment disputed" in client.get("/orders").get_data(as_text=True)
    assert "Payment disputed" in client.get(f"/orders/{order.id}").get_data(as_text=True)
    # Every event again, twice: still one dispute, one mail, the money counted once.
    for event in emulator.events():
        if event["type"].startswith("charge.dispute."):
            emulator.redeliver(event["id"])
            emulator.redeliver(event["id"])
    assert len(_mails(order.id, MailKind.DISPUTE_OPENED)) == 1
    assert _dispute_row(order.id).withdrawn_cents == TOTAL


def test_a_disputed_order_is_held_in_the_bulk_action_and_on_its_page(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, staff_post: Callable[..., Any]
) -> None:
    """Newcomer's fault 1: the bulk "Mark shipped" said "Not paid" and the page "Ready to ship" beside the hold."""
    order = disputed_order(FRAUDULENT)
    assert order.hold_reason is not None
    response = staff_post("/admin/orders/action/", data={"action": "ship", "rowid": [str(order.id)]})
    assert response.status_code == 302
    message = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Not shipped: #{order.id} ({order.hold_reason})" in message and "Not paid" not in message
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "Ready to ship" not in page and 'id="ship-form"' not in page
    assert fresh_order(order.id).shipped_at is None


ADDRESS = '{"address": {"city": "Bristol", "country": "GB", "line1": "1 Quay St"}, "name": "Sam Shopper"}'


@pytest.mark.parametrize(
    ("language", "held", "promise"),
    [
        ("en", "We hold the order until the bank decides", "we will email you when it leaves us"),
        ("de", "Wir halten die Bestellung zurück", "Wir schreiben Ihnen, sobald die Sendung"),
    ],
)
def test_the_shopper_reads_one_story_of_a_disputed_order(
    disputed_order: Callable[..., Order], client: FlaskClient, language: str, held: str, promise: str
) -> None:
    """Newcomer's fault 4: the shopper read that the order is held and that it will ship (or that a shipped
    order is held), on /orders and on the order's page, in English and German."""
    order = disputed_order(FRAUDULENT)
    db.session.execute(update(Order).where(Order.id == order.id).values(shipping_address=ADDRESS, updated_at=utcnow()))
    db.session.commit()
    headers = {"Accept-Language": language}
    for path in ("/orders", f"/orders/{order.id}"):
        page = client.get(path, headers=headers).get_data(as_text=True)
        assert held in page and promise not in page, path
    # Shipped before the bank questioned the payment: nothing is held any more, and the notice does not say so.
    db.session.execute(update(Order).where(Order.id == order.id).values(shipped_at=utcnow(), updated_at=utcnow()))
    db.session.commit()
    for path in ("/orders", f"/orders/{order.id}"):
        page = client.get(path, headers=headers).get_data(as_text=True)
        assert held not in page and "dispute-notice" in page, path


@pytest.mark.parametrize(("text", "standing"), [("winning_evidence", "won"), ("losing_evidence", "lost")])
def test_evidence_from_the_admin_page_decides_the_dispute(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, emulator: Emulator, text: str, standing: str
) -> None:
    order = disputed_order(FRAUDULENT)
    row = _dispute_row(order.id)
    form = _evidence_form(staff_client, row.id)
    assert form["customer_email_address"] == "shopper@example.com"
    assert "Product A" in form["product_description"]
    assert "Order timeline" in form["uncategorized_text"]
    # Save draft: staged at Stripe with submit=false; a double click sends one request.
    draft = {**form, "uncategorized_text": "draft text", "save_draft": "Save draft"}
    assert staff_client.post(f"/admin/disputes/{row.id}/", data=draft).status_code == 303
    assert staff_client.post(f"/admin/disputes/{row.id}/", data=draft).status_code == 303
    assert _dispute_row(order.id).evidence_state == EvidenceState.STAGED
    assert len(_dispute_keys(emulator)) == 1 and len(emulator.events("charge.dispute.updated")) == 1
    form = _evidence_form(staff_client, row.id)
    # Submit: first a confirmation, then the evidence goes to Stripe once.
    submit = {**form, "uncategorized_text": text, "submit_evidence": "Submit evidence"}
    confirm = staff_client.post(f"/admin/disputes/{row.id}/", data=submit)
    assert confirm.status_code == 200 and "Submit this evidence to the bank?" in confirm.get_data(as_text=True)
    assert len(_dispute_keys(emulator)) == 1
    assert staff_client.post(f"/admin/disputes/{row.id}/", data={**submit, "confirm": "yes"}).status_code == 303
    again = staff_client.post(f"/admin/disputes/{row.id}/", data={**submit, "confirm": "yes"})
    assert again.status_code == 409
    assert len(_dispute_keys(emulator)) == 2
    emulator.deliver_pending()
    after = fresh_order(order.id)
    assert after.dispute_standing == standing
    assert _dispute_row(order.id).evidence_state == EvidenceState.SUBMITTED
    if standing == "won":
        assert after.dispute_lost_cents == 0 and after.is_shippable
        assert refunds.remaining_refundable_cents(fresh(), after) == TOTAL
    else:
        assert after.dispute_lost_cents == TOTAL + DISPUTE_FEE
        assert refunds.remaining_refundable_cents(fresh(), after) == 0
    assert len(_mails(order.id, MailKind.DISPUTE_CLOSED)) == 1


def test_after_submitting_evidence_the_lists_stop_asking_for_a_response(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, emulator: Emulator
) -> None:
    """Newcomer's fault 3: the orders list, dashboard and disputes list kept saying "respond by" after submission."""
    order = disputed_order(FRAUDULENT)
    row = _dispute_row(order.id)
    lists = ("/admin/orders/", "/admin/", "/admin/disputes/")
    for path in lists:
        assert "espond by" in staff_client.get(path).get_data(as_text=True), path
    form = _evidence_form(staff_client, row.id)
    submit = {
        **form,
        "uncategorized_text": "Delivered, signed for.",
        "submit_evidence": "Submit evidence",
        "confirm": "yes",
    }
    assert staff_client.post(f"/admin/disputes/{row.id}/", data=submit).status_code == 303
    emulator.deliver_pending()
    assert fresh_order(order.id).dispute_open
    for path in lists:
        page = staff_client.get(path).get_data(as_text=True)
        assert "espond by" not in page, path
        assert "vidence submitted, awaiting the card issuer&#39;s decision" in page, path
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    flag = re.search(r'id="dispute-flag">(.*?)</div>', page, re.S)
    assert flag and "Disputed: evidence submitted, awaiting the card issuer&#39;s decision" in flag.group(1)


def test_the_evidence_receipt_adds_up_to_what_was_charged(
    disputed_order: Callable[..., Order], staff_client: FlaskClient
) -> None:
    """Newcomer's fault 5: the pre-filled receipt listed the items and the total, but not the shipping line (nor
    discount or tax), so it did not add up to the amount charged."""
    order = disputed_order(FRAUDULENT)
    charged = {"amount_discount_cents": 500, "promotion_code": "SAVE5", "amount_shipping_cents": 495,
               "shipping_rate_name": "Standard", "amount_tax_cents": 100, "tax_behavior": "exclusive",
               "total_cents": TOTAL - 500 + 495 + 100}  # fmt: skip
    db.session.execute(update(Order).where(Order.id == order.id).values(**charged))
    db.session.commit()
    receipt = _evidence_form(staff_client, _dispute_row(order.id).id)["uncategorized_text"]
    receipt = receipt.split("Order timeline")[0]
    for line in (
        "total $80.92",
        "subtotal $79.97",
        "discount (SAVE5) -$5.00",
        "shipping (Standard) $4.95",
        "tax $1.00",
    ):
        assert line in receipt, receipt


def test_past_due_without_evidence_is_lost_and_reminded_once(
    disputed_order: Callable[..., Order], emulator: Emulator, runner: Any
) -> None:
    order = disputed_order(NOT_RECEIVED)
    row = _dispute_row(order.id)
    for _ in range(2):  # idempotent: a second cron run queues nothing more
        result = runner.invoke(args=["payments", "dispute-reminders"])
        assert result.exit_code == 0, result.output
    # Due in 7 days: nothing yet.
    assert _mails(order.id, MailKind.DISPUTE_DUE_SOON) == []
    # Two days before the due date (the shop's clock), twice: one reminder.
    assert row.due_by is not None
    assert [disputes.send_due_reminders(now=row.due_by - timedelta(days=2)) for _ in range(2)] == [1, 0]
    assert len(_mails(order.id, MailKind.DISPUTE_DUE_SOON)) == 1
    emulator.advance_dispute(row.stripe_dispute_id)
    emulator.deliver_pending()
    assert fresh_order(order.id).dispute_standing == "lost"


def test_closed_sticks_whatever_the_arrival_order(
    place_order: Callable[..., Order], emulator: Emulator, stripe_dashboard: Any
) -> None:
    order = place_order(A=2, C=1)
    emulator.hold_deliveries()
    emulator.pay(order.stripe_session_id, card=FRAUDULENT)
    dispute_id = next(iter(emulator.store.disputes))
    stripe_dashboard.v1.disputes.update(dispute_id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    emulator.release_deliveries(order="reverse", duplicate=2)
    for _ in range(5):  # retries of what came before its payment's event
        emulator.deliver_pending()
        emulator.advance(3600)
    after = fresh_order(order.id)
    assert after.status == OrderStatus.PAID and after.dispute_standing == "won"
    row = _dispute_row(order.id)
    assert (row.withdrawn_cents, row.reinstated_cents) == (TOTAL, TOTAL)
    assert row.status.is_closed


def test_a_dispute_of_someone_elses_payment_is_acknowledged_and_ignored(
    app: Flask, emulator: Emulator, stripe_dashboard: Any, products: Any
) -> None:
    created = stripe_dashboard.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {"price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "x"}}, "quantity": 1}
            ],
            "success_url": "https://elsewhere.example/ok",
        }
    )
    emulator.pay(created.id, card=FRAUDULENT)
    emulator.deliver_pending()
    outcomes = fresh().execute(select(PaymentEvent.type, PaymentEvent.outcome)).all()
    dispute_outcomes = {o for t, o in outcomes if t.startswith("charge.dispute.")}
    assert dispute_outcomes == {EventOutcome.IGNORED}
    assert fresh().scalar(select(Dispute)) is None


def test_an_early_fraud_warning_flags_the_order_and_is_refunded(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, emulator: Emulator
) -> None:
    order = disputed_order(WARNING)
    assert order.fraud_warning and order.needs_review and order.dispute_standing == "none"
    warning = fresh().scalar(select(EarlyFraudWarning).where(EarlyFraudWarning.order_id == order.id))
    assert warning is not None and warning.actionable
    assert len(_mails(order.id, MailKind.FRAUD_WARNING)) == 1
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "Refund to avoid a dispute" in page
    # The button sends the whole remaining amount through the refund door: its confirmation step, then Stripe.
    button = re.search(r'<form[^>]*id="refund-to-avoid-dispute".*?</form>', page, re.S)
    assert button is not None
    fields = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', button.group(0)))
    assert fields["amount"] == "79.97" and fields["sequence"] == "1"
    url = f"/admin/orders/{order.id}/refund/"
    asked = staff_client.post(url, data=fields)
    assert asked.status_code == 200 and "Refund everything on order" in asked.get_data(as_text=True)
    assert staff_client.post(url, data={**fields, "confirm": "yes"}).status_code in (302, 303)
    emulator.deliver_pending()
    after = fresh_order(order.id)
    assert after.status == OrderStatus.REFUNDED
    warning = fresh().scalar(select(EarlyFraudWarning).where(EarlyFraudWarning.order_id == order.id))
    assert warning is not None and not warning.actionable
    page = staff_client.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert "Early fraud warning" in page
    # Newcomer's fault 2: the refund answered the warning, so its review flag is lifted (with a timeline entry).
    assert not after.needs_review and 'id="review-flag"' not in page
    assert "Review flag lifted" in page


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_the_audit_counts_a_disputes_money_as_stripe_does(
    disputed_order: Callable[..., Order], emulator: Emulator, stripe_dashboard: Any, runner: Any, outcome: str
) -> None:
    # The books audit (flask payments audit) compares the money a dispute moved, as the shop recorded it from
    # the funds_withdrawn / funds_reinstated facts, with Stripe's `adjustment` balance transactions: a lost
    # dispute (amount and fee gone) and a won one (both given back) match, and a forgotten withdrawal would not.
    order = disputed_order(FRAUDULENT)
    row = _dispute_row(order.id)
    if outcome == "won":
        stripe_dashboard.v1.disputes.update(
            row.stripe_dispute_id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
        )
    else:
        emulator.advance_dispute(row.stripe_dispute_id)
    emulator.deliver_pending()
    assert fresh_order(order.id).dispute_standing == outcome
    result = runner.invoke(args=["payments", "audit"])
    assert result.exit_code == 0, result.output
    assert "Books match Stripe." in result.output
    lost = TOTAL + DISPUTE_FEE if outcome == "lost" else 0
    assert fresh_order(order.id).dispute_lost_cents == lost


def test_an_open_dispute_counts_in_metrics_and_keeps_the_account(
    disputed_order: Callable[..., Order], emulator: Emulator, app: Flask
) -> None:
    # /metrics' shop_disputes_open was always 0 (its figure was never counted), and an account whose payment
    # was under dispute could be deleted while the bank was still deciding (the evidence needs its details).
    order = disputed_order(FRAUDULENT)
    with app.app_context():
        assert operations.business_figures().disputes_open == 1
        with pytest.raises(data_rights.AccountDeletionRefused) as refused:
            data_rights.delete_account(order.user_id)
        assert f"Order #{order.id}: your bank is reviewing its payment" in str(refused.value.reasons)
    emulator.advance_dispute(_dispute_row(order.id).stripe_dispute_id)
    emulator.deliver_pending()
    with app.app_context():
        assert operations.business_figures().disputes_open == 0
