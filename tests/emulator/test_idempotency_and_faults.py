"""Idempotency, injected faults, rate limits and call counts, seen through the SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from werkzeug.test import Client

from stripe_emulator import Emulator, EmulatorHTTPClient
from stripe_emulator.store import IdempotencyRecord

CREATE = "POST /v1/checkout/sessions"


def _client(transport: EmulatorHTTPClient, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator",
        http_client=transport,
        base_addresses={"api": "http://127.0.0.1:12111"},
        max_network_retries=retries,
    )


def _create(client: stripe.StripeClient, params: dict[str, Any], key: str) -> Any:
    return client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})


def test_replay_returns_identical_body(client: stripe.StripeClient, emu: Emulator, session_params: Any) -> None:
    params = session_params()
    first = _create(client, params, "order-7-attempt-1")
    again = _create(client, params, "order-7-attempt-1")
    assert again.id == first.id and len(emu.sessions) == 1
    assert again.last_response.body == first.last_response.body
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.last_response.headers


def test_errors_are_replayed_too(client: stripe.StripeClient, session_params: Any) -> None:
    params = session_params(mode="subscription")
    with pytest.raises(stripe.InvalidRequestError) as first:
        _create(client, params, "k")
    with pytest.raises(stripe.InvalidRequestError) as again:
        _create(client, params, "k")
    assert again.value.http_body == first.value.http_body
    assert again.value.headers["idempotent-replayed"] == "true"


def test_same_key_other_params_is_idempotency_error(client: stripe.StripeClient, session_params: Any) -> None:
    _create(client, session_params(), "k")
    with pytest.raises(stripe.IdempotencyError) as info:
        _create(client, session_params(client_reference_id="order-8"), "k")
    assert info.value.http_status == 400


def test_same_key_other_endpoint_is_idempotency_error(
    client: stripe.StripeClient, paid_session: Any, emu: Emulator
) -> None:
    session = emu.sessions[paid_session.id]
    client.v1.refunds.create(
        params={"payment_intent": session["payment_intent"], "amount": 100}, options={"idempotency_key": "shared"}
    )
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.expire(paid_session.id, options={"idempotency_key": "shared"})


def test_keys_expire_after_24_hours(client: stripe.StripeClient, emu: Emulator, session_params: Any) -> None:
    params = session_params()
    first = _create(client, params, "k")
    emu.clock.advance(24 * 3600)
    second = _create(client, session_params(), "k")
    assert second.id != first.id


def test_in_flight_key_answers_409(emu: Emulator, session_params: Any) -> None:
    # A concurrent first request is represented by its in-flight record.
    emu.store.idempotency[("sk_test_emulator", "busy")] = IdempotencyRecord(
        "POST", "/v1/checkout/sessions", "{}", emu.clock.now()
    )
    with pytest.raises(stripe.APIError) as info:
        _create(_client(EmulatorHTTPClient(emu)), session_params(), "busy")
    assert info.value.http_status == 409
    assert info.value.error.code == "idempotency_key_in_use"


def test_409_is_retried_by_the_sdk_with_the_same_key(
    transport: EmulatorHTTPClient, emu: Emulator, session_params: Any
) -> None:
    emu.inject_fault(CREATE, status=409)
    session = _create(_client(transport, retries=2), session_params(), "order-7-attempt-1")
    assert list(emu.sessions) == [session.id]
    keys = [r["headers"]["Idempotency-Key"] for r in transport.requests]
    assert keys == ["order-7-attempt-1", "order-7-attempt-1"]
    assert emu.call_counts[CREATE] == 2


def test_lost_response_then_retry_yields_one_session(
    transport: EmulatorHTTPClient, emu: Emulator, session_params: Any
) -> None:
    emu.inject_fault(CREATE, status=500, process=True)
    session = _create(_client(transport, retries=1), session_params(), "k")
    assert list(emu.sessions) == [session.id]
    assert session.last_response.headers["idempotent-replayed"] == "true"


def test_timeout_maps_to_api_connection_error_and_is_retried(
    transport: EmulatorHTTPClient, emu: Emulator, session_params: Any
) -> None:
    emu.inject_fault(CREATE, status="timeout", process=True)
    with pytest.raises(stripe.APIConnectionError):
        _create(_client(transport), session_params(), "k")
    assert len(emu.sessions) == 1  # created, but the reply was lost
    emu.inject_fault(CREATE, status="timeout", times=1)
    session = _create(_client(transport, retries=1), session_params(), "k")
    assert list(emu.sessions) == [session.id]


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, stripe.APIError), (503, stripe.APIError), (429, stripe.RateLimitError), (409, stripe.APIError)],
)
def test_injected_faults_map_to_sdk_errors(
    client: stripe.StripeClient, emu: Emulator, session_params: Any, status: int, error: type[Exception]
) -> None:
    emu.inject_fault(CREATE, status=status, times=2)
    for _ in range(2):
        with pytest.raises(error):
            client.v1.checkout.sessions.create(params=session_params())
    assert emu.sessions == {}
    assert client.v1.checkout.sessions.create(params=session_params()).status == "open"


def test_rate_limit_when_enabled(endpoint: Any, clock: Any, session_params: Any) -> None:
    emu = Emulator(webhook_url=None, clock=clock, rate_limit=True)
    client = _client(EmulatorHTTPClient(emu))
    session = client.v1.checkout.sessions.create(params=session_params())
    for _ in range(25):
        client.v1.checkout.sessions.retrieve(session.id)
    with pytest.raises(stripe.RateLimitError) as info:
        client.v1.checkout.sessions.retrieve(session.id)
    assert (info.value.http_status, info.value.error.code) == (429, "rate_limit")
    client.v1.checkout.sessions.create(params=session_params())  # other endpoint, own budget
    clock.advance(1)
    client.v1.checkout.sessions.retrieve(session.id)
    assert emu.call_counts["GET /v1/checkout/sessions/{id}"] == 27


def test_call_counts_per_endpoint_template(client: stripe.StripeClient, make_session: Any, emu: Emulator) -> None:
    session = make_session()
    client.v1.checkout.sessions.retrieve(session.id)
    client.v1.checkout.sessions.retrieve(session.id)
    client.v1.checkout.sessions.line_items.list(session.id)
    assert emu.call_counts == {
        CREATE: 1,
        "GET /v1/checkout/sessions/{id}": 2,
        "GET /v1/checkout/sessions/{id}/line_items": 1,
    }


def test_http_controls_mirror_the_python_api(emu: Emulator, make_session: Any) -> None:
    web = Client(emu.wsgi_app)
    session = make_session()
    assert web.post("/_emulator/faults", json={"endpoint": CREATE, "status": 500}).status_code == 200
    assert emu._faults[CREATE][0].status == 500
    paid = web.post(f"/_emulator/sessions/{session.id}/pay", json={"card": "4242424242424242"})
    assert paid.json["outcome"] == "paid"
    again = web.post(f"/_emulator/sessions/{session.id}/pay", json={})
    assert again.status_code == 409
    assert web.get("/_emulator/call_counts").json == {CREATE: 1}
    delivered = web.post("/_emulator/deliveries/deliver_pending").json["delivered"]
    assert {status for _, status in delivered} == {200}
    event_id = delivered[-1][0]
    assert web.post(f"/_emulator/events/{event_id}/redeliver").json == {"status": 200}
    assert len(web.get(f"/_emulator/events/{event_id}/attempts").json["data"]) == 2
    assert web.post("/_emulator/clock/advance", json={"seconds": 60}).status_code == 200
    assert web.post("/_emulator/reset").status_code == 200
    assert emu.sessions == {}


def test_idempotency_keys_control_lists_each_key_once(
    client: stripe.StripeClient, emu: Emulator, session_params: Any
) -> None:
    params = session_params()
    _create(client, params, "order-9-attempt-1")
    _create(client, params, "order-9-attempt-1")
    _create(client, session_params(client_reference_id="order-10"), "order-10-attempt-1")
    listed = Client(emu.wsgi_app).get("/_emulator/idempotency_keys").json["data"]
    assert sorted(k["key"] for k in listed) == ["order-10-attempt-1", "order-9-attempt-1"]
    assert {(k["method"], k["path"], k["status"]) for k in listed} == {("POST", "/v1/checkout/sessions", 200)}
