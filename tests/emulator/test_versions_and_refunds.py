"""Webhook endpoints, events per endpoint API version, and refunds as Stripe's test cards drive them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_emulator import Clock, Emulator, EmulatorHTTPClient
from stripe_emulator.payments import REFUND_SETTLE_SECONDS

PIN = stripe.api_version
VERSIONS = ("2022-11-15", "2024-10-28.acacia", PIN)


class Inbox:
    """Records deliveries per URL and verifies each with the secret of the endpoint it went to."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self.secrets: dict[str, str] = {}

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((url, body, headers))
        return 200

    def events(self, url: str) -> list[dict[str, Any]]:
        """Verified events delivered to `url`, as plain dicts."""
        return [
            json.loads(
                json.dumps(
                    stripe.Webhook.construct_event(body, headers["Stripe-Signature"], self.secrets[url]).to_dict()
                )
            )
            for sent_to, body, headers in self.received
            if sent_to == url
        ]

    def types(self, url: str) -> list[str]:
        return [e["type"] for e in self.events(url)]


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def account(inbox: Inbox, clock: Clock) -> Emulator:
    emulator = Emulator(sender=inbox, clock=clock)
    yield emulator
    emulator.close()


@pytest.fixture
def sdk(account: Emulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_versions",
        http_client=EmulatorHTTPClient(account, retry_delay=0),
        base_addresses={"api": "http://127.0.0.1:12111"},
    )


@pytest.fixture
def endpoints(sdk: stripe.StripeClient, inbox: Inbox) -> dict[str, str]:
    """One endpoint per version in VERSIONS, all events; returns url by version."""
    urls = {}
    for version in VERSIONS:
        url = f"https://shop.test/webhook/{version}"
        created = sdk.v1.webhook_endpoints.create(params={"url": url, "enabled_events": ["*"], "api_version": version})
        inbox.secrets[url] = created.secret
        urls[version] = url
    return urls


@pytest.fixture
def paid(
    account: Emulator, sdk: stripe.StripeClient, session_params: Callable[..., dict[str, Any]]
) -> Callable[[str], str]:
    """Pay a 44.98 session with `card`; returns the payment intent id."""

    def pay(card: str = "4242424242424242") -> str:
        session = sdk.v1.checkout.sessions.create(params=session_params())
        assert account.pay(session.id, card=card).outcome == "paid"
        account.deliver_pending()
        return str(account.sessions[session.id]["payment_intent"])

    return pay


# ---------------------------------------------------------------- webhook endpoints


def test_endpoint_create_shows_the_secret_only_once(sdk: stripe.StripeClient) -> None:
    created = sdk.v1.webhook_endpoints.create(
        params={
            "url": "https://shop.test/webhook/",
            "enabled_events": ["charge.refunded", "refund.created"],
            "api_version": "2024-10-28.acacia",
            "description": "shop",
        }
    )
    assert created.id.startswith("we_") and created.secret.startswith("whsec_")
    assert (created.status, created.api_version, created.enabled_events) == (
        "enabled",
        "2024-10-28.acacia",
        ["charge.refunded", "refund.created"],
    )
    fetched = sdk.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched and fetched.url == "https://shop.test/webhook/"
    assert [e.id for e in sdk.v1.webhook_endpoints.list().data] == [created.id]
    updated = sdk.v1.webhook_endpoints.update(
        created.id, params={"url": "https://shop.test/hooks/", "enabled_events": ["*"], "disabled": True}
    )
    assert (updated.url, updated.enabled_events, updated.status) == ("https://shop.test/hooks/", ["*"], "disabled")
    assert "secret" not in updated
    deleted = sdk.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.webhook_endpoints.retrieve(created.id)
    assert info.value.code == "resource_missing"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"url": "https://shop.test/", "enabled_events": ["charge.refundedd"]}, "enabled_events[0]"),
        ({"url": "https://shop.test/", "enabled_events": ["*"], "api_version": "2099-01-01"}, "api_version"),
        ({"url": "https://shop.test/", "enabled_events": ["*"], "api_version": "2020-08-27"}, "api_version"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url"),
        ({"url": "https://shop.test/"}, "enabled_events"),
    ],
)
def test_endpoint_create_validates_like_stripe(
    sdk: stripe.StripeClient, account: Emulator, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.webhook_endpoints.create(params=params)
    assert info.value.param == param
    assert account.store.webhook_endpoints == {}


def test_endpoint_api_version_cannot_change(sdk: stripe.StripeClient) -> None:
    created = sdk.v1.webhook_endpoints.create(params={"url": "https://shop.test/", "enabled_events": ["*"]})
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.webhook_endpoints.update(created.id, params={"api_version": PIN})  # type: ignore[typeddict-unknown-key]
    assert info.value.param == "api_version"


def test_events_go_only_to_enabled_subscribed_endpoints(
    sdk: stripe.StripeClient, account: Emulator, inbox: Inbox, paid: Callable[[str], str]
) -> None:
    wanted = sdk.v1.webhook_endpoints.create(
        params={"url": "https://a.test/", "enabled_events": ["checkout.session.completed"]}
    )
    off = sdk.v1.webhook_endpoints.create(params={"url": "https://b.test/", "enabled_events": ["*"]})
    sdk.v1.webhook_endpoints.update(off.id, params={"disabled": True})
    inbox.secrets["https://a.test/"] = wanted.secret
    paid("4242424242424242")
    assert inbox.types("https://a.test/") == ["checkout.session.completed"]
    assert not [r for r in inbox.received if r[0] == "https://b.test/"]
    completed = account.events("checkout.session.completed")[0]
    assert completed["pending_webhooks"] == 0  # delivered to its one endpoint


# ---------------------------------------------------------------- versions


def test_each_endpoint_gets_its_own_version(
    endpoints: dict[str, str], inbox: Inbox, paid: Callable[[str], str], sdk: stripe.StripeClient, account: Emulator
) -> None:
    """Order 79.97-style example at 44.98: paid, partly refunded (19.99); what each version receives."""
    intent = paid("4242424242424242")
    refund = sdk.v1.refunds.create(params={"payment_intent": intent, "amount": 1999})
    account.deliver_pending()
    old, acacia, pin = (endpoints[v] for v in VERSIONS)
    assert [t for t in inbox.types(old) if "refund" in t] == ["charge.refunded"]
    assert [t for t in inbox.types(acacia) if "refund" in t] == ["refund.created", "charge.refunded"]
    assert [t for t in inbox.types(pin) if "refund" in t] == ["refund.created", "charge.refunded"]
    for version, url in endpoints.items():
        events = inbox.events(url)
        assert {e["api_version"] for e in events} == {version}
        charge = next(e for e in events if e["type"] == "charge.refunded")["data"]["object"]
        # Since 2022-11-15 a Charge has no refunds list unless expanded: only the amount tells.
        assert "refunds" not in charge and charge["amount_refunded"] == 1999 and charge["refunded"] is False
        intent_event = next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"]
        assert intent_event["latest_charge"] == charge["id"] and "charges" not in intent_event
    created = next(e for e in inbox.events(pin) if e["type"] == "refund.created")["data"]["object"]
    assert (created["id"], created["status"], created["amount"]) == (refund.id, "succeeded", 1999)


def test_before_2022_11_15_charges_carry_their_refunds(
    sdk: stripe.StripeClient, inbox: Inbox, account: Emulator, paid: Callable[[str], str]
) -> None:
    url = "https://old.test/webhook/"
    inbox.secrets[url] = sdk.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": ["*"], "api_version": "2022-08-01"}
    ).secret
    intent = paid("4242424242424242")
    refund = sdk.v1.refunds.create(params={"payment_intent": intent, "amount": 500})
    account.deliver_pending()
    events = inbox.events(url)
    charge = next(e for e in events if e["type"] == "charge.refunded")["data"]["object"]
    assert [r["id"] for r in charge["refunds"]["data"]] == [refund.id]
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"]
    assert "latest_charge" not in succeeded and succeeded["charges"]["data"][0]["id"] == charge["id"]


def test_account_default_version_applies_to_endpoints_without_one(
    inbox: Inbox, clock: Clock, session_params: Callable[..., Any]
) -> None:
    emulator = Emulator(
        webhook_url="https://shop.test/webhook/",
        webhook_secret="whsec_cli",
        sender=inbox,
        clock=clock,
        api_version="2022-11-15",
    )
    inbox.secrets["https://shop.test/webhook/"] = "whsec_cli"
    client = stripe.StripeClient(
        "sk_test_x", http_client=EmulatorHTTPClient(emulator), base_addresses={"api": "http://127.0.0.1:12111"}
    )
    session = client.v1.checkout.sessions.create(params=session_params())
    emulator.pay(session.id)
    intent = emulator.sessions[session.id]["payment_intent"]
    client.v1.refunds.create(params={"payment_intent": intent})
    emulator.deliver_pending()
    events = inbox.events("https://shop.test/webhook/")
    assert {e["api_version"] for e in events} == {"2022-11-15"}
    assert "refund.created" not in [e["type"] for e in events]
    # The API answers in the version the caller sends (the SDK sends its pin).
    assert client.v1.events.list().data[0].api_version == PIN
    emulator.close()


def test_shipping_details_per_version(
    sdk: stripe.StripeClient, account: Emulator, session_params: Callable[..., dict[str, Any]]
) -> None:
    session = sdk.v1.checkout.sessions.create(
        params=session_params(shipping_address_collection={"allowed_countries": ["US", "CA"]})
    )
    assert session.shipping_address_collection.allowed_countries == ["US", "CA"]
    address = {"name": "Ann Lee", "line1": "1 Main St", "city": "Toronto", "postal_code": "M5V 2T6", "country": "CA"}
    refused = account.pay(session.id, shipping={**address, "country": "FR"})
    assert (refused.status, refused.outcome) == (400, "shipping_address_invalid")
    assert account.pay(session.id, shipping=address).outcome == "paid"
    shipped = {
        "address": {
            "city": "Toronto",
            "country": "CA",
            "line1": "1 Main St",
            "line2": None,
            "postal_code": "M5V 2T6",
            "state": None,
        },
        "name": "Ann Lee",
    }
    current = sdk.v1.checkout.sessions.retrieve(session.id).to_dict()
    assert current["collected_information"]["shipping_details"] == shipped and "shipping_details" not in current

    def at(version: str) -> dict[str, Any]:
        return dict(sdk.v1.checkout.sessions.retrieve(session.id, options={"stripe_version": version}).to_dict())

    assert at("2025-02-24.acacia")["shipping_details"] == shipped  # both, before basil removed the old one
    assert at("2025-02-24.acacia")["collected_information"]["shipping_details"] == shipped
    assert at("2024-10-28.acacia")["shipping_details"] == shipped
    assert "collected_information" not in at("2024-10-28.acacia")


@pytest.mark.parametrize("countries", [["XX"], ["us"], ["USA"], ["US", "XX"]])
def test_shipping_countries_are_validated(
    sdk: stripe.StripeClient, session_params: Callable[..., Any], countries: list[str]
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.checkout.sessions.create(
            params=session_params(shipping_address_collection={"allowed_countries": countries})
        )
    assert info.value.param.startswith("shipping_address_collection[allowed_countries]")


# ---------------------------------------------------------------- refund lifecycle


def test_refund_that_succeeds_then_fails(
    endpoints: dict[str, str], inbox: Inbox, account: Emulator, sdk: stripe.StripeClient, paid: Callable[[str], str]
) -> None:
    intent = paid("4000000000005126")
    refund = sdk.v1.refunds.create(params={"payment_intent": intent, "amount": 1999})
    assert refund.status == "succeeded"
    account.deliver_pending()
    account.advance(REFUND_SETTLE_SECONDS - 1)
    assert sdk.v1.refunds.retrieve(refund.id).status == "succeeded"  # "some time later", not yet
    account.advance(1)  # the service clock, not a sleep, drives the change
    failed = sdk.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert failed.failure_balance_transaction.startswith("txn_")
    charge = sdk.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)  # refundable again
    old, acacia, pin = (endpoints[v] for v in VERSIONS)
    assert [t for t in inbox.types(old) if "refund" in t] == ["charge.refunded", "charge.refund.updated"]
    for url in (acacia, pin):
        assert [t for t in inbox.types(url) if "refund" in t] == [
            "refund.created",
            "charge.refunded",
            "charge.refund.updated",
            "refund.updated",
            "refund.failed",
        ]
    update = next(e for e in inbox.events(old) if e["type"] == "charge.refund.updated")["data"]
    assert (update["object"]["status"], update["previous_attributes"]["status"]) == ("failed", "succeeded")
    again = sdk.v1.refunds.create(params={"payment_intent": intent})
    assert again.amount == 4498


def test_refund_that_starts_pending_then_succeeds(
    endpoints: dict[str, str], inbox: Inbox, account: Emulator, sdk: stripe.StripeClient, paid: Callable[[str], str]
) -> None:
    intent = paid("4000000000007726")
    refund = sdk.v1.refunds.create(params={"payment_intent": intent})
    assert refund.status == "pending"
    charge = sdk.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (4498, True)  # a pending refund counts
    settled = account.settle_refund(refund.id)  # the test control: the same change, now
    assert settled["status"] == "succeeded"
    account.deliver_pending()
    old, _, pin = (endpoints[v] for v in VERSIONS)
    assert [t for t in inbox.types(old) if "refund" in t] == ["charge.refunded", "charge.refund.updated"]
    assert [t for t in inbox.types(pin) if "refund" in t] == [
        "refund.created",
        "charge.refunded",
        "charge.refund.updated",
        "refund.updated",
    ]
    with pytest.raises(Exception, match="No status change is scheduled"):
        account.settle_refund(refund.id)


def test_ordinary_card_refunds_never_change(
    account: Emulator, sdk: stripe.StripeClient, paid: Callable[[str], str]
) -> None:
    refund = sdk.v1.refunds.create(params={"payment_intent": paid("4242424242424242")})
    account.advance(REFUND_SETTLE_SECONDS * 10)
    assert sdk.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert account.store.refund_transitions == {}


def test_events_api_hides_types_the_callers_version_lacks(
    account: Emulator, sdk: stripe.StripeClient, paid: Callable[[str], str]
) -> None:
    sdk.v1.refunds.create(params={"payment_intent": paid()})
    assert [e.type for e in sdk.v1.events.list(params={"type": "refund.*"}).data] == ["refund.created"]
    old = sdk.v1.events.list(params={"type": "refund.*"}, options={"stripe_version": "2022-11-15"})
    assert old.data == []


def test_reset_keeps_webhook_endpoints(
    account: Emulator, sdk: stripe.StripeClient, inbox: Inbox, paid: Callable[[str], str]
) -> None:
    endpoint = sdk.v1.webhook_endpoints.create(params={"url": "https://a.test/", "enabled_events": ["*"]})
    inbox.secrets["https://a.test/"] = endpoint.secret
    paid()
    account.reset()  # forgets payments and events; endpoints are the account's configuration
    assert account.events() == [] and account.sessions == {}
    assert sdk.v1.webhook_endpoints.retrieve(endpoint.id).url == "https://a.test/"
    inbox.received.clear()
    paid()
    assert "checkout.session.completed" in inbox.types("https://a.test/")
