"""Webhook endpoints (`/v1/webhook_endpoints`): where events go, which types, in which API version."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from .errors import invalid, missing_param, no_such
from .objects import list_object, new_id
from .sdkfacts import EVENT_TYPES
from .store import Store
from .versions import check_version, render

_CREATE_PARAMS = {"url", "enabled_events", "api_version", "description", "metadata", "connect", "expand"}
_UPDATE_PARAMS = {"url", "enabled_events", "description", "metadata", "disabled", "expand"}


def _check_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def _url(value: Any) -> str:
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Invalid URL: URL must be publicly accessible.", "url", "url_invalid")
    return str(value)


def _enabled_events(value: Any) -> list[str]:
    events = [value] if isinstance(value, str) else value
    if not isinstance(events, list) or not events:
        raise invalid("Invalid array", "enabled_events")
    for i, event_type in enumerate(events):
        if event_type not in EVENT_TYPES:
            raise invalid(
                f"Invalid enabled_events[{i}]: {event_type!r} is not a Stripe event type.",
                f"enabled_events[{i}]",
                "parameter_invalid_string",
            )
    return list(dict.fromkeys(events))


def _metadata(value: Any) -> dict[str, str]:
    if value in ("", None):
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", "metadata")
    return {str(k): str(v) for k, v in value.items()}


def get_endpoint(store: Store, endpoint_id: str) -> dict[str, Any]:
    """The stored endpoint or a 404."""
    endpoint = store.webhook_endpoints.get(endpoint_id)
    if endpoint is None:
        raise no_such("webhook_endpoint", endpoint_id)
    return endpoint


def view(endpoint: dict[str, Any], version: str, *, with_secret: bool = False) -> dict[str, Any]:
    """The endpoint as the API shows it; Stripe returns `secret` only in the create response."""
    shown = render(endpoint, version)
    if with_secret:
        shown["secret"] = endpoint["_secret"]
    return shown


def create_endpoint(store: Store, params: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    """POST /v1/webhook_endpoints: stores and returns the endpoint (internal fields included)."""
    _check_unknown(params, _CREATE_PARAMS)
    for name in ("url", "enabled_events"):
        if name not in params:
            raise missing_param(name)
    api_version = params.get("api_version")
    endpoint_id = new_id("we_")
    endpoint: dict[str, Any] = {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": check_version(api_version) if api_version else None,
        "application": None,
        "created": store.clock.timestamp(),
        "description": params.get("description") or None,
        "enabled_events": _enabled_events(params["enabled_events"]),
        "livemode": False,
        "metadata": _metadata(params.get("metadata")),
        "status": "enabled",
        "url": _url(params["url"]),
        "_secret": secret or "whsec_" + secrets.token_hex(32),
    }
    with store.lock:
        store.webhook_endpoints[endpoint_id] = endpoint
    return endpoint


def update_endpoint(store: Store, endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/webhook_endpoints/{id}: url, enabled_events, description, metadata, disabled."""
    _check_unknown(params, _UPDATE_PARAMS)
    with store.lock:
        endpoint = get_endpoint(store, endpoint_id)
        changes: dict[str, Any] = {}
        if "url" in params:
            changes["url"] = _url(params["url"])
        if "enabled_events" in params:
            changes["enabled_events"] = _enabled_events(params["enabled_events"])
        if "description" in params:
            changes["description"] = params["description"] or None
        if "metadata" in params:
            changes["metadata"] = {**endpoint["metadata"], **_metadata(params["metadata"])}
        if "disabled" in params:
            if params["disabled"] not in ("true", "false"):
                raise invalid("Invalid boolean: " + str(params["disabled"]), "disabled")
            changes["status"] = "disabled" if params["disabled"] == "true" else "enabled"
        endpoint.update(changes)
        return endpoint


def delete_endpoint(store: Store, endpoint_id: str) -> dict[str, Any]:
    """DELETE /v1/webhook_endpoints/{id}: Stripe's deleted-object stub."""
    with store.lock:
        get_endpoint(store, endpoint_id)
        del store.webhook_endpoints[endpoint_id]
        return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(store: Store, params: dict[str, Any], version: str) -> dict[str, Any]:
    """GET /v1/webhook_endpoints, newest first."""
    with store.lock:
        endpoints = [view(e, version) for e in reversed(store.webhook_endpoints.values())]
    return list_object(endpoints, "/v1/webhook_endpoints", params)
