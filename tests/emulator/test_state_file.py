"""With a state file, a restarted service still knows every session, payment, refund, event, endpoint,
queued delivery, scheduled refund change and idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import stripe

from stripe_emulator import Clock, Emulator, EmulatorHTTPClient


class Endpoint:
    """Records deliveries; answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((body, headers))
        return self.statuses.pop(0) if self.statuses else 200


def _sdk(emulator: Emulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_state",
        http_client=EmulatorHTTPClient(emulator, retry_delay=0),
        base_addresses={"api": "http://127.0.0.1:12111"},
    )


def test_restart_loses_nothing(tmp_path: Path, clock: Clock, session_params: Callable[..., dict[str, Any]]) -> None:
    path = str(tmp_path / "stripe.db")
    down = Endpoint(statuses=[500])  # the first delivery fails: a retry stays queued over the restart
    first = Emulator(sender=down, clock=clock, state_path=path, async_delay=None)
    sdk = _sdk(first)
    endpoint = sdk.v1.webhook_endpoints.create(
        params={"url": "https://shop.test/webhook/", "enabled_events": ["*"], "api_version": "2022-11-15"}
    )
    open_session = sdk.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "order-1"})
    paid = sdk.v1.checkout.sessions.create(params=session_params(client_reference_id="order-2"))
    first.pay(paid.id, card="4000000000005126")
    intent = first.sessions[paid.id]["payment_intent"]
    refund = sdk.v1.refunds.create(params={"payment_intent": intent, "amount": 1000})
    first.deliver_pending()
    events_before = [e["id"] for e in first.events()]
    queued_before = first.deliverer.pending()
    assert queued_before > 0
    first.close()

    received = Endpoint()
    second = Emulator(sender=received, clock=Clock(start=clock.now()), state_path=path, async_delay=None)
    sdk = _sdk(second)
    assert sdk.v1.checkout.sessions.retrieve(open_session.id).status == "open"
    assert sdk.v1.checkout.sessions.retrieve(paid.id).payment_status == "paid"
    assert sdk.v1.payment_intents.retrieve(intent).status == "succeeded"
    assert sdk.v1.refunds.retrieve(refund.id).amount == 1000
    assert [e["id"] for e in second.events()] == events_before
    fetched = sdk.v1.webhook_endpoints.retrieve(endpoint.id)
    assert (fetched.url, fetched.api_version) == ("https://shop.test/webhook/", "2022-11-15")
    # The same idempotency key replays the same session.
    again = sdk.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "order-1"})
    assert again.id == open_session.id
    # Queued retries are still due, signed with the endpoint's secret, in its version.
    assert second.deliverer.pending() == queued_before
    second.advance(60)
    delivered = [
        stripe.Webhook.construct_event(body, h["Stripe-Signature"], endpoint.secret) for body, h in received.received
    ]
    assert delivered and {e.api_version for e in delivered} == {"2022-11-15"}
    # The refund's scheduled failure survived too.
    assert sdk.v1.refunds.retrieve(refund.id).status == "failed"
    # A session paid after the restart still works end to end.
    assert second.pay(open_session.id).outcome == "paid"
    second.close()
    third = Emulator(clock=Clock(start=clock.now()), state_path=path)
    assert third.sessions[open_session.id]["status"] == "complete"
    third.close()


def test_the_service_clock_never_runs_backwards_over_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "stripe.db")
    first = Emulator(clock=Clock(start=1_000_000.0), state_path=path)
    first.advance(3600)
    first.close()
    second = Emulator(clock=Clock(start=1_000_000.0), state_path=path)
    assert second.clock.now() >= 1_003_600.0
    second.close()


def test_coupons_codes_rates_and_discounted_sessions_survive_a_restart(
    tmp_path: Path, clock: Clock, session_params: Callable[..., dict[str, Any]]
) -> None:
    path = str(tmp_path / "stripe.db")
    first = Emulator(sender=Endpoint(), clock=clock, state_path=path)
    sdk = _sdk(first)
    coupon = sdk.v1.coupons.create(params={"percent_off": 50, "duration": "once"})
    code = sdk.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "HALF", "max_redemptions": 1}
    )
    rate = sdk.v1.shipping_rates.create(
        params={"display_name": "Ground", "fixed_amount": {"amount": 500, "currency": "usd"}}
    )
    session = sdk.v1.checkout.sessions.create(
        params=session_params(
            discounts=[{"promotion_code": code.id}],
            shipping_options=[{"shipping_rate": rate.id}],
            invoice_creation={"enabled": True},
        )
    )
    first.close()
    second = Emulator(sender=Endpoint(), clock=clock, state_path=path)
    assert second.pay(session.id).status == 303
    sdk = _sdk(second)
    paid = sdk.v1.checkout.sessions.retrieve(session.id)
    assert paid.amount_total == 2249 + 500 and paid.total_details.amount_discount == 2249 and paid.invoice
    assert sdk.v1.promotion_codes.retrieve(code.id).times_redeemed == 1
    assert sdk.v1.shipping_rates.retrieve(rate.id).display_name == "Ground"
    second.close()
