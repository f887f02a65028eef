"""Coupons, promotion codes and discounted Checkout Sessions, driven through the official SDK (issue 23)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe
from werkzeug.test import Client

from stripe_emulator import Emulator


@pytest.fixture
def web(emu: Emulator) -> Client:
    return Client(emu.wsgi_app)


def _coupon(client: stripe.StripeClient, **params: Any) -> Any:
    return client.v1.coupons.create(params={"duration": "once", **params})


def _code(client: stripe.StripeClient, coupon: str, **params: Any) -> Any:
    return client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon}, **params})


def _refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


def test_coupon_and_promotion_code_are_created_listed_and_idempotent(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create(
        params={"percent_off": 20, "duration": "once", "name": "Spring", "max_redemptions": 3},
        options={"idempotency_key": "coupon-spring"},
    )
    again = client.v1.coupons.create(
        params={"percent_off": 20, "duration": "once", "name": "Spring", "max_redemptions": 3},
        options={"idempotency_key": "coupon-spring"},
    )
    assert again.id == coupon.id and coupon.valid and coupon.percent_off == 20 and coupon.times_redeemed == 0
    code = _code(client, coupon.id, code="SPRING20", max_redemptions=1)
    assert code.promotion.coupon == coupon.id and code.active and code.code == "SPRING20"
    assert [p.id for p in client.v1.promotion_codes.list(params={"code": "spring20"}).data] == [code.id]
    assert [p.id for p in client.v1.promotion_codes.list(params={"coupon": coupon.id, "active": True}).data] == [
        code.id
    ]
    assert client.v1.coupons.list().data[0].id == coupon.id
    assert client.v1.promotion_codes.retrieve(code.id).restrictions.first_time_transaction is False


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"percent_off": 101}, "percent_off"),
        ({"percent_off": 0}, "percent_off"),
        ({"amount_off": 500}, "currency"),
        ({}, "percent_off"),
        ({"percent_off": 10, "amount_off": 5, "currency": "usd"}, "amount_off"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
    ],
)
def test_coupons_stripe_refuses(client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    error = _refused(lambda: client.v1.coupons.create(params=params))
    assert error.http_status == 400 and error.param == param


def test_promotion_code_refusals(client: stripe.StripeClient) -> None:
    coupon = _coupon(client, percent_off=10)
    _code(client, coupon.id, code="TEN")
    assert _refused(lambda: _code(client, coupon.id, code="ten")).code == "resource_already_exists"
    assert _refused(lambda: _code(client, "nope")).param == "promotion[coupon]"
    error = _refused(lambda: _code(client, coupon.id, restrictions={"minimum_amount": 1000}))
    assert error.param == "restrictions[minimum_amount_currency]"


def _session_with_code(make_session: Any, code: str, **overrides: Any) -> Any:
    return make_session(discounts=[{"promotion_code": code}], **overrides)


def test_a_discounted_session_reports_its_amounts_and_breakdown(
    emu: Emulator, client: stripe.StripeClient, make_session: Any
) -> None:
    coupon = _coupon(client, percent_off=25)
    code = _code(client, coupon.id, code="QUARTER")
    session = _session_with_code(make_session, code.id)  # 2 x 19.99 + 5.00 = 44.98
    assert session.amount_subtotal == 4498 and session.total_details.amount_discount == 1125
    assert session.amount_total == 4498 - 1125
    assert session.discounts[0].coupon == coupon.id and session.discounts[0].promotion_code == code.id
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["total_details.breakdown"]})
    (entry,) = expanded.total_details.breakdown.discounts
    assert entry.amount == 1125 and entry.discount.source.coupon == coupon.id
    lines = client.v1.checkout.sessions.line_items.list(session.id).data
    assert sum(line.amount_discount for line in lines) == 1125
    assert sum(line.amount_total for line in lines) == session.amount_total
    emu.pay(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert paid.payment_status == "paid" and paid.payment_intent.amount == 3373
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1


def test_a_fully_discounted_session_needs_no_payment(
    emu: Emulator, client: stripe.StripeClient, make_session: Any, endpoint: Any
) -> None:
    coupon = _coupon(client, percent_off=100)
    session = make_session(discounts=[{"coupon": coupon.id}])
    assert session.amount_total == 0 and session.total_details.amount_discount == 4498
    page = Client(emu.wsgi_app).get(f"/pay/{session.id}").get_data(as_text=True)
    assert 'name="card_number"' not in page and "Complete order" in page
    result = emu.pay(session.id, card="")  # no card is asked for
    assert result.status == 303
    assert "Order complete" in Client(emu.wsgi_app).get(f"/pay/{session.id}").get_data(as_text=True)
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status, done.payment_intent) == ("complete", "no_payment_required", None)
    emu.deliver_pending()
    completed = [e for e in endpoint.events() if e.type == "checkout.session.completed"]
    assert completed[0].data.object.payment_status == "no_payment_required"
    assert not [e for e in endpoint.events() if e.type.startswith("payment_intent.")]


def test_an_amount_off_coupon_in_another_currency_is_refused(client: stripe.StripeClient, make_session: Any) -> None:
    coupon = _coupon(client, amount_off=500, currency="eur")
    error = _refused(lambda: make_session(discounts=[{"coupon": coupon.id}]))
    assert error.param == "discounts[0][coupon]" and "EUR" in str(error.user_message)


def test_two_discounts_or_discounts_with_allow_promotion_codes_are_refused(
    client: stripe.StripeClient, make_session: Any
) -> None:
    coupon = _coupon(client, percent_off=10)
    other = _coupon(client, percent_off=5)
    assert _refused(lambda: make_session(discounts=[{"coupon": coupon.id}, {"coupon": other.id}])).param == "discounts"
    error = _refused(lambda: make_session(discounts=[{"coupon": coupon.id}], allow_promotion_codes=True))
    assert error.param == "discounts" and "allow_promotion_codes" in str(error.user_message)


def test_promotion_code_validation(emu: Emulator, client: stripe.StripeClient, make_session: Any) -> None:
    coupon = _coupon(client, percent_off=10)
    inactive = _code(client, coupon.id, code="OFF", active=False)
    assert "not active" in str(_refused(lambda: _session_with_code(make_session, inactive.id)).user_message)
    expiring = _code(client, coupon.id, code="SOON", expires_at=emu.clock.timestamp() + 60)
    emu.advance(61)
    assert "expired" in str(_refused(lambda: _session_with_code(make_session, expiring.id)).user_message)
    minimum = _code(
        client, coupon.id, code="BIG", restrictions={"minimum_amount": 10000, "minimum_amount_currency": "usd"}
    )
    assert "higher order total" in str(_refused(lambda: _session_with_code(make_session, minimum.id)).user_message)
    first = _code(client, coupon.id, code="FIRST", restrictions={"first_time_transaction": True})
    emu.pay(_session_with_code(make_session, first.id).id)
    assert "first-time" in str(_refused(lambda: _session_with_code(make_session, first.id)).user_message)


def test_a_promotion_code_used_past_its_limit(emu: Emulator, client: stripe.StripeClient, make_session: Any) -> None:
    coupon = _coupon(client, percent_off=10)
    code = _code(client, coupon.id, code="ONCE", max_redemptions=1)
    first = _session_with_code(make_session, code.id)
    second = _session_with_code(make_session, code.id)  # both open while the code is unused
    assert emu.pay(first.id).status == 303
    # The second session's code is used up by the time it is paid: refused, and the discount is taken off.
    result = emu.pay(second.id)
    assert result.status == 400 and "maximum number of redemptions" in str(result.message)
    again = client.v1.checkout.sessions.retrieve(second.id)
    assert again.discounts is None and again.amount_total == 4498 and again.status == "open"
    assert "maximum" in str(_refused(lambda: _session_with_code(make_session, code.id)).user_message)


def test_the_hosted_page_takes_a_code(
    emu: Emulator, client: stripe.StripeClient, make_session: Any, web: Client
) -> None:
    coupon = _coupon(client, amount_off=1000, currency="usd")
    _code(client, coupon.id, code="TENOFF")
    session = make_session(allow_promotion_codes=True)
    assert session.allow_promotion_codes is True
    page = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert 'name="code"' in page and "Add promotion code" in page
    bad = web.post(f"/pay/{session.id}/discount", data={"code": "NOPE"})
    assert bad.status_code == 303
    assert "This code is invalid." in web.get(f"/pay/{session.id}").get_data(as_text=True)
    web.post(f"/pay/{session.id}/discount", data={"code": "tenoff"})  # codes match regardless of case
    page = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert "Discount (TENOFF)" in page and "-$10.00" in page and "$34.98" in page
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.total_details.amount_discount == 1000 and again.amount_total == 3498
    paid = web.post(f"/pay/{session.id}", data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert paid.status_code == 303
    assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 3498


def test_promotion_code_events_at_an_older_version_carry_the_coupon(emu: Emulator, client: stripe.StripeClient) -> None:
    coupon = _coupon(client, percent_off=10)
    code = _code(client, coupon.id, code="OLD")
    old = emu.wsgi_app
    response = Client(old).get(
        f"/v1/promotion_codes/{code.id}",
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2025-03-31.basil"},
    )
    body = json.loads(response.get_data())
    assert body["coupon"]["id"] == coupon.id and "promotion" not in body
    assert client.v1.promotion_codes.retrieve(code.id).promotion.coupon == coupon.id


def test_a_discount_before_clover_carries_its_coupon(
    emu: Emulator, client: stripe.StripeClient, make_session: Any
) -> None:
    coupon = _coupon(client, percent_off=10)
    session = make_session(discounts=[{"coupon": coupon.id}])
    response = Client(emu.wsgi_app).get(
        f"/v1/checkout/sessions/{session.id}?expand[]=total_details.breakdown",
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2025-03-31.basil"},
    )
    (entry,) = json.loads(response.get_data())["total_details"]["breakdown"]["discounts"]
    assert entry["discount"]["coupon"]["id"] == coupon.id and "source" not in entry["discount"]


def test_coupons_and_codes_update_and_delete(emu: Emulator, client: stripe.StripeClient, make_session: Any) -> None:
    coupon = _coupon(client, percent_off=10)
    code = _code(client, coupon.id, code="TEN")
    assert client.v1.coupons.update(coupon.id, params={"name": "Ten off"}).name == "Ten off"
    assert client.v1.promotion_codes.update(code.id, params={"active": False}).active is False
    assert "not active" in str(_refused(lambda: _session_with_code(make_session, code.id)).user_message)
    deleted = client.v1.coupons.delete(coupon.id)
    assert deleted.deleted is True
    assert _refused(lambda: client.v1.coupons.retrieve(coupon.id)).http_status == 404
    assert {e["type"] for e in emu.events()} >= {
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
        "promotion_code.created",
        "promotion_code.updated",
    }
