"""The one door to Stripe: the only module that imports the stripe SDK.

A StripeClient is built from config and kept on app.extensions; services reach it through
get_gateway() and get plain dicts and gateway exceptions back, never SDK types.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import stripe
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from stripe.params.checkout import SessionCreateParamsShippingAddressCollection

log = logging.getLogger("shopapp.gateway")

EXTENSION_KEY = "shop_gateway"
T = TypeVar("T")


class GatewayError(Exception):
    """Stripe could not do what was asked; `user_message` is safe to show a shopper."""

    user_message: Any = _l("The payment provider could not be reached. Nothing was charged; please try again.")

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class GatewayBusy(GatewayError):
    """Stripe answered 429 even after a short backoff."""

    user_message = _l("Payments are very busy right now. Nothing was charged; please try again in a moment.")


class GatewayUnavailable(GatewayError):
    """Network failure, timeout, 409 or 5xx: the outcome is unknown, so retry with the same key."""


class GatewayRejected(GatewayError):
    """Stripe refused the request (4xx): retrying the same request will not help."""

    user_message = _l("The payment provider refused this checkout. Nothing was charged; please contact us.")


class SessionNotFound(GatewayRejected):
    """Stripe answered 404 `resource_missing` for a Checkout Session: it does not exist on this account.

    Final information (the session can never be paid): e.g. the local Stripe service lost its state on a
    restart, or the keys now point at another account. Services close such an order locally.
    """


def _missing(error: GatewayRejected) -> bool:
    return error.status == 404 and error.code == "resource_missing"


# Stripe's error code for a request whose idempotency key another request is still using; and how long to
# wait before asking again (times the attempt number): a checkout create takes a few hundred milliseconds.
IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
IN_FLIGHT_WAIT_SECONDS = 0.25


class WebhookSignatureError(Exception):
    """The webhook payload or its Stripe-Signature header did not verify."""


class WebhookPayloadError(WebhookSignatureError):
    """A correctly signed body that is not JSON within limits (depth, keys, items): refused, changes nothing."""


# Stripe's signature tolerance (the SDK's DEFAULT_TOLERANCE, 300 s): a signed timestamp older than this is
# a replay, and one further ahead than this (the SDK checks only the past) is refused just the same.
WEBHOOK_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE

# Limits of a webhook body while parsing. Stripe's events nest about eight levels and hold a few hundred
# keys; these leave ample room and stop a signed body from exhausting the parser (a recursion error) or
# building an object tree far larger than any event.
WEBHOOK_MAX_DEPTH = 64
WEBHOOK_MAX_KEYS = 10_000
WEBHOOK_MAX_ITEMS = 50_000

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{}:,")


def check_json_limits(payload: bytes, max_depth: int, max_keys: int, max_items: int) -> None:
    """Raise WebhookPayloadError if the JSON text nests deeper than max_depth or has too many keys/items.

    Counts the structure outside string literals before any parsing: brackets for depth, colons for
    keys, commas for items. Linear in the body's size; a body that is not JSON at all passes here and
    fails in json.loads.
    """
    structure = _JSON_STRING.sub(b"", payload).translate(None, _NOT_STRUCTURE)
    if structure.count(b":") > max_keys:
        raise WebhookPayloadError(f"malformed payload: more than {max_keys} keys")
    if structure.count(b",") > max_items:
        raise WebhookPayloadError(f"malformed payload: more than {max_items} items")
    brackets = structure.translate(None, b":,")
    if len(brackets) // 2 <= max_depth:
        return  # too few brackets to nest that deep
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                raise WebhookPayloadError(f"malformed payload: nested deeper than {max_depth} levels")
        else:
            depth -= 1


def signed_timestamp(signature: str) -> int | None:
    """The `t=` value of a Stripe-Signature header (seconds since the epoch), or None."""
    for item in signature.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            return int(value) if value.isascii() and value.isdigit() else None
    return None


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class PaymentGateway:
    """Thin wrapper over a StripeClient that translates SDK errors and results."""

    def __init__(
        self, client: stripe.StripeClient, webhook_secret: str | None, backoff_seconds: float, livemode: bool = False
    ) -> None:
        # Whether the keys are live-mode keys: events of the other mode are not this shop's (webhooks.py).
        self.livemode = livemode
        self._client = client
        self._webhook_secret = webhook_secret
        self._backoff_seconds = backoff_seconds

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call; on 429 back off once and retry (same idempotency key), then give up politely.

        A 409 "idempotency_key_in_use" (the same request still in flight elsewhere, e.g. a double submit
        landing on two workers or nodes) is waited out and retried the same way: the retry is answered
        with the first request's result (Stripe docs, "Idempotent requests").
        """
        for attempt in (1, 2, 3):
            try:
                result = fn()
                # Stripe's Request-Id beside ours (the record's request_id): the pair finds this call in
                # Stripe's dashboard logs from any line of the request that made it.
                response = getattr(result, "last_response", None)
                log.info("Stripe %s", what, extra={"stripe_request_id": getattr(response, "request_id", None)})
                return result
            except stripe.RateLimitError as error:
                log.warning("Stripe rate limit on %s (attempt %d)", what, attempt)
                if attempt >= 2:
                    raise GatewayBusy(str(error), code="rate_limit", status=429) from error
                time.sleep(self._backoff_seconds)
            except stripe.APIConnectionError as error:
                log.warning("Stripe unreachable on %s: %s", what, error.user_message)
                raise GatewayUnavailable(str(error)) from error
            except (stripe.InvalidRequestError, stripe.IdempotencyError, stripe.CardError) as error:
                if error.http_status == 409 and getattr(error, "code", None) == IDEMPOTENCY_KEY_IN_USE:
                    log.warning("Stripe: %s still in flight elsewhere (attempt %d)", what, attempt)
                    if attempt == 3:
                        raise GatewayUnavailable(str(error.user_message), status=409) from error
                    time.sleep(IN_FLIGHT_WAIT_SECONDS * attempt)
                    continue
                log.warning("Stripe refused %s: %s", what, error.user_message)
                raise GatewayRejected(
                    str(error.user_message), code=getattr(error, "code", None), status=error.http_status
                ) from error
            except stripe.StripeError as error:
                log.warning(
                    "Stripe error on %s: %s (%s)",
                    what,
                    error.user_message,
                    error.http_status,
                    extra={"stripe_request_id": error.request_id},
                )
                raise GatewayUnavailable(str(error.user_message), status=error.http_status) from error
        raise AssertionError("unreachable")

    def create_checkout_session(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a Checkout Session; the same key always yields the same session."""
        return _plain(
            self._call(
                "create checkout session",
                lambda: self._client.v1.checkout.sessions.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Fetch a Checkout Session with its payment intent expanded; SessionNotFound if Stripe has none."""
        try:
            return _plain(
                self._call(
                    "retrieve checkout session",
                    lambda: self._client.v1.checkout.sessions.retrieve(
                        session_id, params={"expand": ["payment_intent"]}
                    ),
                )
            )
        except GatewayRejected as error:
            if _missing(error):
                raise SessionNotFound(str(error), code=error.code, status=error.status) from error
            raise

    def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Expire an open Checkout Session so it can no longer be paid; SessionNotFound if Stripe has none."""
        try:
            return _plain(
                self._call(
                    "expire checkout session",
                    lambda: self._client.v1.checkout.sessions.expire(
                        session_id, options={"idempotency_key": f"expire-{session_id}"}
                    ),
                )
            )
        except GatewayRejected as error:
            if _missing(error):
                raise SessionNotFound(str(error), code=error.code, status=error.status) from error
            raise

    def create_refund(
        self, payment_intent: str, amount_cents: int, idempotency_key: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """Refund part or all of a payment."""
        return _plain(
            self._call(
                "create refund",
                lambda: self._client.v1.refunds.create(
                    params={"payment_intent": payment_intent, "amount": amount_cents, "metadata": metadata},
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def update_dispute(
        self, dispute_id: str, evidence: dict[str, str], *, submit: bool, idempotency_key: str
    ) -> dict[str, Any]:
        """Stage (`submit=False`) or submit a dispute's evidence (POST /v1/disputes/{id}); the key makes a
        retried or repeated call one request at Stripe."""
        return _plain(
            self._call(
                "update dispute",
                lambda: self._client.v1.disputes.update(
                    dispute_id,
                    params={"evidence": evidence, "submit": submit},  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def list_refunds(self, *, charge: str | None = None, payment_intent: str | None = None) -> list[dict[str, Any]]:
        """Every refund of one charge or payment intent (all pages), newest first, as plain dicts.

        Used when an event does not carry the refunds themselves: since API version 2022-11-15 a Charge
        (and so `charge.refunded`) no longer includes `refunds` unless expanded (Stripe changelog).
        """
        params: dict[str, Any] = {"limit": 100}
        if charge:
            params["charge"] = charge
        if payment_intent:
            params["payment_intent"] = payment_intent
        if len(params) != 2:
            raise ValueError("give exactly one of charge or payment_intent")

        def fetch() -> list[dict[str, Any]]:
            page = self._client.v1.refunds.list(params=params)  # type: ignore[arg-type]
            return [_plain(refund) for refund in page.auto_paging_iter()]

        return self._call("list refunds", fetch)

    def list_checkout_sessions(self, *, payment_intent: str) -> list[dict[str, Any]]:
        """The Checkout Sessions that made a payment intent (all pages), as plain dicts; empty when none did."""

        def fetch() -> list[dict[str, Any]]:
            page = self._client.v1.checkout.sessions.list(params={"payment_intent": payment_intent, "limit": 100})
            return [_plain(session) for session in page.auto_paging_iter()]

        return self._call("list checkout sessions", fetch)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """A PaymentIntent with its `latest_charge` expanded (the Charge, with `payment_method_details`), as a
        plain dict. `latest_charge` exists from API 2022-11-15 on; the SDK sends its pin, which is newer."""
        return _plain(
            self._call(
                "retrieve payment intent",
                lambda: self._client.v1.payment_intents.retrieve(
                    payment_intent_id, params={"expand": ["latest_charge"]}
                ),
            )
        )

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """One refund as Stripe holds it now (its status and failure_reason), as a plain dict."""
        return _plain(self._call("retrieve refund", lambda: self._client.v1.refunds.retrieve(refund_id)))

    def _pages(self, what: str, fetch: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a Stripe list, one call per page of 100 (`starting_after` the last id), each page through
        _call: a 429 retries that page, not the pages already read."""
        items: list[dict[str, Any]] = []
        page_params = {**params, "limit": 100}
        while True:
            page = self._call(what, functools.partial(fetch, page_params))
            data = [_plain(item) for item in page.data]
            items += data
            if not page.has_more or not data:
                return items
            page_params = {**page_params, "starting_after": data[-1]["id"]}

    def list_balance_transactions(self, created_gte: int, created_lt: int) -> list[dict[str, Any]]:
        """Every balance transaction created in [created_gte, created_lt) (unix seconds), newest first, with its
        `source` (charge, refund, dispute...) expanded, as plain dicts: ceil(n / 100) calls."""
        return self._pages(
            "list balance transactions",
            lambda params: self._client.v1.balance_transactions.list(params=params),  # type: ignore[arg-type]
            {"created": {"gte": created_gte, "lt": created_lt}, "expand": ["data.source"]},
        )

    def list_undelivered_events(self, created_gte: int, types: list[str]) -> list[dict[str, Any]]:
        """Events of `types` (up to 20) created since `created_gte` that some webhook endpoint has not
        acknowledged (`delivery_success=false`: still being retried, or given up), newest first, as plain
        dicts rendered in the SDK's API version (docs "Process undelivered events")."""
        return self._pages(
            "list undelivered events",
            lambda params: self._client.v1.events.list(params=params),  # type: ignore[arg-type]
            {"delivery_success": False, "created": {"gte": created_gte}, "types": types},
        )

    # Issue 23: what staff add to a price, created at Stripe from the admin (services/discounts.py), each with the
    # key stored on its row before the call ("coupon-<id>-<random>", ...), so a retry never makes a second one.

    def create_coupon(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a Coupon (`percent_off` or `amount_off` + `currency`, `duration`, limits) as a plain dict."""
        return _plain(
            self._call(
                "create coupon",
                lambda: self._client.v1.coupons.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def create_promotion_code(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a PromotionCode for a coupon (`promotion[coupon]`, `code`, limits) as a plain dict."""
        return _plain(
            self._call(
                "create promotion code",
                lambda: self._client.v1.promotion_codes.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def update_promotion_code(self, promotion_code_id: str, *, active: bool) -> dict[str, Any]:
        """Switch a PromotionCode on or off (Stripe lets only `active`, `metadata` and restrictions change)."""
        return _plain(
            self._call(
                "update promotion code",
                lambda: self._client.v1.promotion_codes.update(promotion_code_id, params={"active": active}),
            )
        )

    def create_shipping_rate(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a fixed-amount ShippingRate (`display_name`, `fixed_amount`, `delivery_estimate`, tax)."""
        return _plain(
            self._call(
                "create shipping rate",
                lambda: self._client.v1.shipping_rates.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                ),
            )
        )

    def parse_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """Verify the Stripe-Signature over the raw body and return the event as a dict."""
        if not self._webhook_secret:
            raise WebhookSignatureError("no webhook secret is configured")
        if not signature:
            raise WebhookSignatureError("missing Stripe-Signature header")
        try:
            # The SDK's own check (HMAC over "timestamp.body", constant-time compare, 5-minute tolerance),
            # then a plain json.loads: construct_event would build a tree of StripeObjects that this method
            # only turned back into dicts, a fifth of the cost of every delivery.
            stripe.WebhookSignature.verify_header(payload, signature, self._webhook_secret, WEBHOOK_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            raise WebhookSignatureError(f"signature verification failed: {error.user_message}") from error
        except UnicodeDecodeError as error:  # the SDK decodes the body as UTF-8 to sign it
            raise WebhookPayloadError(f"malformed payload: {type(error).__name__}") from error
        # The SDK refuses only old timestamps; one from the future is as suspect (a presigned replay).
        timestamp = signed_timestamp(signature)
        if timestamp is None or timestamp > time.time() + WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookSignatureError("signature verification failed: timestamp outside the tolerance zone")
        check_json_limits(payload, WEBHOOK_MAX_DEPTH, WEBHOOK_MAX_KEYS, WEBHOOK_MAX_ITEMS)
        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError) as error:
            raise WebhookPayloadError(f"malformed payload: {type(error).__name__}") from error
        if not isinstance(event, dict):
            raise WebhookPayloadError(f"malformed payload: a JSON {type(event).__name__}, not an object")
        return event


def build_client(config: dict[str, Any]) -> stripe.StripeClient:
    """A StripeClient from settings: key, optional local API base, timeouts, retries, test transport."""
    http_client = config.get("STRIPE_HTTP_CLIENT")
    if http_client is None:
        http_client = stripe.RequestsClient(timeout=config["STRIPE_TIMEOUT_SECONDS"])
    options: dict[str, Any] = {
        "http_client": http_client,
        "max_network_retries": config["STRIPE_MAX_NETWORK_RETRIES"],
    }
    if config.get("STRIPE_API_BASE"):
        options["base_addresses"] = {"api": config["STRIPE_API_BASE"]}
    return stripe.StripeClient(config.get("STRIPE_SECRET_KEY") or "sk_test_missing", **options)


def init_gateway(app: Flask) -> None:
    """Build the gateway for this app and keep it on app.extensions."""
    app.extensions[EXTENSION_KEY] = PaymentGateway(
        build_client(app.config),
        app.config.get("STRIPE_WEBHOOK_SECRET"),
        float(app.config["STRIPE_RATE_LIMIT_BACKOFF_SECONDS"]),
        livemode=str(app.config.get("STRIPE_SECRET_KEY") or "").startswith(("sk_live_", "rk_live_")),
    )


def get_gateway() -> PaymentGateway:
    """The current app's gateway."""
    gateway: PaymentGateway = current_app.extensions[EXTENSION_KEY]
    return gateway


# ---------------------------------------------------------------- webhook endpoints (set-up, not the payment path)
# Used by `flask stripe webhook-endpoint`; Stripe returns an endpoint's signing secret only when it is created.


def sdk_api_version() -> str:
    """The API version the installed SDK pins (stripe/_api_version.py): what the shop's calls use."""
    return str(stripe.api_version)


def list_webhook_endpoints(gateway: PaymentGateway) -> list[dict[str, Any]]:
    """Every webhook endpoint of the account (all pages)."""
    page = gateway._call(
        "list webhook endpoints", lambda: gateway._client.v1.webhook_endpoints.list(params={"limit": 100})
    )
    return [_plain(endpoint) for endpoint in page.auto_paging_iter()]


def create_webhook_endpoint(
    gateway: PaymentGateway, url: str, event_types: list[str], api_version: str
) -> dict[str, Any]:
    """Create an endpoint for `url` taking `event_types`, rendered in `api_version`; the result has `secret`."""
    return _plain(
        gateway._call(
            "create webhook endpoint",
            lambda: gateway._client.v1.webhook_endpoints.create(
                params={"url": url, "enabled_events": event_types, "api_version": api_version},  # type: ignore[typeddict-item]
            ),
        )
    )


def update_webhook_endpoint(gateway: PaymentGateway, endpoint_id: str, event_types: list[str]) -> dict[str, Any]:
    """Set an endpoint's event types and enable it (its API version cannot change: Stripe's rule)."""
    return _plain(
        gateway._call(
            "update webhook endpoint",
            lambda: gateway._client.v1.webhook_endpoints.update(
                endpoint_id,
                params={"enabled_events": event_types, "disabled": False},  # type: ignore[arg-type]
            ),
        )
    )


def delete_webhook_endpoint(gateway: PaymentGateway, endpoint_id: str) -> None:
    """Delete an endpoint (Stripe stops sending to it at once)."""
    gateway._call("delete webhook endpoint", lambda: gateway._client.v1.webhook_endpoints.delete(endpoint_id))


@functools.cache
def shipping_countries() -> frozenset[str]:
    """The two-letter codes Stripe Checkout collects a shipping address in: the `allowed_countries` Literal of the
    SDK's `SessionCreateParamsShippingAddressCollection` (generated from Stripe's OpenAPI description). A code
    outside it makes Stripe refuse every session that names it."""
    hints = typing.get_type_hints(SessionCreateParamsShippingAddressCollection)
    (item,) = typing.get_args(hints["allowed_countries"])
    literals = [arg for arg in typing.get_args(item) if typing.get_origin(arg) is typing.Literal]
    return frozenset(str(code) for literal in literals for code in typing.get_args(literal))
