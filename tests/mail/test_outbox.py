"""The outbox: mail written with its cause, sent once after commit, kept when SMTP is down, failed when refused."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from shopapp.extensions import db
from shopapp.models import MailKind, MailStatus, OutboxMessage, PaymentEvent, Refund
from shopapp.services import outbox, refunds
from tests.conftest import fresh
from tests.mail.conftest import links_in


def outbox_rows(kind: MailKind | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list(fresh().scalars(query))


def test_signup_sends_a_welcome_after_commit(client, mailbox):
    response = client.post(
        "/account/signup",
        data={"email": "New.Shopper@Example.com", "password": "tulip-anchor-violet", "confirm": "tulip-anchor-violet"},
        buffered=True,  # the test client runs the after-response sender when the response is closed
    )
    assert response.status_code == 302
    [welcome] = mailbox.wait_for(1, "the welcome email")
    assert welcome.to == "new.shopper@example.com"
    assert welcome.subject == "Welcome to Tidy Shop"
    assert welcome.message["Message-ID"] == f"<user-{outbox_rows()[0].user_id}-welcome@tidy-shop.local>"
    assert "Welcome to Tidy Shop!" in welcome.text() and "<strong>new.shopper@example.com</strong>" in welcome.html()
    [row] = outbox_rows()
    assert (row.kind, row.status, row.attempts) == (MailKind.WELCOME, MailStatus.SENT, 1)


def test_one_receipt_per_order_whatever_the_repeats(app, client, paid_order, emulator, mailbox):
    order = paid_order(A=2, C=1)
    # The same paid webhook again and again, the success page, and reconcile's sender: still one row.
    event_ids = list(fresh().scalars(select(PaymentEvent.stripe_event_id).where(PaymentEvent.order_id == order.id)))
    assert event_ids
    for _ in range(5):
        for event_id in event_ids:
            assert emulator.redeliver(event_id) == 200
    for _ in range(3):
        assert client.get(f"/success/?session_id={order.stripe_session_id}").status_code == 200
    assert len(outbox_rows(MailKind.ORDER_RECEIPT)) == 1
    first = outbox.send_pending()
    second = outbox.send_pending()
    assert (first.sent, second.sent) == (2, 0)  # the shopper's welcome and the one receipt; then nothing
    [receipt] = [m for m in mailbox.to("shopper@example.com") if "receipt" in m.subject]
    assert receipt.subject == f"Your Tidy Shop receipt for order #{order.id}"
    assert receipt.message["Message-ID"] == f"<order-{order.id}-receipt@tidy-shop.local>"
    text = receipt.text()
    assert f"Order #{order.id}" in text and "2 x Product A" in text and "Total paid: $79.97" in text
    assert f"/orders/{order.id}" in links_in(text)
    assert client.get(f"/orders/{order.id}").status_code == 200  # the link works for the owner


def test_smtp_down_nothing_lost_then_delivered_when_it_returns(app, paid_order, mailbox, runner):
    mailbox.stop()
    paid_order()
    down = outbox.send_pending()
    assert (down.sent, down.retry_later) == (0, 2)  # the welcome and the receipt wait
    [row] = outbox_rows(MailKind.ORDER_RECEIPT)
    assert row.status == MailStatus.PENDING and row.attempts == 1 and "unreachable" in (row.last_error or "")
    assert row.next_attempt_at > row.created_at  # backed off, not hammered
    # Before the backoff has passed, the cron does not retry.
    assert outbox.send_pending().sent == 0
    mailbox.start()
    app.config["MAIL_RETRY_BASE_SECONDS"] = 0  # what the backoff would reach later, without waiting for it
    db.session.execute(OutboxMessage.__table__.update().values(next_attempt_at=row.created_at))
    db.session.commit()
    started = time.monotonic()
    result = runner.invoke(args=["mail", "send-pending"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0 and "2 sent" in result.output, result.output
    assert len([m for m in mailbox.to("shopper@example.com") if "receipt" in m.subject]) == 1
    print(f"[figures] time to deliver after SMTP returned (flask mail send-pending): {elapsed * 1000:.0f} ms")


def test_refused_recipient_is_failed_and_shown_to_staff(app, client, make_user, auth, buy, emulator, mailbox):
    make_user("refused@example.com")
    auth.login("refused@example.com")
    from tests.conftest import order_for_session, session_id_from

    order = order_for_session(session_id_from(buy(A=1)))
    emulator.pay(order.stripe_session_id)
    emulator.deliver_pending()
    summary = outbox.send_pending()
    assert summary.failed == 2  # the welcome and the receipt: 550 is final, no retry
    receipt = outbox_rows(MailKind.ORDER_RECEIPT)[0]
    assert receipt.status == MailStatus.FAILED and "550" in (receipt.last_error or "")
    assert outbox.send_pending().failed == 0  # never retried
    assert mailbox.messages() == []
    staff = app.test_client()
    make_user("ann@example.com", staff=True)
    staff.post("/account/login", data={"email": "ann@example.com", "password": "correct horse battery"})
    page = staff.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert 'id="order-emails"' in page and "failed: not delivered" in page and "550" in page


def test_refund_notice_says_amount_and_what_remains(app, paid_order, emulator, mailbox):
    order = paid_order(A=2, C=1)  # 79.97
    refunds.request_refund(order.id, "10.00", "Damaged", requested_by="staff", sequence=1)
    emulator.deliver_pending()
    emulator.deliver_pending()
    assert [r.status for r in fresh().scalars(select(Refund))] == ["succeeded"]
    assert len(outbox_rows(MailKind.REFUND_NOTICE)) == 1
    outbox.send_pending()
    [notice] = [m for m in mailbox.to("shopper@example.com") if "refunded" in m.subject]
    assert notice.subject == f"Tidy Shop refunded $10.00 on order #{order.id}"
    assert "What remains paid: $69.97" in notice.text()


def test_two_senders_never_send_one_message_twice(app, make_user, mailbox):
    make_user("twice@example.com")
    [row] = outbox_rows(MailKind.WELCOME)
    now = row.created_at
    token = outbox._claim(row.id, now)  # the first sender claims it ...
    assert token is not None
    assert outbox._claim(row.id, now) is None  # ... a second sender cannot, until the claim is stale
    assert outbox.send_pending().sent == 0
    assert mailbox.messages() == []


def test_the_dashboard_lists_emails_that_failed_with_their_order(app, make_user, auth, buy, emulator, mailbox):
    make_user("refused@example.com")
    auth.login("refused@example.com")
    from tests.conftest import order_for_session, session_id_from

    order = order_for_session(session_id_from(buy(A=1)))
    emulator.pay(order.stripe_session_id)
    emulator.deliver_pending()
    assert outbox.send_pending().failed == 2  # the welcome and the receipt, refused with 550
    staff = app.test_client()
    make_user("ann@example.com", staff=True)
    staff.post("/account/login", data={"email": "ann@example.com", "password": "correct horse battery"})
    html = staff.get("/admin/").get_data(as_text=True)
    failed = re.search(r'<ul id="failed-emails".*?</ul>', html, re.S).group(0)
    receipt, welcome = re.findall(r"<li>(.*?)</li>", failed, re.S)  # newest first
    assert receipt.startswith("Order receipt to refused@example.com")
    assert f'<a href="/admin/orders/details/?id={order.id}">order #{order.id}</a>' in receipt and "550" in receipt
    assert welcome.startswith("Welcome to refused@example.com") and "order #" not in welcome
    assert 'id="failed-emails-none"' not in html
