"""The hosted payment page, driven like a browser through the WSGI app."""

from __future__ import annotations

import re
from typing import Any

import pytest
from werkzeug.test import Client

from stripe_emulator import Emulator


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
    assert '<html lang="en">' in html and re.search(r"<title>Pay 44\.98 USD</title>", html)
    for field in ("card_number", "expiry", "cvc"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert 'href="https://shop.test/cart/"' in html
    assert web.get("/static/emulator.css").mimetype == "text/css"


def test_paying_redirects_to_success_url_with_session_id(web: Client, make_session: Any,
                                                         emu: Emulator) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form())
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"https://shop.test/success/?session_id={session.id}")
    stored = emu.sessions[session.id]
    assert (stored["status"], stored["payment_status"]) == ("complete", "paid")
    assert stored["success_url"].endswith("{CHECKOUT_SESSION_ID}")
    completed = emu.events("checkout.session.completed")
    assert [e["data"]["object"]["payment_status"] for e in completed] == ["paid"]


@pytest.mark.parametrize(("card", "status", "message"), [
    ("4000 0000 0000 0002", 402, "Your card was declined."),
    ("4000000000009995", 402, "Your card has insufficient funds."),
    ("4242 4242 4242 4241", 400, "Your card number is incorrect."),
])
def test_declines_keep_the_session_open(web: Client, make_session: Any, emu: Emulator,
                                        card: str, status: int, message: str) -> None:
    session = make_session()
    response = web.post(f"/pay/{session.id}", data=_form(card=card))
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert emu.sessions[session.id]["status"] == "open"
    assert emu.store.charges == {} and emu.events() == []
    assert web.post(f"/pay/{session.id}", data=_form()).status_code == 303


def test_expired_and_complete_sessions_cannot_be_paid(web: Client, make_session: Any,
                                                      emu: Emulator) -> None:
    expired, paid = make_session(), make_session()
    emu.expire(expired.id)
    emu.pay(paid.id)
    assert web.get(f"/pay/{expired.id}").status_code == 410
    assert "expired" in web.post(f"/pay/{expired.id}", data=_form()).get_data(as_text=True)
    assert web.post(f"/pay/{paid.id}", data=_form()).status_code == 409
    assert web.get("/pay/cs_test_unknown").status_code == 404
    assert len(emu.store.charges) == 1


def test_delayed_payment_that_later_succeeds(web: Client, make_session: Any,
                                             emu: Emulator) -> None:
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
    assert emu.store.payment_intents[stored["payment_intent"]]["status"] == (
        "requires_payment_method")
    assert emu.store.charges == {}
    failed = emu.events("checkout.session.async_payment_failed")
    assert [e["data"]["object"]["id"] for e in failed] == [session.id]
