"""Health probes, /metrics, request ids and JSON logs (issue 24)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from flask.logging import default_handler
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from shopapp.extensions import db
from shopapp.logs import json_formatter
from shopapp.models import MailKind, OutboxMessage
from shopapp.services import catalog, refunds
from tests.conftest import PASSWORD, fresh, session_id_from
from tests.staff.conftest import fresh_order
from tests.support import deliver_webhooks_to, free_port

METRICS_AUTH = {"Authorization": "Bearer metrics-test-token"}


def samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=METRICS_AUTH)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_healthz_answers_without_the_database(app, client):
    db.engine.dispose()
    response = client.get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok\n")


def test_readyz_is_ready_at_the_migrations_head(app, client, stamped_at_head):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok"},
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_refuses_a_database_behind_the_migrations(app, client, stamped_at_head):
    stamped_at_head("0008_hardening")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == "not at head: run flask db upgrade"


def test_readyz_names_an_unreachable_redis_without_its_address(app_factory):
    free_tcp_port = free_port()
    app = app_factory(RATELIMIT_STORAGE_URI=f"redis://:hunter2secret@127.0.0.1:{free_tcp_port}/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert json.loads(body)["checks"]["redis"] == "unreachable"
    assert "hunter2secret" not in body and str(free_tcp_port) not in body


def test_readyz_warns_about_a_stuck_outbox(app, client, shopper):
    # The welcome email of `shopper` waits; pretend it has been due for an hour.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE outbox_messages SET next_attempt_at = :t"), {"t": "2000-01-01 00:00:00"})
    body = client.get("/readyz").get_json()
    assert "mail due for" in body["warnings"]["outbox"]


def test_metrics_are_not_public(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404


def test_metrics_off_without_a_token(app_factory):
    app = app_factory(METRICS_TOKEN=None)
    assert app.test_client().get("/metrics", headers=METRICS_AUTH).status_code == 404


def test_metrics_after_a_purchase_and_a_refund(client, paid_order, emulator, signed_post, capsys):
    order = paid_order()
    refunds.request_refund(order.id, "10.00", "Customer asked", requested_by="staff ann@example.com", sequence=1)
    emulator.deliver_pending()
    assert fresh_order(order.id).refunded_cents == 1000
    assert signed_post(b'{"id": "evt_forged"}', header="t=1,v1=00").status_code == 400
    before = samples(client)
    client.get("/")
    after = samples(client)
    assert after[("shop_checkouts_created_total", ())] == 1
    assert after[("shop_orders_paid_total", ())] == 1
    assert after[("shop_refunds_total", (("status", "succeeded"),))] == 1
    assert after[("shop_webhook_events_total", (("outcome", "applied"),))] >= 2
    assert after[("shop_webhook_signatures_rejected_total", (("reason", "signature"),))] == 1
    assert after[("shop_outbox_messages", (("status", "pending"),))] >= 2  # welcome, receipt, refund notice
    assert after[("shop_disputes_open", ())] == 0
    assert after[("shop_reconcile_heals_total", ())] == 0
    page = ("endpoint", "shop.index"), ("method", "GET"), ("status", "200")
    assert after[("shop_http_requests_total", page)] == before.get(("shop_http_requests_total", page), 0) + 1
    assert after[("shop_http_request_duration_seconds_count", (("endpoint", "shop.index"),))] >= 1
    with capsys.disabled():
        print("\n/metrics after a purchase and a refund (business lines):")
        raw = client.get("/metrics", headers=METRICS_AUTH).get_data(as_text=True)
        print("\n".join(line for line in raw.splitlines() if line.startswith("shop_") and "_bucket" not in line))


def test_request_id_is_returned_and_put_on_outbox_rows(client, paid_order):
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    given = client.get("/healthz", headers={"X-Request-ID": "haproxy-1234abcd"})
    assert given.headers["X-Request-ID"] == "haproxy-1234abcd"
    forged = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    order = paid_order()
    rows = fresh().scalars(db.select(OutboxMessage).where(OutboxMessage.order_id == order.id)).all()
    assert rows and all(row.request_id and re.fullmatch(r"[0-9a-f]{32}", row.request_id) for row in rows)


@pytest.fixture
def json_logs() -> Iterator[None]:
    """The shop's logger back to Flask's default handler after a JSON-logging app (the logger is global)."""
    yield
    shop_logger = logging.getLogger("shopapp")
    for handler in list(shop_logger.handlers):
        if getattr(handler, "shop_json", False):
            shop_logger.removeHandler(handler)
    shop_logger.addHandler(default_handler)


def test_json_log_lines_of_a_purchase_share_the_request_id(app_factory, emulator, make_user, capsys, json_logs):
    app = app_factory(ACCESS_LOG=True, LOG_FORMAT="json", LOG_LEVEL="INFO")
    deliver_webhooks_to(app, emulator)
    catalog.seed_demo_products()
    product = catalog.list_active_products()[0]
    user = make_user("json@example.com")
    browser = app.test_client()
    browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    capsys.readouterr()
    response = browser.post("/checkout", data={f"qty-{product.id}": "1"})
    buy_id = response.headers["X-Request-ID"]
    emulator.pay(session_id_from(response))
    emulator.deliver_pending()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line["request_id"] == buy_id]
    assert {"time", "level", "logger", "message", "request_id"} <= set(mine[0])
    stripe_lines = [line for line in mine if line["logger"] == "shopapp.gateway"]
    assert stripe_lines and stripe_lines[0]["stripe_request_id"].startswith("req_")
    access = [line for line in mine if line["logger"] == "shopapp.access"]
    assert [(a["endpoint"], a["status"]) for a in access] == [("shop.buy", 303)]
    webhook_ids = {line["request_id"] for line in lines if line.get("endpoint") == "payments.webhook"}
    receipt = fresh().scalars(db.select(OutboxMessage).where(OutboxMessage.kind == MailKind.ORDER_RECEIPT)).one()
    assert receipt.request_id in webhook_ids  # queued by the webhook request that marked the order paid
    with capsys.disabled():
        print("\nJSON log lines of a purchase (Buy, then Stripe's webhook):")
        for line in lines:
            if line["request_id"] == buy_id or line["request_id"] in webhook_ids:
                print(json.dumps(line))


def test_a_request_id_from_a_header_is_redacted_in_log_lines_and_our_own_is_kept(app_factory, capsys, json_logs):
    """Issue 25 redacts the request id once per id, and not at all when this process made it (random hex):
    a client-controlled id holding a card number still never reaches a log line."""
    app = app_factory(ACCESS_LOG=True, LOG_FORMAT="json", LOG_LEVEL="INFO")
    catalog.seed_demo_products()
    client = app.test_client()
    capsys.readouterr()
    card_like = "4242424242424242"  # plausible as an id (digits only), and Luhn-valid
    given = client.get("/", headers={"X-Request-ID": card_like})
    own = client.get("/")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "shopapp.access"]
    assert given.status_code == own.status_code == 200 and len(access) == 2
    assert card_like not in json.dumps(lines) and access[0]["request_id"] == "[card-redacted]"
    assert access[1]["request_id"] == own.headers["X-Request-ID"]


def test_json_lines_stay_scrubbed():
    """The redaction tests' promise holds on the JSON output: message, extras and traceback."""
    logger = logging.getLogger("shopapp.test.json")
    try:
        raise ValueError("card 4242 4242 4242 4242 declined, key sk_live_abcdef123")
    except ValueError:
        record = logger.makeRecord(
            "shopapp.test.json",
            logging.ERROR,
            __file__,
            1,
            "paying with %s",
            ("4242-4242-4242-4242",),
            exc_info=__import__("sys").exc_info(),
            extra={"card": "4000 0566 5566 5556", "cookie": "session=abc.def"},
        )
    line = json_formatter().format(record)
    data = json.loads(line)
    assert "\n" not in line
    assert "4242" not in line and "5556" not in line and "abcdef123" not in line and "abc.def" not in line
    assert data["level"] == "ERROR" and "[card-redacted]" in data["message"] and "exc_info" in data
