"""Handlers for the emulated `/v1` endpoints; each returns the JSON object to send."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import payments
from .errors import no_such
from .objects import expand_list, list_object
from .router import Router
from .store import Origin, Store


@dataclass(frozen=True)
class Call:
    """What a handler gets: state, decoded params and where the request came from."""

    store: Store
    params: dict[str, Any]
    origin: Origin
    public_url: str

    @property
    def expand(self) -> list[str]:
        """The request's `expand[]` paths."""
        return expand_list(self.params)


Handler = Callable[..., dict[str, Any]]


def create_session(call: Call) -> dict[str, Any]:
    """POST /v1/checkout/sessions"""
    with call.store.lock:
        session = payments.create_session(call.store, call.params, call.public_url, call.origin)
        return payments.render(call.store, session, call.expand)


def retrieve_session(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/checkout/sessions/{id}"""
    with call.store.lock:
        return payments.render(call.store, payments.get_session(call.store, id), call.expand)


def list_sessions(call: Call) -> dict[str, Any]:
    """GET /v1/checkout/sessions (newest first, optional payment_intent filter)."""
    with call.store.lock:
        sessions = list(reversed(call.store.sessions.values()))
        if "payment_intent" in call.params:
            sessions = [s for s in sessions if s["payment_intent"] == call.params["payment_intent"]]
        views = [payments.render(call.store, s, []) for s in sessions]
        return list_object(views, "/v1/checkout/sessions", call.params)


def session_line_items(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/checkout/sessions/{id}/line_items"""
    with call.store.lock:
        return payments.session_line_items(call.store, id, call.params)


def expire_session(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/checkout/sessions/{id}/expire"""
    with call.store.lock:
        session = payments.expire_session(call.store, id, call.origin)
        return payments.render(call.store, session, call.expand)


def create_refund(call: Call) -> dict[str, Any]:
    """POST /v1/refunds"""
    with call.store.lock:
        refund = payments.create_refund(call.store, call.params, call.origin)
        return payments.render(call.store, refund, call.expand)


def _getter(table: str, kind: str) -> Handler:
    def retrieve(call: Call, id: str) -> dict[str, Any]:
        with call.store.lock:
            obj = getattr(call.store, table).get(id)
            if obj is None:
                raise no_such(kind, id)
            return payments.render(call.store, obj, call.expand)

    retrieve.__doc__ = f"GET one {kind}."
    return retrieve


def list_events(call: Call) -> dict[str, Any]:
    """GET /v1/events (newest first, optional `type` filter with `*` wildcards)."""
    with call.store.lock:
        events = list(reversed(call.store.events.values()))
        wanted = call.params.get("type")
        if wanted:
            events = [e for e in events if fnmatch.fnmatchcase(e["type"], wanted)]
        return list_object(copy.deepcopy(events), "/v1/events", call.params)


def build_router() -> Router[Handler]:
    """The `/v1` routes the emulator serves."""
    router: Router[Handler] = Router()
    router.add("POST", "/v1/checkout/sessions", create_session)
    router.add("GET", "/v1/checkout/sessions", list_sessions)
    router.add("GET", "/v1/checkout/sessions/{id}", retrieve_session)
    router.add("GET", "/v1/checkout/sessions/{id}/line_items", session_line_items)
    router.add("POST", "/v1/checkout/sessions/{id}/expire", expire_session)
    router.add("POST", "/v1/refunds", create_refund)
    router.add("GET", "/v1/refunds/{id}", _getter("refunds", "refund"))
    router.add("GET", "/v1/payment_intents/{id}", _getter("payment_intents", "payment_intent"))
    router.add("GET", "/v1/charges/{id}", _getter("charges", "charge"))
    router.add("GET", "/v1/events", list_events)
    router.add("GET", "/v1/events/{id}", _getter("events", "event"))
    return router
