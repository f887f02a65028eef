"""The hosted payment page, driven like a browser through the WSGI app."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe
from werkzeug.test import Client

from stripe_emulator import Emulator, EmulatorHTTPClient


@pytest.fixture
def web(emu: Emulator) -> Client:
    return Client(emu.wsgi_app)


def _form(method: str = "card", card: str = "4242 4242 4242 4242") -> dict[str, str]:
    return {"method": method, "card_number": card, "expiry": "12 / 34", "cvc": "123"}


def test_form_is_plain_accessible_html(web: Client, make_session: Any) -> None:
    session = make_session()
    page = web.get(f"/pay/{session.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="en">' in html and re.search(r"<title>Pay \$44\.98 - Your business</title>", html)
    assert '<h1 class="amount-due">Pay $44.98</h1>' in html and '<p class="business">Your business</p>' in html
    for field in ("card_number", "expiry", "cvc"):
        assert f'<label for="{field}"' in html and f'id="{field}"' in html
    # Only same-origin assets, allowed by the page's CSP; no inline script or style.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/emulator.js" defer>']
    assert "style=" not in html and "<style" not in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "form-action 'self' https://shop.test" in csp  # the redirect to the shop after paying
    assert 'href="https://shop.test/cart/"' in html
    assert web.get("/static/emulator.css").mimetype == "text/css"
    assert web.get("/static/emulator.js").mimetype == "text/javascript"


def test_order_summary_shows_money_and_a_total_row(web: Client, make_session: Any) -> None:
    html = web.get(f"/pay/{make_session().id}").get_data(as_text=True)
    assert 'Mug<span class="unit">Qty 2 &times; $19.99</span></div></div></td><td class="num">$39.98</td>' in html
    assert 'Sticker<span class="unit">Qty 1 &times; $5.00</span></div></div></td><td class="num">$5.00</td>' in html
    # A picture tile per product and the TEST MODE badge beside the business name.
    assert (
        '<span class="thumb" aria-hidden="true">M</span>' in html
        and '<span class="test-badge">Test mode</span>' in html
    )
    assert '<tfoot><tr><th scope="row">Total due</th><td class="num">$44.98</td></tr></tfoot>' in html
    assert "USD" not in html


def test_back_after_declined_then_paid_lands_on_the_paid_page(web: Client, make_session: Any) -> None:
    session = make_session()
    declined = web.post(f"/pay/{session.id}", data=_form(card="4000 0000 0000 0002"))
    assert declined.status_code == 303 and web.get(declined.headers["Location"]).status_code == 200
    assert web.post(f"/pay/{session.id}", data=_form()).status_code == 303
    # Back from the shop's success page: the history holds only GETs of /pay/<id>, which now says it is paid.
    back = web.get(f"/pay/{session.id}")
    assert back.status_code == 200 and "Payment received" in back.get_data(as_text=True)


def test_the_sessions_display_name_is_the_business_on_the_page(web: Client, make_session: Any) -> None:
    session = make_session(branding_settings={"display_name": "Harbour & Kiln", "button_color": "#1f5f4a"})
    html = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert '<p class="business">Harbour &amp; Kiln</p>' in html and "- Harbour &amp; Kiln</title>" in html
    with pytest.raises(stripe.InvalidRequestError):
        make_session(branding_settings={"button_color": "green"})


def test_business_name_is_shown(clock: Any, session_params: Any) -> None:
    emulator = Emulator(clock=clock, business_name="Tidy Shop")
    client = stripe.StripeClient(
        "sk_test_x", http_client=EmulatorHTTPClient(emulator), base_addresses={"api": "http://127.0.0.1:12111"}
    )
    session = client.v1.checkout.sessions.create(params=session_params())
    html = Client(emulator.wsgi_app).get(f"/pay/{session.id}").get_data(as_text=True)
    assert '<p class="business">Tidy Shop</p>' in html and "<title>Pay $44.98 - Tidy Shop</title>" in html


def test_card_fields_are_hidden_when_bank_debit_is_chosen(web: Client, make_session: Any) -> None:
    session = make_session()
    card = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert '<fieldset id="card-fields">' in card
    debit = web.post(f"/pay/{session.id}", data={"method": "delayed_succeed", "card_number": "x"})
    assert debit.status_code == 303  # bank debit needs no card fields
    other = make_session()
    refused = web.post(f"/pay/{other.id}", data={"method": "card", "card_number": "1"})
    assert refused.status_code == 303  # Post/Redirect/Get: the form page shows why, once
    bad = web.get(refused.headers["Location"]).get_data(as_text=True)
    assert '<fieldset id="card-fields">' in bad and "Your card number is incorrect." in bad
    script = web.get("/static/emulator.js").get_data(as_text=True)
    assert 'card.hidden = chosen !== null && chosen.value !== "card"' in script


@pytest.mark.parametrize("expiry", ["1234", "12/34", "12 / 34", "12/2034", "122034"])
def test_expiry_accepts_what_shoppers_type(emu: Emulator, make_session: Any, expiry: str) -> None:
    session = make_session()
    assert emu.pay(session.id, expiry=expiry).outcome == "paid"


@pytest.mark.parametrize("expiry", ["13/34", "1/", "12", "0034"])
def test_expiry_rejects_incomplete_dates(emu: Emulator, make_session: Any, expiry: str) -> None:
    result = emu.pay(make_session().id, expiry=expiry)
    assert (result.status, result.outcome) == (400, "invalid_expiry_month")


def test_paying_redirects_to_success_url_with_session_id(web: Client, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form())
    assert response.status_code == 303
    assert response.headers["Location"] == (f"https://shop.test/success/?session_id={session.id}")
    stored = emu.sessions[session.id]
    assert (stored["status"], stored["payment_status"]) == ("complete", "paid")
    assert stored["success_url"].endswith("{CHECKOUT_SESSION_ID}")
    completed = emu.events("checkout.session.completed")
    assert [e["data"]["object"]["payment_status"] for e in completed] == ["paid"]


@pytest.mark.parametrize(
    ("card", "code", "decline_code", "message"),
    [
        ("4000 0000 0000 0002", "card_declined", "generic_decline", "Your card was declined."),
        ("4000000000009995", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_declines_fail_the_payment_intent_and_keep_the_session_open(
    web: Client, make_session: Any, emu: Emulator, client: Any, card: str, code: str, decline_code: str, message: str
) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form(card=card))
    # Post/Redirect/Get: Back after a later successful payment never lands on a re-POST of this form.
    assert (response.status_code, response.headers["Location"]) == (303, f"/pay/{session.id}")
    shown = web.get(response.headers["Location"]).get_data(as_text=True)
    assert message in shown and 'value="4000' not in shown  # the card number is not kept
    assert message not in web.get(f"/pay/{session.id}").get_data(as_text=True)  # shown once
    stored = client.v1.checkout.sessions.retrieve(session.id)
    assert (stored.status, stored.payment_status) == ("open", "unpaid")
    intent = client.v1.payment_intents.retrieve(stored.payment_intent)  # the session names its intent
    assert intent.status == "requires_payment_method"
    error = intent.last_payment_error
    assert (error.type, error.code, error.decline_code, error.message) == ("card_error", code, decline_code, message)
    assert client.v1.charges.retrieve(error.charge).status == "failed"
    assert [e["type"] for e in emu.events()] == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]
    failed = emu.events("payment_intent.payment_failed")[0]["data"]["object"]
    assert failed["last_payment_error"]["decline_code"] == decline_code
    # Paying again with a good card confirms the same PaymentIntent.
    assert web.post(f"/pay/{session.id}", data=_form()).status_code == 303
    assert emu.sessions[session.id]["payment_intent"] == intent.id
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_incomplete_card_fields_change_nothing(web: Client, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form(card="4242 4242 4242 4241"))
    assert response.status_code == 303
    assert "Your card number is incorrect." in web.get(response.headers["Location"]).get_data(as_text=True)
    assert emu.sessions[session.id]["payment_intent"] is None
    assert emu.store.charges == {} and emu.events() == []


def test_expired_and_complete_sessions_cannot_be_paid(web: Client, make_session: Any, emu: Emulator) -> None:
    expired, paid = make_session(), make_session()
    emu.expire(expired.id)
    emu.pay(paid.id)
    expired_page = web.get(f"/pay/{expired.id}")
    assert expired_page.status_code == 410
    assert '<a href="https://shop.test/">Return to Your business</a>' in expired_page.get_data(as_text=True)
    assert "expired" in web.post(f"/pay/{expired.id}", data=_form()).get_data(as_text=True)
    assert web.post(f"/pay/{paid.id}", data=_form()).status_code == 409
    # Back after paying: a page that links to the shop's confirmation, not a dead end.
    back = web.get(f"/pay/{paid.id}")
    assert back.status_code == 200
    assert f'<a href="https://shop.test/success/?session_id={paid.id}">Return to Your business</a>' in back.get_data(
        as_text=True
    )
    assert web.get("/pay/cs_test_unknown").status_code == 404
    assert len(emu.store.charges) == 1


def test_delayed_payment_that_later_succeeds(web: Client, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form("delayed_succeed", card=""))
    assert response.status_code == 303
    stored = emu.sessions[session.id]
    assert (stored["status"], stored["payment_status"]) == ("complete", "unpaid")
    assert emu.store.payment_intents[stored["payment_intent"]]["status"] == "processing"
    assert emu.store.charges == {}
    emu.complete_async(session.id, succeed=True)
    assert emu.sessions[session.id]["payment_status"] == "paid"
    assert len(emu.store.charges) == 1
    types = [e["type"] for e in emu.events() if e["type"].startswith("checkout.")]
    assert types == ["checkout.session.completed", "checkout.session.async_payment_succeeded"]


def test_delayed_payment_that_later_fails(web: Client, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    web.post(f"/pay/{session.id}", data=_form("delayed_fail", card=""))
    emu.clock.advance(emu.async_delay or 0)
    emu.tick()  # due delayed payments complete on the service clock
    stored = emu.sessions[session.id]
    assert stored["payment_status"] == "unpaid"
    assert emu.store.payment_intents[stored["payment_intent"]]["status"] == ("requires_payment_method")
    assert emu.store.charges == {}
    failed = emu.events("checkout.session.async_payment_failed")
    assert [e["data"]["object"]["id"] for e in failed] == [session.id]


def test_shipping_address_is_collected_on_the_page(web: Client, emu: Emulator, make_session: Any, client: Any) -> None:
    session = make_session(shipping_address_collection={"allowed_countries": ["US", "GB"]})
    html = web.get(f"/pay/{session.id}").get_data(as_text=True)
    assert "<legend>Shipping address</legend>" in html
    assert re.findall(r'<option value="(\w+)"', html) == ["US", "GB"]
    assert '<option value="GB">United Kingdom</option>' in html
    form = {**_form(), "name": "", "line1": "1 High St", "city": "London", "postal_code": "N1 9GU", "country": "GB"}
    refused = web.post(f"/pay/{session.id}", data=form)
    assert refused.status_code == 303
    missing = web.get(refused.headers["Location"])
    assert "Enter the name to ship to." in missing.get_data(as_text=True)
    assert 'value="1 High St"' in missing.get_data(as_text=True)  # what was typed is kept
    assert emu.sessions[session.id]["payment_intent"] is None
    assert web.post(f"/pay/{session.id}", data={**form, "name": "Ann Lee"}).status_code == 303
    shipped = client.v1.checkout.sessions.retrieve(session.id).collected_information.shipping_details
    assert (shipped.name, shipped.address.country, shipped.address.postal_code) == ("Ann Lee", "GB", "N1 9GU")


@pytest.mark.parametrize(
    ("currency", "unit_amount", "unit", "total"),
    [
        ("jpy", 1500, "¥1,500", "¥3,000"),  # zero-decimal: 1500 is 1,500 yen, not 15
        ("krw", 5000, "₩5,000", "₩10,000"),
        ("huf", 17550, "HUF175.50", "HUF351.00"),  # Stripe charges HUF with two decimals (CLDR would round)
        ("usd", 1999, "$19.99", "$39.98"),
    ],
)
def test_amounts_follow_the_currencys_minor_units(web: Client, make_session: Any, currency: str, unit_amount: int,
                                                  unit: str, total: str) -> None:  # fmt: skip
    line = {"quantity": 2, "price_data": {"currency": currency, "unit_amount": unit_amount,
                                          "product_data": {"name": "Tea bowl"}}}  # fmt: skip
    html = web.get(f"/pay/{make_session(line_items=[line]).id}").get_data(as_text=True)
    assert f'<h1 class="amount-due">Pay {total}</h1>' in html and f"<title>Pay {total} - Your business</title>" in html
    assert (
        f'Tea bowl<span class="unit">Qty 2 &times; {unit}</span></div></div></td><td class="num">{total}</td>' in html
    )
    assert f'<button type="submit" id="pay-button">Pay {total}</button>' in html
