"""Issue 21: staff are told by email, once each, that an order is disputed, that it closed (and how), and of an
early fraud warning: sent through the outbox to the brand's order address (else its contact address)."""

from __future__ import annotations

from typing import Any

from shopapp.services import outbox
from tests.conftest import order_for_session, session_id_from
from tests.mail.conftest import links_in


def test_staff_hear_of_a_dispute_and_its_outcome_once(
    app: Any, client: Any, shopper: Any, buy: Any, emulator: Any, mailbox: Any, stripe_dashboard: Any
) -> None:
    session_id = session_id_from(buy(A=2, C=1))
    emulator.pay(session_id, card="4000000000000259")
    emulator.deliver_pending()
    order = order_for_session(session_id)
    (dispute_id,) = list(emulator.store.disputes)
    stripe_dashboard.v1.disputes.update(dispute_id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    emulator.deliver_pending()
    for event in emulator.events():  # every event again: still one message each
        emulator.redeliver(event["id"])
    outbox.send_pending()
    staff = mailbox.to("hello@tidy-shop.example")
    subjects = sorted(m.subject for m in staff)
    assert subjects == [
        f"Order #{order.id} is disputed: respond before the due date",
        f"The dispute of order #{order.id} is closed",
    ]
    opened = next(m for m in staff if "is disputed" in m.subject)
    assert "Respond with evidence by" in opened.text() and any("/admin/disputes/" in p for p in links_in(opened.text()))
    closed = next(m for m in staff if "closed" in m.subject)
    assert "lost. Stripe took back $94.97" in closed.text()  # 79.97 and the 15.00 dispute fee


def test_staff_hear_of_an_early_fraud_warning(
    app: Any, client: Any, shopper: Any, buy: Any, emulator: Any, mailbox: Any
) -> None:
    session_id = session_id_from(buy(A=1))
    emulator.pay(session_id, card="4000000000005423")
    emulator.deliver_pending()
    order = order_for_session(session_id)
    outbox.send_pending()
    [warning] = [m for m in mailbox.to("hello@tidy-shop.example") if "fraud" in m.subject]
    assert warning.subject == f"Early fraud warning on order #{order.id}"
    assert "Refunding it now avoids a dispute" in warning.text()
