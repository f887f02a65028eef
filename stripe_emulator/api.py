"""Handlers for the emulated `/v1` endpoints; each returns the JSON object to send."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import disputes, endpoints, payments
from .errors import no_such
from .objects import expand_list, list_object
from .router import Router
from .store import Origin, Store
from .versions import event_exists_for, render_event


@dataclass(frozen=True)
class Call:
    """What a handler gets: state, decoded params, where the request came from, its API version."""

    store: Store
    params: dict[str, Any]
    origin: Origin
    public_url: str
    version: str  # the request's Stripe-Version, else the account's default

    @property
    def expand(self) -> list[str]:
        """The request's `expand[]` paths."""
        return expand_list(self.params)

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`obj` in this request's API version, with its `expand[]` applied."""
        return payments.render(self.store, obj, self.expand, self.version)


Handler = Callable[..., dict[str, Any]]


def create_session(call: Call) -> dict[str, Any]:
    """POST /v1/checkout/sessions"""
    with call.store.lock:
        return call.render(payments.create_session(call.store, call.params, call.public_url, call.origin))


def retrieve_session(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/checkout/sessions/{id}"""
    with call.store.lock:
        return call.render(payments.get_session(call.store, id))


def list_sessions(call: Call) -> dict[str, Any]:
    """GET /v1/checkout/sessions (newest first, optional payment_intent filter)."""
    with call.store.lock:
        sessions = list(reversed(call.store.sessions.values()))
        if "payment_intent" in call.params:
            sessions = [s for s in sessions if s["payment_intent"] == call.params["payment_intent"]]
        views = [payments.render(call.store, s, [], call.version) for s in sessions]
        page = {k: v for k, v in call.params.items() if k != "payment_intent"}
        return list_object(views, "/v1/checkout/sessions", page)


def session_line_items(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/checkout/sessions/{id}/line_items"""
    with call.store.lock:
        return payments.session_line_items(call.store, id, call.params)


def expire_session(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/checkout/sessions/{id}/expire"""
    with call.store.lock:
        return call.render(payments.expire_session(call.store, id, call.origin))


def create_refund(call: Call) -> dict[str, Any]:
    """POST /v1/refunds"""
    with call.store.lock:
        return call.render(payments.create_refund(call.store, call.params, call.origin))


def list_refunds(call: Call) -> dict[str, Any]:
    """GET /v1/refunds (newest first; `charge` or `payment_intent` filters)."""
    with call.store.lock:
        return payments.list_refunds(call.store, call.params, call.version)


def charge_refunds(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/charges/{id}/refunds"""
    with call.store.lock:
        if id not in call.store.charges:
            raise no_such("charge", id)
        return payments.charge_refunds(call.store, id, call.params, call.version)


def update_dispute(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/disputes/{id}: evidence[...], metadata, submit."""
    with call.store.lock:
        metadata = payments.metadata_param(call.params["metadata"]) if "metadata" in call.params else None
        return call.render(disputes.update_dispute(call.store, id, call.params, call.origin, metadata))


def close_dispute(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/disputes/{id}/close"""
    with call.store.lock:
        return call.render(disputes.close_dispute(call.store, id, call.origin))


def list_disputes(call: Call) -> dict[str, Any]:
    """GET /v1/disputes (newest first; `charge` or `payment_intent` filters)."""
    with call.store.lock:
        return disputes.list_disputes(call.store, call.params, call.version)


def list_early_fraud_warnings(call: Call) -> dict[str, Any]:
    """GET /v1/radar/early_fraud_warnings (newest first; `charge` or `payment_intent` filters)."""
    with call.store.lock:
        return disputes.list_early_fraud_warnings(call.store, call.params, call.version)


def _getter(table: str, kind: str) -> Handler:
    def retrieve(call: Call, id: str) -> dict[str, Any]:
        with call.store.lock:
            obj = getattr(call.store, table).get(id)
            if obj is None:
                raise no_such(kind, id)
            return call.render(obj)

    retrieve.__doc__ = f"GET one {kind}."
    return retrieve


def retrieve_event(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/events/{id}, rendered in the request's API version."""
    with call.store.lock:
        event = call.store.events.get(id)
        if event is None or not event_exists_for(event, call.version):
            raise no_such("event", id)
        return render_event(event, call.version)


def list_events(call: Call) -> dict[str, Any]:
    """GET /v1/events (newest first, optional `type` filter with `*` wildcards)."""
    with call.store.lock:
        events = [e for e in reversed(call.store.events.values()) if event_exists_for(e, call.version)]
        wanted = call.params.get("type")
        if wanted:
            events = [e for e in events if fnmatch.fnmatchcase(e["type"], wanted)]
        page = {k: v for k, v in call.params.items() if k != "type"}
        return list_object([render_event(e, call.version) for e in events], "/v1/events", page)


def create_webhook_endpoint(call: Call) -> dict[str, Any]:
    """POST /v1/webhook_endpoints (the only answer that shows the signing secret)."""
    endpoint = endpoints.create_endpoint(call.store, call.params)
    return endpoints.view(endpoint, call.version, with_secret=True)


def list_webhook_endpoints(call: Call) -> dict[str, Any]:
    """GET /v1/webhook_endpoints"""
    return endpoints.list_endpoints(call.store, call.params, call.version)


def retrieve_webhook_endpoint(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/webhook_endpoints/{id}"""
    return endpoints.view(endpoints.get_endpoint(call.store, id), call.version)


def update_webhook_endpoint(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/webhook_endpoints/{id}"""
    return endpoints.view(endpoints.update_endpoint(call.store, id, call.params), call.version)


def delete_webhook_endpoint(call: Call, id: str) -> dict[str, Any]:
    """DELETE /v1/webhook_endpoints/{id}"""
    return endpoints.delete_endpoint(call.store, id)


def build_router() -> Router[Handler]:
    """The `/v1` routes the emulator serves."""
    router: Router[Handler] = Router()
    router.add("POST", "/v1/checkout/sessions", create_session)
    router.add("GET", "/v1/checkout/sessions", list_sessions)
    router.add("GET", "/v1/checkout/sessions/{id}", retrieve_session)
    router.add("GET", "/v1/checkout/sessions/{id}/line_items", session_line_items)
    router.add("POST", "/v1/checkout/sessions/{id}/expire", expire_session)
    router.add("POST", "/v1/refunds", create_refund)
    router.add("GET", "/v1/refunds", list_refunds)
    router.add("GET", "/v1/refunds/{id}", _getter("refunds", "refund"))
    router.add("GET", "/v1/payment_intents/{id}", _getter("payment_intents", "payment_intent"))
    router.add("GET", "/v1/charges/{id}", _getter("charges", "charge"))
    router.add("GET", "/v1/charges/{id}/refunds", charge_refunds)
    router.add("GET", "/v1/disputes", list_disputes)
    router.add("GET", "/v1/disputes/{id}", _getter("disputes", "dispute"))
    router.add("POST", "/v1/disputes/{id}", update_dispute)
    router.add("POST", "/v1/disputes/{id}/close", close_dispute)
    router.add("GET", "/v1/radar/early_fraud_warnings", list_early_fraud_warnings)
    router.add(
        "GET", "/v1/radar/early_fraud_warnings/{id}", _getter("early_fraud_warnings", "radar.early_fraud_warning")
    )
    router.add("GET", "/v1/events", list_events)
    router.add("GET", "/v1/events/{id}", retrieve_event)
    router.add("POST", "/v1/webhook_endpoints", create_webhook_endpoint)
    router.add("GET", "/v1/webhook_endpoints", list_webhook_endpoints)
    router.add("GET", "/v1/webhook_endpoints/{id}", retrieve_webhook_endpoint)
    router.add("POST", "/v1/webhook_endpoints/{id}", update_webhook_endpoint)
    router.add("DELETE", "/v1/webhook_endpoints/{id}", delete_webhook_endpoint)
    return router
