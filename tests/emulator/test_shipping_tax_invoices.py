"""Shipping options, Stripe Tax test mode, paid invoices and the page's locale, driven through the SDK (issue 23)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from werkzeug.test import Client

from stripe_emulator import Clock, Emulator, EmulatorHTTPClient
from stripe_emulator.__main__ import main as emulator_main
from stripe_emulator.taxes import Registration, TaxSettings
from tests.emulator.conftest import SECRET, WEBHOOK_URL, Endpoint, _session_params

CALIFORNIA = {"name": "Ann Lee", "line1": "1 Main St", "city": "Fresno", "state": "CA", "postal_code": "93650"}


def _refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- shipping


def test_shipping_rates_are_created_and_offered(emu: Emulator, client: stripe.StripeClient, make_session: Any) -> None:
    ground = client.v1.shipping_rates.create(
        params={
            "display_name": "Ground",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 500, "currency": "usd"},
            "delivery_estimate": {"minimum": {"unit": "business_day", "value": 2}},
        }
    )
    assert ground.id.startswith("shr_") and ground.fixed_amount.amount == 500 and ground.active
    assert client.v1.shipping_rates.retrieve(ground.id).display_name == "Ground"
    assert [r.id for r in client.v1.shipping_rates.list(params={"active": True}).data] == [ground.id]
    session = make_session(
        shipping_address_collection={"allowed_countries": ["US"]},
        shipping_options=[
            {"shipping_rate": ground.id},
            {
                "shipping_rate_data": {
                    "display_name": "Express",
                    "fixed_amount": {"amount": 1500, "currency": "usd"},
                }
            },
        ],
    )
    assert [o.shipping_amount for o in session.shipping_options] == [500, 1500]
    assert session.shipping_cost.shipping_rate == ground.id and session.total_details.amount_shipping == 500
    assert session.amount_total == 4498 + 500
    express = session.shipping_options[1].shipping_rate
    assert client.v1.shipping_rates.retrieve(express).display_name == "Express"  # inline data made a rate
    emu.pay(session.id, shipping={**CALIFORNIA, "country": "US"}, shipping_rate=express)
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert paid.shipping_cost.shipping_rate == express and paid.total_details.amount_shipping == 1500
    assert paid.amount_total == paid.payment_intent.amount == 4498 + 1500


def test_shipping_options_that_do_not_fit_are_refused(client: stripe.StripeClient, make_session: Any) -> None:
    euro = client.v1.shipping_rates.create(
        params={"display_name": "EU", "fixed_amount": {"amount": 500, "currency": "eur"}}
    )
    assert _refused(lambda: make_session(shipping_options=[{"shipping_rate": euro.id}])).param == (
        "shipping_options[0][shipping_rate]"
    )
    client.v1.shipping_rates.update(euro.id, params={"active": False})
    assert "inactive" in str(_refused(lambda: make_session(shipping_options=[{"shipping_rate": euro.id}])).user_message)
    both = {"shipping_rate": euro.id, "shipping_rate_data": {"display_name": "x"}}
    assert _refused(lambda: make_session(shipping_options=[both])).param == "shipping_options[0]"
    six = [{"shipping_rate_data": {"display_name": "x", "fixed_amount": {"amount": 1, "currency": "usd"}}}] * 6
    assert _refused(lambda: make_session(shipping_options=six)).param == "shipping_options"
    assert _refused(lambda: client.v1.shipping_rates.create(params={"display_name": "x"})).param == "fixed_amount"


def test_a_rate_in_several_currencies_offers_each_sessions_amount(
    client: stripe.StripeClient, make_session: Any
) -> None:
    # ShippingRateCreateParamsFixedAmount.currency_options: a rate defined in each currency option. The shop
    # sends them for a rate staff priced in several currencies (services/discounts.py); the local service
    # refused them before, so such a rate could not be created at all.
    both = client.v1.shipping_rates.create(
        params={
            "display_name": "Standard",
            "fixed_amount": {"amount": 495, "currency": "usd", "currency_options": {"eur": {"amount": 450}}},
        }
    )
    assert both.fixed_amount.currency_options["eur"].amount == 450
    assert [r.id for r in client.v1.shipping_rates.list(params={"currency": "eur"}).data] == [both.id]
    usd = make_session(shipping_options=[{"shipping_rate": both.id}])
    assert usd.total_details.amount_shipping == 495 and usd.shipping_options[0].shipping_amount == 495
    euro_items = [
        {"price_data": {"currency": "eur", "unit_amount": 1000, "product_data": {"name": "A"}}, "quantity": 1}
    ]
    eur = make_session(line_items=euro_items, shipping_options=[{"shipping_rate": both.id}])
    assert eur.total_details.amount_shipping == 450 and eur.amount_total == 1000 + 450
    pounds = [{"price_data": {"currency": "gbp", "unit_amount": 1000, "product_data": {"name": "A"}}, "quantity": 1}]
    refused = _refused(lambda: make_session(line_items=pounds, shipping_options=[{"shipping_rate": both.id}]))
    assert refused.param == "shipping_options[0][shipping_rate]"
    bad = {
        "display_name": "x",
        "fixed_amount": {"amount": 1, "currency": "usd", "currency_options": {"xyz": {"amount": 1}}},
    }
    assert _refused(lambda: client.v1.shipping_rates.create(params=bad)).param == (
        "fixed_amount[currency_options][xyz]"
    )


# ---------------------------------------------------------------- tax


def _taxed_emulator(endpoint: Endpoint, clock: Clock, **settings: Any) -> Emulator:
    registrations = (Registration.parse("US-CA:7.25"), Registration.parse("DE:19"))
    return Emulator(
        webhook_url=WEBHOOK_URL,
        webhook_secret=SECRET,
        sender=endpoint,
        clock=clock,
        tax=TaxSettings(registrations, **settings),
    )


@pytest.fixture
def taxed(endpoint: Endpoint, clock: Clock) -> Iterator[tuple[Emulator, stripe.StripeClient]]:
    emulator = _taxed_emulator(endpoint, clock)
    client = stripe.StripeClient(
        "sk_test_emulator",
        http_client=EmulatorHTTPClient(emulator, retry_delay=0),
        base_addresses={"api": "http://127.0.0.1:12111"},
    )
    yield emulator, client
    emulator.close()


def _items(behavior: str) -> list[dict[str, Any]]:
    return [
        {
            "quantity": 2,
            "price_data": {
                "currency": "usd",
                "unit_amount": 1000,
                "tax_behavior": behavior,
                "product_data": {"name": "Mug", "tax_code": "txcd_99999999"},
            },
        },
        {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": 500,
                "tax_behavior": behavior,
                "product_data": {"name": "Gift card", "tax_code": "txcd_00000000"},
            },
        },
    ]


def test_exclusive_tax_is_added_once_the_address_is_known(taxed: tuple[Emulator, stripe.StripeClient]) -> None:
    emu, client = taxed
    session = client.v1.checkout.sessions.create(
        params=_session_params(emu, line_items=_items("exclusive"), automatic_tax={"enabled": True})
    )
    assert session.automatic_tax.enabled and session.automatic_tax.status == "requires_location_inputs"
    assert session.amount_total == 2500 and session.total_details.amount_tax == 0
    # Without an address Checkout cannot confirm: the page asks for it.
    refused = emu.pay(session.id)
    assert refused.status == 400 and "billing address" in str(refused.message)
    assert emu.pay(session.id, billing={**CALIFORNIA, "country": "US"}).status == 303
    paid = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["total_details.breakdown", "payment_intent"]}
    )
    # 7.25 % of 20.00 (the nontaxable gift card is not taxed) = 1.45, added on top.
    assert paid.automatic_tax.status == "complete" and paid.total_details.amount_tax == 145
    assert paid.amount_total == paid.payment_intent.amount == 2500 + 145
    reasons = {t.taxability_reason: t for t in paid.total_details.breakdown.taxes}
    assert reasons["standard_rated"].amount == 145 and reasons["standard_rated"].rate.percentage == 7.25
    assert reasons["standard_rated"].rate.state == "CA" and not reasons["standard_rated"].rate.inclusive
    assert reasons["not_subject_to_tax"].amount == 0
    assert paid.customer_details.address.country == "US"


def test_inclusive_tax_is_inside_the_price(taxed: tuple[Emulator, stripe.StripeClient]) -> None:
    emu, client = taxed
    session = client.v1.checkout.sessions.create(
        params=_session_params(emu, line_items=_items("inclusive"), automatic_tax={"enabled": True})
    )
    emu.pay(session.id, billing={"country": "DE", "postal_code": "10115", "city": "Berlin", "line1": "A 1"})
    paid = client.v1.checkout.sessions.retrieve(session.id)
    # 20.00 including 19 % VAT: 20.00 - round(20.00 / 1.19) = 3.19; the total does not change.
    assert paid.total_details.amount_tax == 319 and paid.amount_total == 2500


def test_a_place_without_registration_is_not_taxed(taxed: tuple[Emulator, stripe.StripeClient]) -> None:
    emu, client = taxed
    session = client.v1.checkout.sessions.create(
        params=_session_params(emu, line_items=_items("exclusive"), automatic_tax={"enabled": True})
    )
    emu.pay(session.id, billing={"country": "US", "state": "NY", "postal_code": "10001"})
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["total_details.breakdown"]})
    assert paid.total_details.amount_tax == 0 and paid.amount_total == 2500
    assert {t.taxability_reason for t in paid.total_details.breakdown.taxes} == {"not_collecting"}


def test_automatic_tax_refusals(emu: Emulator, client: stripe.StripeClient, make_session: Any) -> None:
    # No registrations: Stripe Tax is not set up on this account.
    assert "not been activated" in str(_refused(lambda: make_session(automatic_tax={"enabled": True})).user_message)
    assert _refused(lambda: make_session(line_items=[{"quantity": 1, "price_data": {
        "currency": "usd", "unit_amount": 900, "product_data": {"name": "x", "tax_code": "txcd_bogus"}}}])).param == (
        "line_items[0][price_data][product_data][tax_code]"
    )  # fmt: skip


def test_tax_behaviour_is_needed_without_a_default(taxed: tuple[Emulator, stripe.StripeClient]) -> None:
    emu, client = taxed
    error = _refused(
        lambda: client.v1.checkout.sessions.create(params=_session_params(emu, automatic_tax={"enabled": True}))
    )
    assert error.param == "automatic_tax[enabled]" and "tax behavior" in str(error.user_message)


@pytest.mark.parametrize("version", ["2022-11-15", "2025-03-31.basil", stripe.api_version])
def test_an_account_default_adds_tax_unless_the_session_says_no(endpoint: Endpoint, clock: Clock, version: str) -> None:
    emu = _taxed_emulator(endpoint, clock, checkout_default="enabled_when_possible", default_behavior="exclusive")
    web = Client(emu.wsgi_app)
    headers = {"Authorization": "Bearer sk_test_x", "Stripe-Version": version}
    base = {
        "mode": "payment",
        "success_url": "https://shop.test/ok",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "10000",
        "line_items[0][price_data][product_data][name]": "Lamp",
    }
    silent = json.loads(web.post("/v1/checkout/sessions", data=base, headers=headers).get_data())
    assert silent["automatic_tax"]["enabled"] is True  # the shop did not ask; the account default did
    explicit = json.loads(
        web.post("/v1/checkout/sessions", data={**base, "automatic_tax[enabled]": "false"}, headers=headers).get_data()
    )
    assert explicit["automatic_tax"] == {"enabled": False, "liability": None, "provider": None, "status": None}
    emu.pay(silent["id"], billing={"country": "US", "state": "CA", "postal_code": "93650"})
    emu.pay(explicit["id"])
    totals = {s["id"]: (s["amount_total"], s["total_details"]["amount_tax"]) for s in emu.sessions.values()}
    assert totals == {silent["id"]: (10725, 725), explicit["id"]: (10000, 0)}
    emu.close()


def test_the_page_asks_for_the_billing_address_tax_needs(
    taxed: tuple[Emulator, stripe.StripeClient],
) -> None:
    emu, client = taxed
    session = client.v1.checkout.sessions.create(
        params=_session_params(emu, line_items=_items("exclusive"), automatic_tax={"enabled": True}, locale="de")
    )
    web = Client(emu.wsgi_app)
    page = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert '<html lang="de">' in page and "Rechnungsadresse" in page and 'name="billing_postal_code"' in page
    assert "Calculated from your address" in page and "25,00" in page  # German number format
    form = {
        "card_number": "4242424242424242",
        "expiry": "12/34",
        "cvc": "123",
        "billing_country": "US",
        "billing_state": "CA",
        "billing_postal_code": "93650",
    }
    assert web.post(f"/pay/{session.id}", data=form).status_code == 303
    assert client.v1.checkout.sessions.retrieve(session.id).total_details.amount_tax == 145


# ---------------------------------------------------------------- invoices


def test_a_paid_invoice_with_its_page_and_pdf(
    emu: Emulator, client: stripe.StripeClient, make_session: Any, endpoint: Endpoint
) -> None:
    session = make_session(invoice_creation={"enabled": True, "invoice_data": {"description": "Order 7"}})
    assert session.invoice_creation.enabled and session.invoice is None
    emu.pay(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["invoice"]})
    invoice = paid.invoice
    assert invoice.status == "paid" and invoice.amount_paid == paid.amount_total == invoice.total
    assert invoice.description == "Order 7" and invoice.number
    web = Client(emu.wsgi_app)
    page = web.get(invoice.hosted_invoice_url.removeprefix("http://127.0.0.1:12111"))
    assert page.status_code == 200 and "Invoice" in page.get_data(as_text=True)
    pdf = web.get(invoice.invoice_pdf.removeprefix("http://127.0.0.1:12111"))
    body = pdf.get_data()
    assert pdf.mimetype == "application/pdf" and body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    assert b"Total: $44.98" in body
    emu.deliver_pending()
    types = [e.type for e in endpoint.events()]
    assert types.index("invoice.paid") < types.index("checkout.session.completed")
    assert {"invoice.created", "invoice.finalized", "invoice.payment_succeeded"} <= set(types)
    completed = next(e for e in endpoint.events() if e.type == "checkout.session.completed")
    assert completed.data.object.invoice == invoice.id


def test_no_invoice_unless_asked(emu: Emulator, client: stripe.StripeClient, paid_session: Any) -> None:
    assert client.v1.checkout.sessions.retrieve(paid_session.id).invoice is None
    assert not emu.events("invoice.paid")


def test_the_command_line_sets_up_stripe_tax() -> None:
    with pytest.raises(SystemExit):
        emulator_main(["--tax-registration", "California"])


def test_an_account_default_leaves_an_incompatible_session_untaxed(endpoint: Endpoint, clock: Clock) -> None:
    # No default tax behaviour and none on the price: the session is created without tax, not refused.
    emu = _taxed_emulator(endpoint, clock, checkout_default="enabled_when_possible")
    web = Client(emu.wsgi_app)
    data = {
        "mode": "payment",
        "success_url": "https://shop.test/ok",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "10000",
        "line_items[0][price_data][product_data][name]": "Lamp",
    }
    session = json.loads(
        web.post("/v1/checkout/sessions", data=data, headers={"Authorization": "Bearer sk_test_x"}).get_data()
    )
    assert session["automatic_tax"]["enabled"] is False and session["amount_total"] == 10000
    emu.close()


@pytest.mark.parametrize("version", ["2022-11-15", "2025-03-31.basil", stripe.api_version])
def test_completed_event_carries_discount_shipping_and_tax_at_each_version(
    endpoint: Endpoint, clock: Clock, version: str
) -> None:
    emu = _taxed_emulator(endpoint, clock)
    client = stripe.StripeClient(
        "sk_test_emulator",
        http_client=EmulatorHTTPClient(emu, retry_delay=0),
        base_addresses={"api": "http://127.0.0.1:12111"},
    )
    client.v1.webhook_endpoints.update(
        next(iter(emu.store.webhook_endpoints)), params={"disabled": True}
    )  # only the endpoint at `version` below receives events
    hook = client.v1.webhook_endpoints.create(
        params={"url": "https://shop.test/hook", "enabled_events": ["*"], "api_version": version}
    )
    coupon = client.v1.coupons.create(params={"amount_off": 500, "currency": "usd"})
    session = client.v1.checkout.sessions.create(
        params=_session_params(
            emu,
            line_items=_items("exclusive"),
            automatic_tax={"enabled": True},
            discounts=[{"coupon": coupon.id}],
            shipping_address_collection={"allowed_countries": ["US"]},
            shipping_options=[
                {
                    "shipping_rate_data": {
                        "display_name": "Ground",
                        "fixed_amount": {"amount": 700, "currency": "usd"},
                        "tax_behavior": "exclusive",
                    }
                }
            ],
        )
    )
    emu.pay(session.id, shipping={**CALIFORNIA, "country": "US"})
    emu.deliver_pending()
    events = [json.loads(body) for body, _ in endpoint.received]
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    assert completed["api_version"] == version and hook.api_version == version
    paid = completed["data"]["object"]
    details = paid["total_details"]
    # 25.00 - 5.00 off spread over the lines (mug 16.00 taxable, gift card 4.00 not), shipping 7.00 taxed:
    # tax = round(16.00 * 7.25 %) + round(7.00 * 7.25 %) = 1.16 + 0.51.
    assert details == {"amount_discount": 500, "amount_shipping": 700, "amount_tax": 167}
    assert paid["amount_total"] == 2500 - 500 + 700 + 167 and paid["amount_subtotal"] == 2500
    assert paid["discounts"] == [{"coupon": coupon.id, "promotion_code": None}]
    assert paid["shipping_cost"]["amount_tax"] == 51
    emu.close()


def test_update_total_shows_shipping_and_tax_before_paying(taxed: tuple[Emulator, stripe.StripeClient]) -> None:
    emu, client = taxed
    params = _session_params(
        emu,
        line_items=_items("exclusive"),
        automatic_tax={"enabled": True},
        shipping_options=[
            {
                "shipping_rate_data": {
                    "display_name": name,
                    "fixed_amount": {"amount": amount, "currency": "usd"},
                    "tax_behavior": "exclusive",
                }
            }
            for name, amount in (("Ground", 500), ("Express", 1500))
        ],
    )
    session = client.v1.checkout.sessions.create(params=params)
    express = session.shipping_options[1].shipping_rate
    web = Client(emu.wsgi_app)
    page = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert 'id="update-total"' in page and "$30.00" in page  # 25.00 + ground 5.00, tax not yet known
    form = {"shipping_rate": express, "billing_country": "US", "billing_state": "CA", "billing_postal_code": "93650"}
    assert web.post(f"/pay/{session.id}/update", data=form).status_code == 303
    page = web.get(f"/pay/{session.id}").get_data(as_text=True)
    # 20.00 taxable goods + 15.00 shipping at 7.25 % = 1.45 + 1.09; the typed address stays in the form.
    assert "Pay $42.54" in page and 'value="93650"' in page and "$2.54" in page
    assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 4254
    paid = web.post(
        f"/pay/{session.id}", data={**form, "card_number": "4242424242424242", "expiry": "12/34", "cvc": "1"}
    )
    assert paid.status_code == 303  # a three-digit CVC is needed
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    web.post(f"/pay/{session.id}", data={**form, "card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete" and done.amount_total == 4254
