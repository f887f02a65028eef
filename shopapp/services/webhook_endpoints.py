"""Registering the shop's webhook endpoint with Stripe: the one list of event types, the SDK's API version.

The event types are exactly those the webhook service handles (`webhooks.SUBSCRIBED_EVENTS`, the one list; README and
docs point here rather than copying it). The endpoint's `api_version` is the SDK's pin, so events arrive in the
shape of the shop's own API calls. Stripe never lets an endpoint's API version change and shows the signing
secret only on creation (docs.stripe.com/api/webhook_endpoints), hence "recreate" below.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from shopapp import gateway
from shopapp.services import webhooks

log = logging.getLogger("shopapp.webhook_endpoints")


def handled_event_types() -> list[str]:
    """The event types the shop's webhook handles, sorted: what its endpoint subscribes to."""
    return sorted(webhooks.SUBSCRIBED_EVENTS)


class EndpointAction(enum.StrEnum):
    """What `register_webhook_endpoint` did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RECREATED = "recreated"  # its API version differed (or a new secret was asked for): a new secret


@dataclass(frozen=True)
class EndpointSetup:
    """The endpoint after registration; `secret` only when it was (re)created (Stripe shows it once)."""

    action: EndpointAction
    endpoint_id: str
    url: str
    api_version: str
    event_types: list[str]
    secret: str | None


def register_webhook_endpoint(url: str, *, new_secret: bool = False) -> EndpointSetup:
    """Create or update (idempotently, found by URL) the endpoint for `url`.

    Creates it when no endpoint has this URL; sets the event types and enables it when they differ; deletes and
    recreates it when its API version is not the SDK's or `new_secret` is asked for. Other endpoints are left
    alone. Raises gateway.GatewayError when Stripe cannot be reached or refuses (e.g. a URL it does not accept).
    """
    client = gateway.get_gateway()
    events = handled_event_types()
    version = gateway.sdk_api_version()
    existing = [e for e in gateway.list_webhook_endpoints(client) if e["url"] == url]
    if existing and (new_secret or existing[0].get("api_version") != version):
        # The replacement first: Stripe delivers an event only to endpoints that exist when it happens, so a
        # delete before a failed create would lose events for good. While both exist, each event reaches the
        # shop twice (same event id): the webhook service applies it once.
        created = _created(url, events, version, EndpointAction.RECREATED)
        for endpoint in existing:
            try:
                gateway.delete_webhook_endpoint(client, endpoint["id"])
            except gateway.GatewayError as error:
                # The new endpoint's secret is shown only now: never lose it over a leftover endpoint.
                log.warning(
                    "Old webhook endpoint %s for %s not deleted (%s): delete it in Stripe's dashboard",
                    endpoint["id"],
                    url,
                    error,
                )
        return created
    if not existing:
        return _created(url, events, version, EndpointAction.CREATED)
    endpoint = existing[0]
    if sorted(endpoint["enabled_events"]) == events and endpoint["status"] == "enabled":
        return EndpointSetup(EndpointAction.UNCHANGED, endpoint["id"], url, version, events, None)
    updated = gateway.update_webhook_endpoint(client, endpoint["id"], events)
    return EndpointSetup(EndpointAction.UPDATED, updated["id"], url, version, events, None)


def _created(url: str, events: list[str], version: str, action: EndpointAction) -> EndpointSetup:
    created = gateway.create_webhook_endpoint(gateway.get_gateway(), url, events, version)
    return EndpointSetup(action, created["id"], url, version, events, created["secret"])
