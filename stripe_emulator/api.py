"""Handlers for the emulated `/v1` endpoints; each returns the JSON object to send."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import discounts, disputes, endpoints, invoices, listing, payments, shipping, taxes
from .errors import invalid, no_such
from .objects import expand_list, list_object
from .router import Router
from .sdkfacts import BALANCE_TRANSACTION_TYPES
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


MAX_EVENT_TYPES = 20  # EventListParams.types: "An array of up to 20 strings"


def list_events(call: Call) -> dict[str, Any]:
    """GET /v1/events: newest first; `type` (with `*` wildcards) or `types[]` (up to 20, not both),
    `created` range, `delivery_success` (false: events some subscribed endpoint has not acknowledged, still
    being retried or given up on: the SDK's EventListParams), paginated. Only the page is rendered."""
    params = call.params
    listing.refuse_unknown(params, ("type", "types", "created", "delivery_success"))
    wanted, types = params.get("type"), params.get("types")
    if wanted is not None and types is not None:
        raise invalid("You may pass either `type` or `types`, but not both.", "types")
    if isinstance(types, str):
        types = [types]
    if types is not None and (not isinstance(types, list) or len(types) > MAX_EVENT_TYPES):
        raise invalid(
            f"Invalid array: types can have at most {MAX_EVENT_TYPES} items.", "types", "parameter_invalid_array"
        )
    created = listing.created_filter(params.get("created"))
    delivered = listing.boolean(params.get("delivery_success"), "delivery_success")
    with call.store.lock:
        events = [
            e
            for e in reversed(call.store.events.values())
            if event_exists_for(e, call.version)
            and created(e["created"])
            and (not wanted or fnmatch.fnmatchcase(e["type"], wanted))
            and (types is None or e["type"] in types)
            and (delivered is None or (e["pending_webhooks"] == 0) == delivered)
        ]
        page = list_object(events, "/v1/events", listing.page_params(params))
        page["data"] = [render_event(e, call.version) for e in page["data"]]
        return page


def list_balance_transactions(call: Call) -> dict[str, Any]:
    """GET /v1/balance_transactions: newest first, filtered by `created` range, `type`, `source`, `currency`
    (BalanceTransactionListParams), paginated; `expand[]=data.source` gives each one's charge or refund."""
    params = call.params
    listing.refuse_unknown(params, ("created", "currency", "payout", "source", "type"))
    wanted_type = params.get("type")
    if wanted_type is not None and wanted_type not in BALANCE_TRANSACTION_TYPES:
        raise invalid(
            f"Invalid type: must be one of {', '.join(BALANCE_TRANSACTION_TYPES)}", "type", "parameter_invalid_string"
        )
    if "payout" in params:  # the emulator makes no payouts
        raise no_such("payout", str(params["payout"]), "payout")
    created = listing.created_filter(params.get("created"))
    source, currency = params.get("source"), params.get("currency")
    expand = listing.data_expand(call.expand)
    with call.store.lock:
        found = [
            t
            for t in reversed(call.store.balance_transactions.values())
            if created(t["created"])
            and (wanted_type is None or t["type"] == wanted_type)
            and (source is None or t["source"] == source)
            and (currency is None or t["currency"] == currency)
        ]
        # Newest first by `created` (stable: among equal times, the later made first), as Stripe sorts.
        found.sort(key=lambda t: t["created"], reverse=True)
        page = list_object(found, "/v1/balance_transactions", listing.page_params(params))
        page["data"] = [payments.render(call.store, t, expand, call.version) for t in page["data"]]
        return page


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


def create_coupon(call: Call) -> dict[str, Any]:
    """POST /v1/coupons"""
    with call.store.lock:
        return call.render(discounts.create_coupon(call.store, call.params, call.origin))


def retrieve_coupon(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/coupons/{id}"""
    with call.store.lock:
        return call.render(discounts.get_coupon(call.store, id))


def update_coupon(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/coupons/{id}"""
    with call.store.lock:
        return call.render(discounts.update_coupon(call.store, id, call.params, call.origin))


def delete_coupon(call: Call, id: str) -> dict[str, Any]:
    """DELETE /v1/coupons/{id}"""
    with call.store.lock:
        return discounts.delete_coupon(call.store, id, call.origin)


def list_coupons(call: Call) -> dict[str, Any]:
    """GET /v1/coupons"""
    with call.store.lock:
        page = discounts.list_coupons(call.store, call.params)
        page["data"] = [payments.render(call.store, c, [], call.version) for c in page["data"]]
        return page


def create_promotion_code(call: Call) -> dict[str, Any]:
    """POST /v1/promotion_codes"""
    with call.store.lock:
        return call.render(discounts.create_promotion_code(call.store, call.params, call.origin))


def retrieve_promotion_code(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/promotion_codes/{id}"""
    with call.store.lock:
        return call.render(discounts.get_promotion_code(call.store, id))


def update_promotion_code(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/promotion_codes/{id}"""
    with call.store.lock:
        return call.render(discounts.update_promotion_code(call.store, id, call.params, call.origin))


def list_promotion_codes(call: Call) -> dict[str, Any]:
    """GET /v1/promotion_codes"""
    with call.store.lock:
        page = discounts.list_promotion_codes(call.store, call.params)
        page["data"] = [payments.render(call.store, p, [], call.version) for p in page["data"]]
        return page


def create_shipping_rate(call: Call) -> dict[str, Any]:
    """POST /v1/shipping_rates"""
    with call.store.lock:
        return call.render(shipping.create_rate(call.store, call.params))


def update_shipping_rate(call: Call, id: str) -> dict[str, Any]:
    """POST /v1/shipping_rates/{id}"""
    with call.store.lock:
        return call.render(shipping.update_rate(call.store, id, call.params))


def list_shipping_rates(call: Call) -> dict[str, Any]:
    """GET /v1/shipping_rates"""
    with call.store.lock:
        page = shipping.list_rates(call.store, call.params)
        page["data"] = [payments.render(call.store, r, [], call.version) for r in page["data"]]
        return page


def retrieve_invoice(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/invoices/{id}"""
    with call.store.lock:
        return call.render(invoices.get_invoice(call.store, id))


def list_tax_codes(call: Call) -> dict[str, Any]:
    """GET /v1/tax_codes (the codes the emulator knows)."""
    codes = [taxes.tax_code_object(code) for code in sorted(taxes.TAX_CODES)]
    page = {k: v for k, v in call.params.items() if k in ("limit", "starting_after", "ending_before")}
    return list_object(codes, "/v1/tax_codes", page)


def retrieve_tax_code(call: Call, id: str) -> dict[str, Any]:
    """GET /v1/tax_codes/{id}"""
    if id not in taxes.TAX_CODES:
        raise no_such("tax_code", id)
    return taxes.tax_code_object(id)


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
    router.add("GET", "/v1/balance_transactions", list_balance_transactions)
    router.add("GET", "/v1/balance_transactions/{id}", _getter("balance_transactions", "balance_transaction"))
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
    router.add("POST", "/v1/coupons", create_coupon)
    router.add("GET", "/v1/coupons", list_coupons)
    router.add("GET", "/v1/coupons/{id}", retrieve_coupon)
    router.add("POST", "/v1/coupons/{id}", update_coupon)
    router.add("DELETE", "/v1/coupons/{id}", delete_coupon)
    router.add("POST", "/v1/promotion_codes", create_promotion_code)
    router.add("GET", "/v1/promotion_codes", list_promotion_codes)
    router.add("GET", "/v1/promotion_codes/{id}", retrieve_promotion_code)
    router.add("POST", "/v1/promotion_codes/{id}", update_promotion_code)
    router.add("POST", "/v1/shipping_rates", create_shipping_rate)
    router.add("GET", "/v1/shipping_rates", list_shipping_rates)
    router.add("GET", "/v1/shipping_rates/{id}", _getter("shipping_rates", "shipping_rate"))
    router.add("POST", "/v1/shipping_rates/{id}", update_shipping_rate)
    router.add("GET", "/v1/invoices/{id}", retrieve_invoice)
    router.add("GET", "/v1/tax_codes", list_tax_codes)
    router.add("GET", "/v1/tax_codes/{id}", retrieve_tax_code)
    return router
