"""Stripe Checkout end to end through the real SDK and the local Stripe service (nothing mocked)."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import func, select

from shopapp.extensions import db
from shopapp.models import Order, OrderItem, OrderStatus, PaymentEvent
from tests.conftest import fresh, order_for_session, session_id_from
from tests.support import cancel_path, refused_checkout

CREATE = "POST /v1/checkout/sessions"
RETRIEVE = "GET /v1/checkout/sessions/{id}"
EXPIRE = "POST /v1/checkout/sessions/{id}/expire"


def count(model) -> int:
    return fresh().scalar(select(func.count()).select_from(model))


def stripe_calls(emulator) -> dict[str, int]:
    return {k: v for k, v in emulator.call_counts.items() if k.startswith(("GET /v1", "POST /v1"))}


def test_happy_path_2a_1c_pays_once_with_one_stripe_call(client, shopper, buy, emulator):
    response = buy(A=2, C=1)
    session_id = session_id_from(response)
    assert response.headers["Location"].startswith("http://127.0.0.1:12111/pay/")
    order = order_for_session(session_id)
    assert (order.status, order.total_cents, order.currency) == (OrderStatus.PENDING, 7997, "usd")
    assert [(i.product_name, i.quantity, i.unit_price_cents) for i in order.items] == [
        ("Product A", 2, 1999),
        ("Product C", 1, 3999),
    ]

    session = emulator.sessions[session_id]
    assert session["amount_total"] == 7997
    assert session["client_reference_id"] == str(order.id)
    assert session["metadata"]["order_id"] == str(order.id)
    assert session["success_url"].endswith("/success/?session_id={CHECKOUT_SESSION_ID}")
    assert 30 * 60 <= session["expires_at"] - time.time() <= 24 * 3600

    result = emulator.pay(session_id)
    assert result.status == 303 and result.redirect_url.endswith(f"session_id={session_id}")
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID
    assert order.paid_at is not None and order.stripe_payment_intent_id.startswith("pi_")

    page = client.get(f"/success/?session_id={session_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "$79.97" in text and "payment was received" in text
    # The shop page lists it as paid.
    assert "Paid" in client.get("/orders").get_data(as_text=True)
    # One create, no retrieve: the webhook arrived before the shopper reached the success page.
    assert stripe_calls(emulator) == {CREATE: 1}


def test_declined_card_charges_nothing_and_a_retry_pays_once(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    declined = emulator.pay(session_id, card="4000000000000002")
    assert declined.status == 402 and declined.outcome == "card_declined"
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert emulator.sessions[session_id]["status"] == "open"
    assert not [e for e in emulator.events() if e["type"].startswith("charge.succeeded")]

    assert emulator.pay(session_id).status == 303
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.PAID
    assert len(emulator.events("checkout.session.completed")) == 1


def test_cancel_returns_to_shop_closes_the_checkout_and_keeps_the_selection(client, shopper, buy, emulator, products):
    session_id = session_id_from(buy(A=2, C=1))
    order = order_for_session(session_id)
    cancel_url = emulator.sessions[session_id]["cancel_url"]
    assert cancel_url.startswith("http://shop.test/checkout/canceled?t=") and cancel_url.endswith(f"&order={order.id}")
    back = client.get(cancel_path(emulator, session_id))
    assert back.status_code == 302 and back.headers["Location"] == "/"
    # The checkout is closed: expired at Stripe (it can no longer be paid) and the order CANCELED.
    assert order_for_session(session_id).status == OrderStatus.CANCELED
    assert emulator.sessions[session_id]["status"] == "expired"
    page = client.get("/").get_data(as_text=True)
    assert "Payment canceled: nothing was charged" in page
    # The same quantities are shown again, ready to buy.
    a, b, c = (products[f"Product {x}"].id for x in "ABC")
    assert f'name="qty-{a}"' in page and re.search(rf'name="qty-{a}"[^>]*value="2"', page)
    assert re.search(rf'name="qty-{c}"[^>]*value="1"', page) and re.search(rf'name="qty-{b}"[^>]*value="0"', page)
    # Only once: the next view is the ordinary page.
    assert not re.search(rf'name="qty-{a}"[^>]*value="2"', client.get("/").get_data(as_text=True))
    # Coming back again changes nothing; the expired event afterwards is a harmless no-op.
    assert client.get(cancel_path(emulator, session_id)).status_code == 302
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.CANCELED


def test_cancel_url_of_another_shoppers_order_changes_nothing(app, client, shopper, buy, make_user, emulator):
    session_id = session_id_from(buy(A=1))
    order = order_for_session(session_id)
    make_user("mallory@example.com")
    other = app.test_client()
    other.post("/account/login", data={"email": "mallory@example.com", "password": "correct horse battery"})
    assert other.get(f"/checkout/canceled?order={order.id}").status_code == 302
    assert other.get(cancel_path(emulator, session_id)).status_code == 302  # the owner's token: not mallory's
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert emulator.sessions[session_id]["status"] == "open"


def test_cross_site_cancel_link_without_the_token_cancels_nothing(client, shopper, buy, emulator):
    """Issue 26, finding 7: a link on another site to /checkout/canceled?order=N (the shopper's own order, their
    cookies sent along as Lax allows for a top-level GET) must not close the shopper's open checkout."""
    session_id = session_id_from(buy(A=1))
    order = order_for_session(session_id)
    for forged in (f"/checkout/canceled?order={order.id}", f"/checkout/canceled?order={order.id}&t=0123abcd"):
        assert client.get(forged).status_code == 302
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert emulator.sessions[session_id]["status"] == "open"
    # The shop's own cancel URL (the one Stripe's Cancel button follows) still closes it.
    assert client.get(cancel_path(emulator, session_id)).status_code == 302
    assert order_for_session(session_id).status == OrderStatus.CANCELED


def test_old_cancel_notice_still_shows(client, shopper):
    page = client.get("/?checkout=canceled")
    assert page.status_code == 200
    assert "Payment canceled: nothing was charged" in page.get_data(as_text=True)


def test_delayed_payment_success_shows_processing_then_paid(client, shopper, buy, emulator):
    session_id = session_id_from(buy(B=1))
    assert emulator.pay(session_id, delayed="succeed").outcome == "processing"
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PENDING and order.payment_processing
    page = client.get(f"/success/?session_id={session_id}").get_data(as_text=True)
    assert "Your payment is processing" in page

    emulator.complete_async(session_id, succeed=True)
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.PAID
    assert "payment was received" in client.get(f"/success/?session_id={session_id}").get_data(as_text=True)


def test_delayed_payment_failure_marks_failed(client, shopper, buy, emulator):
    session_id = session_id_from(buy(B=1))
    emulator.pay(session_id, delayed="fail")
    emulator.deliver_pending()
    emulator.complete_async(session_id, succeed=False)
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.FAILED and order.paid_at is None
    assert "was not paid" in client.get(f"/success/?session_id={session_id}").get_data(as_text=True)


def test_session_expiry_marks_expired(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    emulator.clock.advance(2 * 3600)
    emulator.tick()
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.EXPIRED


def test_duplicate_deliveries_are_no_ops(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    emulator.pay(session_id)
    emulator.deliver_pending()
    completed = emulator.events("checkout.session.completed")[0]
    for _ in range(3):
        assert emulator.redeliver(completed["id"]) == 200
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID
    transitions = [e for e in order.events if e.to_status == "paid"]
    assert len(transitions) == 1
    assert (
        fresh().scalar(
            select(func.count()).select_from(PaymentEvent).where(PaymentEvent.stripe_event_id == completed["id"])
        )
        == 1
    )


@pytest.mark.parametrize("late", ["expire", "fail"])
def test_out_of_order_late_events_never_undo_paid(client, shopper, buy, emulator, signed_post, late):
    session_id = session_id_from(buy(A=1))
    emulator.pay(session_id)
    emulator.deliver_pending()
    # A stale snapshot of the same session claiming it expired / failed arrives afterwards.
    snapshot = dict(emulator.sessions[session_id])
    if late == "expire":
        snapshot.update(status="expired", payment_status="unpaid")
        event_type = "checkout.session.expired"
    else:
        snapshot.update(status="complete", payment_status="unpaid")
        event_type = "checkout.session.async_payment_failed"
    body = json.dumps(
        {
            "id": f"evt_late_{late}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": snapshot},
            "livemode": False,
            "api_version": "2025-01-01",
        }
    ).encode()
    assert signed_post(body).status_code == 200
    assert order_for_session(session_id).status == OrderStatus.PAID


def test_held_events_released_in_reverse_order_still_end_paid(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    emulator.hold_deliveries()
    emulator.pay(session_id, delayed="succeed")
    emulator.complete_async(session_id, succeed=True)
    emulator.release_deliveries(order="reverse", duplicate=2)
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID
    assert len([e for e in order.events if e.to_status == "paid"]) == 1


def test_success_page_before_webhook_finalizes_with_one_retrieve(client, shopper, buy, emulator):
    session_id = session_id_from(buy(C=1))
    emulator.pay(session_id)  # webhook not delivered yet
    page = client.get(f"/success/?session_id={session_id}")
    assert "payment was received" in page.get_data(as_text=True)
    assert order_for_session(session_id).status == OrderStatus.PAID
    # Refreshing is harmless and costs no further Stripe call; the webhook then is a no-op.
    client.get(f"/success/?session_id={session_id}")
    emulator.deliver_pending()
    assert stripe_calls(emulator) == {CREATE: 1, RETRIEVE: 1}
    assert len([e for e in order_for_session(session_id).events if e.to_status == "paid"]) == 1


def test_webhook_before_success_page_needs_no_retrieve(client, shopper, buy, emulator):
    session_id = session_id_from(buy(C=1))
    emulator.pay(session_id)
    emulator.deliver_pending()
    client.get(f"/success/?session_id={session_id}")
    assert RETRIEVE not in stripe_calls(emulator)


def test_success_page_refuses_foreign_unknown_and_forged_sessions(client, shopper, buy, emulator, make_user, app):
    session_id = session_id_from(buy(A=1))
    other = app.test_client()
    make_user("other@example.com")
    other.post("/account/login", data={"email": "other@example.com", "password": "correct horse battery"})
    assert other.get(f"/success/?session_id={session_id}").status_code == 404
    for bad in ("cs_test_doesnotexist", "nope", "", "cs_" + "x" * 300, "cs_test_'; DROP TABLE orders;--"):
        assert client.get("/success/", query_string={"session_id": bad}).status_code == 404
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert RETRIEVE not in stripe_calls(emulator)


def _event_body(emulator, session_id: str) -> bytes:
    emulator.pay(session_id)
    return json.dumps(
        {
            "id": "evt_manual_1",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": emulator.sessions[session_id]},
            "livemode": False,
            "api_version": "2025-01-01",
        }
    ).encode()


@pytest.mark.parametrize(
    "case",
    ["bad-signature", "old-timestamp", "tampered-body", "missing-header", "not-json", "wrong-secret"],
)
def test_unverifiable_webhooks_are_refused_and_change_nothing(client, shopper, buy, emulator, signed_post, case):
    session_id = session_id_from(buy(A=1))
    body = _event_body(emulator, session_id)
    if case == "bad-signature":
        response = signed_post(body, header=f"t={int(time.time())},v1={'0' * 64}")
    elif case == "old-timestamp":
        response = signed_post(body, header=emulator.sign(body, timestamp=int(time.time()) - 3600))
    elif case == "tampered-body":
        header = emulator.sign(body)
        response = signed_post(body.replace(b"7997", b"1").replace(b'"paid"', b'"paid" '), header=header)
    elif case == "missing-header":
        response = client.post("/webhook/", data=body, content_type="application/json")
    elif case == "not-json":
        response = signed_post(b"{not json")
    else:
        from stripe_emulator.webhooks import sign

        response = signed_post(body, header=sign("whsec_other", body))
    assert response.status_code == 400
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert count(PaymentEvent) == 0


@pytest.mark.parametrize("body", [b"[1, 2]", b'"an event"', b"42", b"null"])
def test_signed_json_that_is_not_an_object_is_refused(client, signed_post, body):
    response = signed_post(body)
    assert response.status_code == 400 and "Traceback" not in response.get_data(as_text=True)
    assert count(PaymentEvent) == 0


def test_signed_events_with_odd_shapes_are_stored_and_ignored_not_500(client, shopper, buy, emulator, signed_post):
    """Found by the webhook fuzzer: a list where Stripe sends an object must not raise (a 500 Stripe retries
    for days). Such a session or refund names no order of ours, so the event is kept and ignored."""
    session_id = session_id_from(buy(A=1))
    odd = [
        ("checkout.session.completed", {**emulator.sessions[session_id], "metadata": [[], {"order_id": "1"}]}),
        ("refund.updated", {"id": "re_odd", "object": "refund", "amount": "lots", "metadata": ["order_id"]}),
        ("charge.refunded", {"id": "ch_odd", "object": "charge", "metadata": "order_id=1", "amount_refunded": "x"}),
    ]
    for n, (event_type, obj) in enumerate(odd):
        body = json.dumps({"id": f"evt_odd_{n}", "object": "event", "type": event_type, "data": {"object": obj}})
        response = signed_post(body.encode())
        assert response.status_code == 200, (event_type, response.get_data(as_text=True))
        assert response.get_data(as_text=True) == "ignored\n"
    assert order_for_session(session_id).status == OrderStatus.PENDING
    assert count(PaymentEvent) == len(odd)


def test_webhook_refuses_to_run_without_a_secret(app_factory, emulator):
    app = app_factory(STRIPE_WEBHOOK_SECRET=None)
    body = b'{"id": "evt_1", "type": "checkout.session.completed"}'
    response = app.test_client().post("/webhook", data=body, headers={"Stripe-Signature": emulator.sign(body)})
    assert response.status_code == 400
    assert count(PaymentEvent) == 0


def test_webhook_without_trailing_slash_works(client, shopper, buy, emulator, signed_post):
    session_id = session_id_from(buy(A=1))
    body = _event_body(emulator, session_id)
    assert signed_post(body, path="/webhook").status_code == 200
    assert order_for_session(session_id).status == OrderStatus.PAID


def test_oversize_webhook_body_is_refused(client, signed_post):
    body = b'{"id": "evt_big", "pad": "' + b"x" * (300 * 1024) + b'"}'
    assert signed_post(body).status_code == 413
    assert count(PaymentEvent) == 0


def test_double_submit_of_one_cart_makes_one_order_and_one_session(client, shopper, buy, emulator):
    first = session_id_from(buy(A=2, C=1))
    second = session_id_from(buy(A=2, C=1))
    assert first == second
    assert count(Order) == 1
    assert len(emulator.sessions) == 1
    # The repeat checks once that the session is still open before sending the shopper back to it
    # (a session Stripe no longer has would be a dead page), and creates nothing.
    assert stripe_calls(emulator) == {CREATE: 1, RETRIEVE: 1}


def test_changed_cart_expires_old_session_and_makes_new_one(client, shopper, buy, emulator):
    first = session_id_from(buy(A=1))
    second = session_id_from(buy(A=2))
    assert first != second
    assert emulator.sessions[first]["status"] == "expired"
    assert emulator.sessions[second]["status"] == "open"
    old, new = order_for_session(first), order_for_session(second)
    assert old.status == OrderStatus.CANCELED
    assert new.status == OrderStatus.PENDING and new.total_cents == 2 * 1999
    # The expired event for the old session changes nothing.
    emulator.deliver_pending()
    assert order_for_session(first).status == OrderStatus.CANCELED


def test_changed_cart_after_old_session_was_paid_keeps_it_paid(client, shopper, buy, emulator):
    first = session_id_from(buy(A=1))
    emulator.pay(first)  # paid, webhook not yet delivered
    second = session_id_from(buy(B=1))
    assert order_for_session(first).status == OrderStatus.PAID
    assert order_for_session(second).status == OrderStatus.PENDING


@pytest.mark.parametrize("fault", [500, 429, "timeout", 409])
def test_stripe_failure_on_create_gives_clear_message_and_retry_makes_one_session(
    client, shopper, buy, emulator, fault
):
    # process=True: Stripe did create the session but the reply was lost, the worst case.
    emulator.inject_fault(CREATE, status=fault, times=2 if fault == 429 else 1, process=True)
    text = refused_checkout(buy(A=1, follow=True))
    assert "Nothing was charged" in text and "Traceback" not in text
    order = fresh().scalar(select(Order))
    assert order.status == OrderStatus.PENDING and order.stripe_session_id is None

    retried = buy(A=1)
    session_id = session_id_from(retried)
    assert count(Order) == 1
    assert len(emulator.sessions) == 1  # the retry reused the attempt's idempotency key
    assert order_for_session(session_id).checkout_attempt == 1


def test_one_429_is_absorbed_by_a_short_backoff(client, shopper, buy, emulator):
    emulator.inject_fault(CREATE, status=429, times=1)
    session_id_from(buy(A=1))
    assert len(emulator.sessions) == 1


def test_amount_mismatch_is_paid_and_flagged(client, shopper, buy, emulator):
    session_id = session_id_from(buy(A=1))
    order = order_for_session(session_id)
    # The order's items no longer match what Stripe will collect (e.g. edited behind the shop's back): the
    # amount check holds Stripe's subtotal to the items' database prices x quantities (issue 23) and flags it.
    # Stripe took the money for the shop's own session, so the payment is recorded with what was charged (the
    # order was left PENDING for ever before, refundable 0, with nothing for staff to act on).
    db.session.execute(db.update(OrderItem).where(OrderItem.order_id == order.id).values(unit_price_cents=999))
    db.session.commit()
    emulator.pay(session_id)
    emulator.deliver_pending()
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PAID and order.paid_at is not None and order.total_cents == 1999
    assert order.needs_review and "subtotal 1999 != 999 of the order's items" in order.review_reason


def test_processing_failure_rolls_back_and_redelivery_converges(client, shopper, buy, emulator, monkeypatch):
    from shopapp.services import checkout

    session_id = session_id_from(buy(A=1))
    emulator.pay(session_id)

    def explode(order_id: int) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(checkout, "before_compare_and_set", explode)
    results = dict(emulator.deliver_pending())
    completed = emulator.events("checkout.session.completed")[0]["id"]
    assert results[completed] == 500
    assert order_for_session(session_id).status == OrderStatus.PENDING
    stored = fresh().scalar(select(PaymentEvent).where(PaymentEvent.stripe_event_id == completed))
    assert stored.outcome == "failed" and "database hiccup" in stored.error

    monkeypatch.setattr(checkout, "before_compare_and_set", None)
    assert emulator.redeliver(completed) == 200
    assert order_for_session(session_id).status == OrderStatus.PAID
    stored = fresh().scalar(select(PaymentEvent).where(PaymentEvent.stripe_event_id == completed))
    assert stored.outcome == "applied" and stored.error is None


def test_events_for_other_integrations_are_acknowledged_and_ignored(client, signed_post):
    body = json.dumps(
        {
            "id": "evt_other",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "cs_test_foreign",
                    "object": "checkout.session",
                    "metadata": {},
                    "payment_status": "paid",
                    "status": "complete",
                }
            },
        }
    ).encode()
    response = signed_post(body)
    assert response.status_code == 200
    assert fresh().scalar(select(PaymentEvent.outcome)) == "ignored"


def test_new_cart_while_a_delayed_payment_settles_leaves_that_order_alone(client, shopper, buy, emulator):
    first = session_id_from(buy(A=1))
    emulator.pay(first, delayed="succeed")
    emulator.deliver_pending()
    second = session_id_from(buy(B=1))
    assert second != first
    emulator.complete_async(first, succeed=True)
    emulator.deliver_pending()
    assert order_for_session(first).status == OrderStatus.PAID
    assert order_for_session(second).status == OrderStatus.PENDING
