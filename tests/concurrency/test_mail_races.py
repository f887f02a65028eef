"""Mail under real races (gunicorn's 4 workers, a real SMTP server process): one receipt per order, one account
per address. Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL names one."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

from shopapp.devmail import read_folder
from shopapp.extensions import db
from shopapp.services import accounts
from tests.concurrency.conftest import Setup
from tests.concurrency.harness import ROOT, Shopper, Stack, record, released_together, shop_environment
from tests.support import wait_until


def _receipts(stack: Stack, order_id: int) -> list[str]:
    assert stack.mail_dir is not None
    wanted = f"<order-{order_id}-receipt@"
    return [str(m.message["Message-ID"]) for m in read_folder(stack.mail_dir) if wanted in str(m.message["Message-ID"])]


def _sent(stack: Stack, key: str) -> bool:
    return stack.scalar("SELECT status FROM outbox_messages WHERE dedupe_key = :k", k=key) == "sent"


def test_one_receipt_under_fifty_duplicate_deliveries(stack: Stack, setup: Setup, held: None, kind: str) -> None:
    ((user_id, _),) = setup.users(1, "mail1")
    order_id, session_id = setup.checkout(user_id, {setup.product(): 1})
    stack.stripe_post(f"sessions/{session_id}/pay")
    event = stack.event_for_session("checkout.session.completed", session_id)

    codes, seconds = released_together([lambda: stack.deliver(event)] * 50)

    assert Counter(codes) == {200: 50}
    # The one winning worker queued it (every other queued nothing); the mail worker process sends it.
    wait_until(lambda: _sent(stack, f"order-{order_id}-receipt"), "the receipt to be sent")
    rows = stack.scalar("SELECT count(*) FROM outbox_messages WHERE order_id = :o", o=order_id)
    receipts = _receipts(stack, order_id)
    record(
        101,
        kind,
        {"deliveries": 50, "outbox_rows": rows, "receipts_received": len(receipts), "seconds": round(seconds, 2)},
    )
    assert (rows, len(receipts)) == (1, 1)


def test_one_receipt_when_the_success_page_races_the_webhook(stack: Stack, setup: Setup, held: None, kind: str) -> None:
    ((_, email),) = setup.users(1, "mail2")
    product_id = setup.product(name="Racer")
    shopper = Shopper(stack.base_url, email)
    shopper.login()
    bought = shopper.submit(shopper.buy_form({product_id: 2}))
    assert bought.status_code == 303, bought.text[:500]
    session_id = re.search(r"/pay/(cs_test_\w+)", bought.headers["Location"]).group(1)  # type: ignore[union-attr]
    order_id = stack.scalar("SELECT id FROM orders WHERE stripe_session_id = :s", s=session_id)
    stack.stripe_post(f"sessions/{session_id}/pay")
    completed = stack.event_for_session("checkout.session.completed", session_id)

    def visit() -> int:
        return shopper.request("GET", f"/success/?session_id={session_id}").status_code

    codes, _ = released_together([lambda: stack.deliver(completed)] * 10 + [visit] * 5)

    assert all(code == 200 for code in codes), codes
    wait_until(lambda: _sent(stack, f"order-{order_id}-receipt"), "the receipt to be sent")
    receipts = _receipts(stack, order_id)
    record(102, kind, {"deliveries": 10, "success_pages": 5, "receipts_received": len(receipts)})
    assert len(receipts) == 1


def test_simultaneous_signups_one_account_and_a_409(stack: Stack, kind: str) -> None:
    browsers = [Shopper(stack.base_url, "twin@example.com") for _ in range(8)]
    tokens = [b.csrf("/account/signup") for b in browsers]
    password = "marble-canyon-lilac"

    def sign_up(index: int) -> int:
        data = {"csrf_token": tokens[index], "email": "Twin@Example.com", "password": password, "confirm": password}
        return browsers[index].request("POST", "/account/signup", data=data).status_code

    codes, _ = released_together([lambda i=i: sign_up(i) for i in range(len(browsers))])

    accounts = stack.scalar("SELECT count(*) FROM users WHERE email = 'twin@example.com'")
    record(103, kind, {"signups": len(codes), **{str(k): v for k, v in Counter(codes).items()}, "accounts": accounts})
    assert sorted(codes) == [302] + [409] * (len(browsers) - 1)
    assert accounts == 1
    assert "Traceback" not in stack.shop.log_text()


def test_concurrent_senders_send_each_message_once(stack: Stack, setup: Setup, kind: str) -> None:
    """Four `flask mail send-pending` processes at once over 40 queued messages, beside the stack's running
    `flask mail worker`: each message goes out exactly once, whichever sender claims it."""
    with setup.app.app_context():
        for n in range(40):
            accounts.create_user(f"queued-{n}@example.com", "marble-canyon-lilac")  # queues its welcome
        db.session.remove()
    env = shop_environment(
        stack.database_url,
        stack.stripe_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(stack.mail_port),
        MAIL_DEV_DIR=str(stack.mail_dir),
    )
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "send-pending"]

    def sender() -> str:
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120).stdout

    outputs, seconds = released_together([sender] * 4)

    assert stack.mail_dir is not None
    wait_until(lambda: len([m for m in read_folder(stack.mail_dir) if "queued-" in m.to]) >= 40, "40 welcomes")
    ids = [str(m.message["Message-ID"]) for m in read_folder(stack.mail_dir) if "queued-" in m.to]
    sent_rows = stack.scalar(
        "SELECT count(*) FROM outbox_messages WHERE dedupe_key LIKE 'user-%-welcome' "
        "AND recipient LIKE 'queued-%' AND status = 'sent'"
    )
    counts = [int(re.search(r"Mail: (\d+) sent", out).group(1)) for out in outputs]  # type: ignore[union-attr]
    record(
        104,
        kind,
        {
            "senders": 4,
            "messages": 40,
            "sent_per_sender": "/".join(map(str, counts)),
            "received": len(ids),
            "distinct": len(set(ids)),
            "seconds": round(seconds, 2),
        },
    )
    assert sum(counts) <= 40 and sent_rows == 40  # the mail worker may have sent some before the four started
    assert len(ids) == len(set(ids)) == 40
