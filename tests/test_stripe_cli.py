"""`flask stripe webhook-endpoint URL`: the shop registers its own endpoint, idempotently, with the events its
webhook handles and the SDK's API version (tested with the CLI runner against the in-process Stripe service)."""

from __future__ import annotations

import re
from typing import Any

import stripe
from flask.testing import FlaskCliRunner

from shopapp.services import webhooks
from shopapp.services.webhook_endpoints import handled_event_types
from stripe_emulator import Emulator, EmulatorHTTPClient
from tests.conftest import session_id_from

URL = "https://shop.example/webhook/"


def _sdk(emulator: Emulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_dashboard", http_client=EmulatorHTTPClient(emulator), base_addresses={"api": "http://127.0.0.1:12111"}
    )


def _endpoints_at(emulator: Emulator, url: str) -> list[dict[str, Any]]:
    return [e for e in emulator.store.webhook_endpoints.values() if e["url"] == url]


def _register(runner: FlaskCliRunner, *extra: str) -> tuple[int, str, str | None]:
    result = runner.invoke(args=["stripe", "webhook-endpoint", URL, *extra])
    found = re.search(r"^STRIPE_WEBHOOK_SECRET=(whsec_\w+)$", result.output, re.MULTILINE)
    return result.exit_code, result.output, found.group(1) if found else None


def test_the_event_list_is_the_handler_table() -> None:
    assert handled_event_types() == sorted(webhooks.SUBSCRIBED_EVENTS)
    assert {"checkout.session.completed", "charge.refunded", "refund.created"} <= set(handled_event_types())


def test_creates_the_endpoint_and_prints_its_secret_once(runner: FlaskCliRunner, emulator: Emulator) -> None:
    code, output, secret = _register(runner)
    assert code == 0, output
    [endpoint] = _endpoints_at(emulator, URL)
    assert (endpoint["enabled_events"], endpoint["api_version"], endpoint["status"]) == (
        handled_event_types(),
        stripe.api_version,
        "enabled",
    )
    assert secret == endpoint["_secret"] and f"{endpoint['id']} for {URL}: created." in output
    code, output, secret = _register(runner)  # idempotent: found by URL, nothing to change
    assert code == 0 and secret is None and ": unchanged." in output
    assert len(_endpoints_at(emulator, URL)) == 1


def test_events_arrive_signed_with_the_printed_secret_in_the_sdk_version(
    runner: FlaskCliRunner, emulator: Emulator, shopper: Any, buy: Any
) -> None:
    _, _, secret = _register(runner)
    received: list[tuple[str, bytes, dict[str, str]]] = []
    emulator.deliverer.sender = lambda url, body, headers: received.append((url, body, headers)) or 200
    emulator.pay(session_id_from(buy(A=1)))
    emulator.deliver_pending()
    ours = [
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
        for url, body, headers in received
        if url == URL
    ]
    # only the types the shop handles (charge.succeeded: what paid, for the receipt)
    assert [e.type for e in ours] == ["charge.succeeded", "checkout.session.completed"]
    assert {e.api_version for e in ours} == {stripe.api_version}


def test_updates_changed_events_and_reenables(runner: FlaskCliRunner, emulator: Emulator) -> None:
    _register(runner)
    [endpoint] = _endpoints_at(emulator, URL)
    _sdk(emulator).v1.webhook_endpoints.update(
        endpoint["id"], params={"enabled_events": ["charge.refunded"], "disabled": True}
    )
    code, output, secret = _register(runner)
    assert code == 0 and ": updated." in output and secret is None
    [after] = _endpoints_at(emulator, URL)
    assert (after["id"], after["enabled_events"], after["status"]) == (endpoint["id"], handled_event_types(), "enabled")


def test_recreates_an_endpoint_of_another_api_version(runner: FlaskCliRunner, emulator: Emulator) -> None:
    old = _sdk(emulator).v1.webhook_endpoints.create(
        params={"url": URL, "enabled_events": ["*"], "api_version": "2022-11-15"}
    )
    code, output, secret = _register(runner)
    assert code == 0 and ": recreated." in output and secret is not None
    [endpoint] = _endpoints_at(emulator, URL)
    assert endpoint["id"] != old.id and endpoint["api_version"] == stripe.api_version
    _, _, replaced = _register(runner, "--new-secret")
    assert replaced not in (None, secret) and len(_endpoints_at(emulator, URL)) == 1


def test_leaves_other_endpoints_alone(runner: FlaskCliRunner, emulator: Emulator) -> None:
    before = {e["id"] for e in emulator.store.webhook_endpoints.values()}
    _register(runner)
    assert before <= {e["id"] for e in emulator.store.webhook_endpoints.values()}


def test_a_refused_url_is_reported_and_creates_nothing(runner: FlaskCliRunner, emulator: Emulator) -> None:
    before = dict(emulator.store.webhook_endpoints)
    result = runner.invoke(args=["stripe", "webhook-endpoint", "not-a-url"])
    assert result.exit_code == 1
    assert "Stripe did not register the endpoint" in result.output
    assert emulator.store.webhook_endpoints == before


def test_a_failed_recreate_keeps_the_old_endpoint(runner: FlaskCliRunner, emulator: Emulator) -> None:
    """Stripe delivers an event only to the endpoints that exist when it happens: deleting the old endpoint
    before its replacement exists would lose events for good if the create then fails (review of issue 14)."""
    old = _sdk(emulator).v1.webhook_endpoints.create(
        params={"url": URL, "enabled_events": ["*"], "api_version": "2022-11-15"}
    )
    emulator.inject_fault("POST /v1/webhook_endpoints", status=500)
    code, output, secret = _register(runner)
    assert code == 1 and secret is None, output
    assert [e["id"] for e in _endpoints_at(emulator, URL)] == [old.id]  # still receiving events
    code, output, secret = _register(runner)  # run again once Stripe answers: replaced
    assert code == 0 and ": recreated." in output and secret is not None
    [endpoint] = _endpoints_at(emulator, URL)
    assert endpoint["id"] != old.id and endpoint["api_version"] == stripe.api_version


def test_a_failed_delete_after_a_recreate_still_prints_the_new_secret(
    runner: FlaskCliRunner, emulator: Emulator
) -> None:
    old = _sdk(emulator).v1.webhook_endpoints.create(
        params={"url": URL, "enabled_events": ["*"], "api_version": "2022-11-15"}
    )
    emulator.inject_fault("DELETE /v1/webhook_endpoints/{id}", status=500)
    code, output, secret = _register(runner)
    assert code == 0 and ": recreated." in output, output
    [new] = [e for e in _endpoints_at(emulator, URL) if e["id"] != old.id]
    assert old.id in {e["id"] for e in _endpoints_at(emulator, URL)}  # the delete did fail
    assert secret == new["_secret"]  # shown once by Stripe: printed although the old one is still there
