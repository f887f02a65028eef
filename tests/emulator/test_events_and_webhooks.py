"""Events API and signed webhook delivery: retries, holds, duplicates, expiry by clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator, EmulatorHTTPClient

SECRET = "whsec_test_secret"  # the emu fixture's webhook secret (see conftest.py)
Endpoint = Any  # conftest.Endpoint: records deliveries, answers scripted statuses


def test_events_api_lists_newest_first_with_type_filter(
    client: stripe.StripeClient, paid_session: Any, emu: Emulator
) -> None:
    listed = client.v1.events.list(params={"limit": 2})
    assert all(isinstance(e, stripe.Event) for e in listed.data)
    assert listed.has_more is True
    all_ids = [e.id for e in listed.auto_paging_iter()]
    assert all_ids == [e["id"] for e in reversed(emu.events())]
    completed = client.v1.events.list(params={"type": "checkout.session.completed"})
    [event] = completed.data
    assert event.data.object["id"] == paid_session.id
    assert event.data.object["payment_status"] == "paid"
    assert event.livemode is False and event.api_version == stripe.api_version
    assert client.v1.events.retrieve(event.id).type == "checkout.session.completed"
    assert len(client.v1.events.list(params={"type": "checkout.session.*"}).data) == 1


def test_event_request_names_the_api_call(client: stripe.StripeClient, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    expired = client.v1.checkout.sessions.expire(session.id, options={"idempotency_key": "exp-1"})
    [event] = emu.events("checkout.session.expired")
    assert event["request"] == {"id": expired.last_response.request_id, "idempotency_key": "exp-1"}


def test_every_delivery_verifies_and_tampering_is_rejected(
    paid_session: Any, emu: Emulator, endpoint: Endpoint
) -> None:
    results = emu.deliver_pending()
    assert {status for _, status in results} == {200}
    delivered = endpoint.events()
    assert [e.id for e in delivered] == [e["id"] for e in emu.events()]
    assert all(isinstance(e, stripe.Event) for e in delivered)
    body, headers = endpoint.received[-1]
    tampered = body.replace(b'"paid"', b'"unpaid"')
    assert tampered != body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, headers["Stripe-Signature"], SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    assert emu.events()[-1]["pending_webhooks"] == 0


def test_sign_helper_matches_the_sdk(emu: Emulator) -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}})
    event = stripe.Webhook.construct_event(payload, emu.sign(payload.encode()), SECRET)
    assert event.id == "evt_1"


def test_failed_deliveries_retry_with_backoff(make_session: Any, emu: Emulator, endpoint: Endpoint) -> None:
    session = make_session()
    emu.expire(session.id)
    [event] = emu.events()
    endpoint.statuses = [500, TimeoutError("timed out"), 200]
    assert emu.deliver_pending() == [(event["id"], 500)]
    assert emu.deliver_pending() == []  # the retry is not due yet
    emu.clock.advance(0.5)
    assert emu.deliver_pending() == [(event["id"], None)]
    emu.clock.advance(0.5)
    assert emu.deliver_pending() == []
    emu.clock.advance(0.5)
    emu.tick()
    attempts = emu.delivery_attempts(event["id"])
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, None), (3, 200)]
    assert "TimeoutError" in attempts[1]["error"]
    assert [a["at"] - attempts[0]["at"] for a in attempts] == [0, 0.5, 1.5]
    assert emu.deliverer.pending() == 0


def test_retries_are_bounded(make_session: Any, emu: Emulator, endpoint: Endpoint) -> None:
    emu.expire(make_session().id)
    endpoint.statuses = [503] * 100
    for _ in range(20):
        emu.clock.advance(60)
        emu.tick()
    assert len(endpoint.received) == 8
    assert emu.deliverer.pending() == 0


def test_hold_and_release_reversed_and_twice(make_session: Any, emu: Emulator, endpoint: Endpoint) -> None:
    session = make_session()
    emu.hold_deliveries()
    emu.pay(session.id)
    assert emu.deliver_pending() == []  # held: nothing arrives yet
    order = [e["id"] for e in emu.events()]
    queued = emu.release_deliveries(order="reverse", duplicate=2)
    assert queued == [i for i in reversed(order) for _ in range(2)]
    emu.deliver_pending()
    assert [e.id for e in endpoint.events()] == queued


def test_redeliver_on_demand(paid_session: Any, emu: Emulator, endpoint: Endpoint) -> None:
    emu.deliver_pending()
    event = emu.events("checkout.session.completed")[0]
    assert emu.redeliver(event["id"]) == 200
    ids = [e.id for e in endpoint.events()]
    assert ids.count(event["id"]) == 2
    assert len(emu.delivery_attempts(event["id"])) == 2


def test_sessions_expire_on_the_service_clock(make_session: Any, emu: Emulator, endpoint: Endpoint) -> None:
    session = make_session(expires_at=emu.clock.timestamp() + 1800)
    emu.clock.advance(1799)
    emu.tick()
    assert emu.sessions[session.id]["status"] == "open"
    emu.clock.advance(1)
    emu.tick()
    assert emu.sessions[session.id]["status"] == "expired"
    [event] = endpoint.events()
    assert event.type == "checkout.session.expired"
    assert event.data.object["id"] == session.id


def test_background_delivery(clock: Any, endpoint: Endpoint, session_params: Any) -> None:
    emu = Emulator(
        webhook_url="http://testserver/webhook/",
        webhook_secret=SECRET,
        sender=endpoint,
        clock=clock,
        async_delivery=True,
        tick_interval=0.01,
    )
    try:
        client = stripe.StripeClient(
            "sk_test_x", http_client=EmulatorHTTPClient(emu), base_addresses={"api": "http://127.0.0.1:12111"}
        )
        session = client.v1.checkout.sessions.create(params=session_params())
        emu.pay(session.id)
        assert emu.wait_for_deliveries(timeout=5)
        assert "checkout.session.completed" in [e.type for e in endpoint.events()]
    finally:
        emu.close()
