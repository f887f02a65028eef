"""Stripe Checkout end to end through the real SDK and the local Stripe service."""

from __future__ import annotations

from shopapp.models import OrderStatus
from tests.conftest import order_for_session, session_id_from


def test_happy_path_pays_once(client, shopper, buy, emulator):
    response = buy(A=2, C=1)
    session_id = session_id_from(response)
    order = order_for_session(session_id)
    assert order.status == OrderStatus.PENDING
    assert order.total_cents == 7997
    session = emulator.sessions[session_id]
    assert session["amount_total"] == 7997
    result = emulator.pay(session_id)
    assert result.status == 303
    emulator.deliver_pending()
    assert order_for_session(session_id).status == OrderStatus.PAID
    page = client.get(f"/success/?session_id={session_id}")
    assert page.status_code == 200
    assert "$79.97" in page.get_data(as_text=True)
