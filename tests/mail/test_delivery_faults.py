"""Issue 26, findings 2 and 4: one row never stops the outbox, and no mail is sent from a request worker.

- An internationalised address ("zoë-...@example.com", accepted at sign-up) goes out with SMTPUTF8 where the
  server offers it (the local SMTP server does); where it does not, that row is FAILED with the reason and
  every other row still goes out; `flask mail send-pending` and `flask payments reconcile` exit 0, counting it.
- Anything unexpected while sending one row fails that row, never the batch (the row never stays `sending`).
- A request only queues: the row is still pending after the response, and the sender (`flask mail worker`,
  or cron's `flask mail send-pending`) sends it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from shopapp.models import MailKind, MailStatus, OutboxMessage
from shopapp.models.base import utcnow
from shopapp.services import outbox
from tests.conftest import PASSWORD, fresh
from tests.mail.mailbox import Mailbox

ZOE = "zoë-ünïcode@example.com"


def rows() -> dict[str, OutboxMessage]:
    return {row.recipient: row for row in fresh().scalars(select(OutboxMessage).order_by(OutboxMessage.id))}


def test_an_internationalised_address_goes_out_with_smtputf8(app, make_user, mailbox):
    make_user(ZOE)
    make_user("plain@example.com")
    summary = outbox.send_pending()
    assert (summary.sent, summary.failed, summary.retry_later) == (2, 0, 0), summary.errors
    [welcome] = mailbox.to(ZOE)
    assert welcome.to == ZOE and welcome.subject == "Welcome to Tidy Shop"
    assert {row.status for row in rows().values()} == {MailStatus.SENT}


def test_a_server_without_smtputf8_fails_that_row_visibly_and_sends_the_rest(
    app_factory, make_user, tmp_path: Path, runner_for
):
    box = Mailbox(tmp_path / "ascii-only", smtputf8=False)
    box.start()
    try:
        application = app_factory(MAIL_PORT=box.port, MAIL_DEV_DIR=str(box.folder))
        make_user("before@example.com")
        make_user(ZOE)
        make_user("after@example.com")  # queued after the poisoned row, like a paid order's receipt was
        result = runner_for(application).invoke(args=["mail", "send-pending"])
        assert result.exit_code == 0, result.output
        assert "2 sent, 0 to retry later, 1 failed" in result.output and "SMTPUTF8" in result.output
        by_address = rows()
        assert by_address[ZOE].status == MailStatus.FAILED and "SMTPUTF8" in (by_address[ZOE].last_error or "")
        assert by_address["before@example.com"].status == MailStatus.SENT
        assert by_address["after@example.com"].status == MailStatus.SENT
        assert {m.to for m in box.messages()} == {"before@example.com", "after@example.com"}
        # Cron's other job runs the same sender: it exits 0 too.
        again = runner_for(application).invoke(args=["payments", "reconcile"])
        assert again.exit_code == 0, again.output
    finally:
        box.stop()


def test_anything_unexpected_fails_that_row_not_the_batch(app, make_user, paid_order, mailbox, runner_for):
    order = paid_order()
    make_user("later@example.com")
    # A refund notice whose stored context lost its amounts: composing it raises KeyError (a bug's shape).
    broken = OutboxMessage(
        dedupe_key="refund-999-notice",
        kind=MailKind.REFUND_NOTICE,
        recipient="shopper@example.com",
        order_id=order.id,
        context=json.dumps({}),
        status=MailStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    session = fresh()
    session.add(broken)
    session.commit()
    result = runner_for(app).invoke(args=["mail", "send-pending"])
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.output and "KeyError" in result.output
    statuses = {row.dedupe_key: row.status for row in fresh().scalars(select(OutboxMessage))}
    assert statuses.pop("refund-999-notice") == MailStatus.FAILED
    assert set(statuses.values()) == {MailStatus.SENT}, statuses  # the receipt and the later welcome went out
    assert not [r for r in fresh().scalars(select(OutboxMessage)) if r.status == MailStatus.SENDING]


def test_a_request_only_queues_and_the_worker_sends(app, client, mailbox, runner_for):
    mailbox.sender = None  # nothing but the worker below may send
    response = client.post(
        "/account/signup",
        data={"email": "queued@example.com", "password": "tulip-anchor-violet", "confirm": "tulip-anchor-violet"},
        buffered=True,  # the response is read to its end and closed, as a server does
    )
    assert response.status_code == 302
    [row] = rows().values()
    assert row.status == MailStatus.PENDING and row.attempts == 0 and mailbox.messages() == []
    # Forgot-password queues as well, for a known address (the link) and an unknown one (a "no account"
    # notice: the same work either way); neither talks SMTP.
    for email in ("queued@example.com", "nobody@example.com"):
        assert client.post("/account/forgot", data={"email": email}, buffered=True).status_code == 302
    assert mailbox.messages() == [] and {r.status for r in rows().values()} == {MailStatus.PENDING}
    result = runner_for(app).invoke(args=["mail", "worker", "--max-passes", "1"])
    assert result.exit_code == 0, result.output
    assert "3 sent" in result.output
    assert len(mailbox.to("queued@example.com")) == 2 and len(mailbox.to("nobody@example.com")) == 1


def test_logging_in_sends_nothing_either(app, client, make_user, mailbox):
    mailbox.sender = None
    make_user("someone@example.com")
    assert client.post("/account/login", data={"email": "someone@example.com", "password": PASSWORD}).status_code
    assert mailbox.messages() == []
