"""Balance transactions and undelivered events at the local Stripe service, through the real SDK (issue 21)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.balance import card_fee
from tests.emulator.conftest import Endpoint


def _line(currency: str, amount: int) -> list[dict[str, Any]]:
    return [{"quantity": 1, "price_data": {"currency": currency, "unit_amount": amount, "product_data": {"name": "X"}}}]


def _pay(emu: Emulator, make_session: Callable[..., Any], currency: str = "usd", amount: int = 1000, **kw: Any) -> Any:
    session = make_session(line_items=_line(currency, amount))
    emu.pay(session.id, **kw)
    return emu.sessions[session.id]


@pytest.mark.parametrize(
    ("currency", "amount", "fee"),
    [
        ("usd", 1000, 59),  # 2.9% + 30 cents (stripe.com/pricing)
        ("usd", 7997, 262),  # 231.9 + 30, rounded half up
        ("eur", 1000, 40),  # 1.5% + 25 cents (standard EEA cards)
        ("gbp", 1000, 35),  # 1.5% + 20p (standard UK cards)
        ("jpy", 1000, 36),  # 3.6%, no fixed fee
    ],
)
def test_a_charge_has_its_balance_transaction_with_stripes_fee(
    emu: Emulator, make_session: Callable[..., Any], client: stripe.StripeClient, currency: str, amount: int, fee: int
) -> None:
    assert card_fee(amount, currency) == fee
    session = _pay(emu, make_session, currency, amount)
    intent = client.v1.payment_intents.retrieve(session["payment_intent"], params={"expand": ["latest_charge"]})
    charge = intent.latest_charge
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.type, txn.reporting_category, txn.source, txn.currency) == ("charge", "charge", charge.id, currency)
    assert (txn.amount, txn.fee, txn.net) == (amount, fee, amount - fee)
    assert [(d.type, d.amount, d.currency) for d in txn.fee_details] == [("stripe_fee", fee, currency)]
    assert txn.status == "pending" and txn.available_on > txn.created  # paid-in funds wait two days
    emu.advance(3 * 24 * 3600)
    assert client.v1.balance_transactions.retrieve(txn.id).status == "available"


def test_refunds_take_money_out_and_a_failed_refund_brings_it_back(
    emu: Emulator, make_session: Callable[..., Any], client: stripe.StripeClient
) -> None:
    session = _pay(emu, make_session, card="4000000000005126")  # refunds succeed, then fail later
    refund = client.v1.refunds.create(params={"payment_intent": session["payment_intent"], "amount": 400})
    txn = client.v1.balance_transactions.retrieve(refund.balance_transaction, params={"expand": ["source"]})
    assert (txn.type, txn.reporting_category, txn.amount, txn.fee, txn.net) == ("refund", "refund", -400, 0, -400)
    assert txn.source.id == refund.id and txn.status == "available"
    emu.settle_refund(refund.id)
    failed = client.v1.refunds.retrieve(refund.id)
    back = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (back.type, back.reporting_category, back.amount, back.source) == (
        "refund_failure",
        "refund_failure",
        400,
        refund.id,
    )


def test_list_filters_by_created_type_and_source_and_pages_newest_first(
    emu: Emulator, make_session: Callable[..., Any], client: stripe.StripeClient
) -> None:
    first = _pay(emu, make_session, amount=1000)
    emu.advance(3600)
    start = emu.clock.timestamp()
    second = _pay(emu, make_session, amount=2000)
    refund = client.v1.refunds.create(params={"payment_intent": second["payment_intent"], "amount": 500})
    everything = client.v1.balance_transactions.list(params={"limit": 100})
    assert [t.amount for t in everything.data][-1] == 1000 and len(everything.data) == 3
    recent = client.v1.balance_transactions.list(params={"created": {"gte": start}, "limit": 100})
    assert sorted(t.amount for t in recent.data) == [-500, 2000]
    before = client.v1.balance_transactions.list(params={"created": {"lt": start}})
    assert [t.amount for t in before.data] == [1000]
    assert [t.source for t in client.v1.balance_transactions.list(params={"type": "refund"}).data] == [refund.id]
    by_source = client.v1.balance_transactions.list(params={"source": refund.id})
    assert [t.amount for t in by_source.data] == [-500]
    assert first["payment_intent"] != second["payment_intent"]
    page = client.v1.balance_transactions.list(params={"limit": 2})
    assert page.has_more and len(page.data) == 2
    rest = client.v1.balance_transactions.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert not rest.has_more and [t.amount for t in rest.data] == [1000]
    assert [t.amount for t in client.v1.balance_transactions.list().auto_paging_iter()] == [
        t.amount for t in everything.data
    ]
    expanded = client.v1.balance_transactions.list(params={"expand": ["data.source"], "type": "charge"})
    assert {t.source.object for t in expanded.data} == {"charge"}


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("created[after]=1", "created[after]", "parameter_unknown"),
        ("created[gte]=soon", "created[gte]", "parameter_invalid_integer"),
        ("type=sale", "type", "parameter_invalid_string"),
        ("colour=red", "colour", "parameter_unknown"),
        ("limit=101", "limit", "parameter_invalid_integer"),
        ("payout=po_123", "payout", "resource_missing"),
        ("expand[]=source", "expand", None),
    ],
)
def test_the_list_refuses_what_stripe_refuses(emu: Emulator, query: str, param: str, code: str | None) -> None:
    from werkzeug.test import Client

    response = Client(emu.wsgi_app).get(
        f"/v1/balance_transactions?{query}", headers={"Authorization": "Bearer sk_test_x"}
    )
    assert response.status_code in (400, 404)
    error = response.get_json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_a_missing_balance_transaction_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.balance_transactions.retrieve("txn_missing")
    assert raised.value.http_status == 404 and raised.value.code == "resource_missing"


# ---------------------------------------------------------------- undelivered events


def _undelivered(client: stripe.StripeClient, **params: Any) -> list[str]:
    listed = client.v1.events.list(params={"delivery_success": False, "limit": 100, **params})
    return [e.type for e in listed.auto_paging_iter()]


def test_delivery_success_false_lists_what_the_endpoint_did_not_acknowledge(
    emu: Emulator, endpoint: Endpoint, make_session: Callable[..., Any], client: stripe.StripeClient
) -> None:
    session = _pay(emu, make_session)
    emu.deliver_pending()
    assert _undelivered(client) == []  # every event answered 2xx
    endpoint.statuses = [500] * 100  # the shop fails every attempt from now on
    client.v1.refunds.create(params={"payment_intent": session["payment_intent"], "amount": 100})
    for _ in range(10):  # Stripe's retries (compressed), until it gives up
        emu.advance(60)
    assert emu.deliverer.pending() == 0  # given up
    assert sorted(_undelivered(client)) == ["charge.refunded", "refund.created"]
    assert _undelivered(client, types=["charge.refunded"]) == ["charge.refunded"]
    assert _undelivered(client, type="refund.*") == ["refund.created"]
    delivered = client.v1.events.list(params={"delivery_success": True, "limit": 100})
    assert "charge.refunded" not in {e.type for e in delivered.data}
    # Resent and acknowledged (the Dashboard's Resend): no longer listed; a second 2xx changes nothing.
    endpoint.statuses = []
    refunded = next(e for e in emu.events("charge.refunded"))
    assert emu.redeliver(refunded["id"]) == 200 and emu.redeliver(refunded["id"]) == 200
    assert _undelivered(client) == ["refund.created"]
    assert client.v1.events.retrieve(refunded["id"]).pending_webhooks == 0


def test_lose_control_drops_one_event_and_filters_compose(
    emu: Emulator, endpoint: Endpoint, make_session: Callable[..., Any], client: stripe.StripeClient
) -> None:
    session = _pay(emu, make_session)
    emu.deliver_pending()
    start = emu.clock.timestamp()
    emu.lose_deliveries("charge.refunded")
    client.v1.refunds.create(params={"payment_intent": session["payment_intent"], "amount": 100})
    emu.deliver_pending()
    assert "charge.refunded" not in {e.type for e in endpoint.events()[-2:]}
    assert _undelivered(client) == ["charge.refunded"]
    assert _undelivered(client, created={"gte": start}) == ["charge.refunded"]
    assert _undelivered(client, created={"lt": start}) == []
    attempts = emu.delivery_attempts(emu.events("charge.refunded")[0]["id"])
    assert attempts and attempts[0]["status"] is None and "lost" in attempts[0]["error"]


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("delivery_success=maybe", "delivery_success", "parameter_invalid_boolean"),
        ("type=a&types[]=b", "types", None),
        ("created[since]=1", "created[since]", "parameter_unknown"),
        ("colour=red", "colour", "parameter_unknown"),
        ("&".join(f"types[]=t{i}" for i in range(21)), "types", "parameter_invalid_array"),
    ],
)
def test_the_event_list_refuses_what_stripe_refuses(emu: Emulator, query: str, param: str, code: str | None) -> None:
    from werkzeug.test import Client

    response = Client(emu.wsgi_app).get(f"/v1/events?{query}", headers={"Authorization": "Bearer sk_test_x"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_the_lose_control_over_http_and_a_restart_keep_what_was_recorded(tmp_path: Any) -> None:
    from werkzeug.test import Client

    state = str(tmp_path / "state.db")
    emu = Emulator(webhook_url="http://shop.test/webhook/", sender=lambda url, body, headers: 200, state_path=state)
    web = Client(emu.wsgi_app)
    assert web.post("/_emulator/deliveries/lose", json={"type": "checkout.session.completed"}).status_code == 200
    created = web.post(
        "/v1/checkout/sessions",
        headers={"Authorization": "Bearer sk_test_x"},
        data={
            "mode": "payment",
            "success_url": "https://shop.test/ok",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "gbp",
            "line_items[0][price_data][unit_amount]": "1000",
            "line_items[0][price_data][product_data][name]": "Mug",
        },
    ).get_json()
    emu.pay(created["id"])
    emu.deliver_pending()
    emu.close()
    again = Emulator(state_path=state, sender=lambda url, body, headers: 200)
    web = Client(again.wsgi_app)
    headers = {"Authorization": "Bearer sk_test_x"}
    listed = web.get("/v1/balance_transactions", headers=headers).get_json()["data"]
    assert [(t["type"], t["amount"], t["fee"]) for t in listed] == [("charge", 1000, 35)]
    lost = web.get("/v1/events?delivery_success=false", headers=headers).get_json()["data"]
    assert [e["type"] for e in lost] == ["checkout.session.completed"]
    again.close()
