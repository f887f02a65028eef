"""Checkout Session endpoints through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from werkzeug.test import Client

from stripe_emulator import Emulator, EmulatorHTTPClient


def test_create_returns_open_unpaid_session(make_session: Any, emu: Emulator) -> None:
    session = make_session()
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.payment_intent) == ("open", "unpaid", None)
    assert (session.amount_subtotal, session.amount_total, session.currency) == (4498, 4498, "usd")
    assert session.url == f"http://127.0.0.1:12111/pay/{session.id}"
    assert session.success_url.endswith("session_id={CHECKOUT_SESSION_ID}")
    assert session.metadata.to_dict() == {"order_id": "7"}
    assert session.client_reference_id == "order-7"
    assert session.livemode is False
    assert session.expires_at == emu.clock.timestamp() + 3600
    assert session.created == emu.clock.timestamp()


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"mode": None}, "mode"),
        ({"mode": "subscription"}, "mode"),
        ({"success_url": None}, "success_url"),
        ({"success_url": "ftp://shop.test/ok"}, "success_url"),
        ({"cancel_url": "not a url"}, "cancel_url"),
        ({"line_items": None}, "line_items"),
        (
            {
                "line_items": [
                    {
                        "quantity": 0,
                        "price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}},
                    }
                ]
            },
            "line_items[0][quantity]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "usd", "unit_amount": "abc", "product_data": {"name": "x"}},
                    }
                ]
            },
            "line_items[0][price_data][unit_amount]",
        ),
        (
            {"line_items": [{"quantity": 1, "price_data": {"unit_amount": 100, "product_data": {"name": "x"}}}]},
            "line_items[0][price_data][currency]",
        ),
        (
            {
                "line_items": [
                    {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 100, "product_data": {}}}
                ]
            },
            "line_items[0][price_data][product_data][name]",
        ),
        ({"bogus": "1"}, "bogus"),
    ],
)
def test_create_validation_errors_name_the_param(
    client: stripe.StripeClient, session_params: Any, overrides: dict[str, Any], param: str
) -> None:
    params = {k: v for k, v in session_params(**overrides).items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=params)
    assert info.value.http_status == 400
    assert info.value.param == param
    assert info.value.error.type == "invalid_request_error"


@pytest.mark.parametrize(
    ("offset", "ok"), [(29 * 60, False), (30 * 60, True), (24 * 3600, True), (24 * 3600 + 1, False)]
)
def test_expires_at_must_be_30_minutes_to_24_hours_ahead(
    client: stripe.StripeClient, emu: Emulator, session_params: Any, offset: int, ok: bool
) -> None:
    params = session_params(expires_at=emu.clock.timestamp() + offset)
    if ok:
        assert client.v1.checkout.sessions.create(params=params).status == "open"
    else:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.checkout.sessions.create(params=params)
        assert info.value.param == "expires_at"


def test_retrieve_expands_line_items_and_payment_intent(client: stripe.StripeClient, paid_session: Any) -> None:
    session = client.v1.checkout.sessions.retrieve(paid_session.id, params={"expand": ["line_items", "payment_intent"]})
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.url is None
    assert isinstance(session.payment_intent, stripe.PaymentIntent)
    assert session.payment_intent.status == "succeeded"
    assert [item.description for item in session.line_items.data] == ["Mug", "Sticker"]
    assert isinstance(session.line_items.data[0], stripe.LineItem)


def test_line_items_auto_paging(client: stripe.StripeClient, make_session: Any) -> None:
    lines = [
        {
            "quantity": i + 1,
            "price_data": {"currency": "eur", "unit_amount": 100 * (i + 1), "product_data": {"name": f"Item {i}"}},
        }
        for i in range(5)
    ]
    session = make_session(line_items=lines)
    page = client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 2})
    assert page.has_more is True and len(page.data) == 2
    assert page.url == f"/v1/checkout/sessions/{session.id}/line_items"
    items = list(page.auto_paging_iter())
    assert [item.description for item in items] == [f"Item {i}" for i in range(5)]
    assert all(isinstance(item, stripe.LineItem) and item.id.startswith("li_") for item in items)
    assert items[4].quantity == 5 and items[4].amount_total == 2500
    assert items[4].price.unit_amount == 500 and items[4].price.currency == "eur"


def test_expire_only_while_open(client: stripe.StripeClient, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert [e["data"]["object"]["id"] for e in emu.events("checkout.session.expired")] == [session.id]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.expire(session.id)
    assert info.value.http_status == 400


def test_list_sessions_newest_first(client: stripe.StripeClient, make_session: Any) -> None:
    first, second = make_session(), make_session()
    listed = client.v1.checkout.sessions.list(params={"limit": 10})
    assert [s.id for s in listed.data] == [second.id, first.id]


def test_unknown_ids_are_resource_missing(client: stripe.StripeClient) -> None:
    for call in (
        lambda: client.v1.checkout.sessions.retrieve("cs_test_nope"),
        lambda: client.v1.payment_intents.retrieve("pi_nope"),
        lambda: client.v1.charges.retrieve("ch_nope"),
        lambda: client.v1.refunds.retrieve("re_nope"),
        lambda: client.v1.events.retrieve("evt_nope"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as info:
            call()
        assert (info.value.http_status, info.value.code, info.value.param) == (404, "resource_missing", "id")


@pytest.mark.parametrize("key", ["sk_live_123", "pk_test_123", "nonsense"])
def test_requires_secret_test_key(emu: Emulator, key: str) -> None:
    client = stripe.StripeClient(
        key, http_client=EmulatorHTTPClient(emu), base_addresses={"api": "http://127.0.0.1:12111"}
    )
    with pytest.raises(stripe.AuthenticationError) as info:
        client.v1.checkout.sessions.list()
    assert info.value.http_status == 401


def test_every_response_has_a_request_id(client: stripe.StripeClient, make_session: Any) -> None:
    session = make_session()
    assert session.last_response.request_id.startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert info.value.request_id.startswith("req_")


def test_cancel_url_is_optional_as_at_stripe(client: stripe.StripeClient, session_params: Any, emu: Emulator) -> None:
    """SessionCreateParams types `cancel_url` NotRequired: Stripe makes the session; the page has no cancel link."""
    params = {k: v for k, v in session_params(cancel_url=None).items() if v is not None}
    session = client.v1.checkout.sessions.create(params=params)
    assert session.status == "open" and session.cancel_url is None
    page = Client(emu.wsgi_app).get(f"/pay/{session.id}")
    assert page.status_code == 200 and "Cancel and return" not in page.get_data(as_text=True)
