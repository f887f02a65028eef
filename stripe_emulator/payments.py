"""Checkout, payment and refund rules: the behaviour the API, hosted page and controls share."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import EmulatorStateError, StripeAPIError, invalid, missing_param, no_such
from .objects import apply_expand, list_object, new_id
from .store import AsyncPayment, Origin, Store

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
MINIMUM_AMOUNT = 50  # Stripe's minimum charge is about 0.50 in the smallest unit
EXPANDED_LIST_LIMIT = 10

# Accepted (Stripe knows them) but without effect in the emulator.
_IGNORED_CREATE_PARAMS = {
    "allow_promotion_codes", "billing_address_collection", "customer", "customer_creation",
    "locale", "payment_intent_data", "payment_method_types", "phone_number_collection",
    "submit_type", "ui_mode", "custom_text", "automatic_tax", "invoice_creation",
}
_CREATE_PARAMS = {
    "mode", "line_items", "success_url", "cancel_url", "expires_at", "metadata",
    "client_reference_id", "customer_email", "expand",
} | _IGNORED_CREATE_PARAMS

TEST_CARDS: dict[str, tuple[str, str] | None] = {
    "4242424242424242": None,
    "4000000000000002": ("card_declined", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": ("expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "Your card's security code is incorrect."),
}


@dataclass(frozen=True)
class PaymentResult:
    """Outcome of a payment attempt; `status` is what the hosted page answers."""

    status: int
    outcome: str  # "paid", "processing", or the decline/validation code
    message: str | None = None
    redirect_url: str | None = None


# ---------------------------------------------------------------- checkout sessions


def create_session(
    store: Store, params: dict[str, Any], public_url: str, origin: Origin
) -> dict[str, Any]:
    """Validate Checkout Session params like Stripe (one-time payments) and store the session."""
    for name in params:
        if name not in _CREATE_PARAMS:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    mode = params.get("mode")
    if mode is None:
        raise missing_param("mode")
    if mode != "payment":
        raise invalid(
            f"Invalid mode: {mode!r}. The emulator supports only one-time payments (mode=payment).",
            "mode", "parameter_invalid_string",
        )
    success_url = _url(params, "success_url")
    cancel_url = _url(params, "cancel_url")
    now = store.clock.timestamp()
    expires_at = _expires_at(params.get("expires_at"), now)
    metadata = _metadata(params.get("metadata", {}))
    client_reference_id = params.get("client_reference_id")
    if client_reference_id is not None and not 1 <= len(client_reference_id) <= 200:
        raise invalid("client_reference_id must be 1 to 200 characters.", "client_reference_id")
    session_id = new_id("cs_test_", 58)
    items = _line_items(params.get("line_items"), now)
    currency = items[0]["currency"]
    total = sum(item["amount_total"] for item in items)
    if total < MINIMUM_AMOUNT:
        raise invalid(
            "The Checkout Session's total amount due must add up to at least 50 in the "
            "smallest currency unit.", None, "amount_too_small",
        )
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "created": now,
        "currency": currency,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": expires_at,
        "livemode": False,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "success_url": success_url,
        "url": f"{public_url.rstrip('/')}/pay/{session_id}",
    }
    with store.lock:
        store.sessions[session_id] = session
        store.line_items[session_id] = items
    return session


def _url(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise missing_param(name)
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Not a valid URL", name, "url_invalid")
    return str(value)


def _int(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")


def _expires_at(raw: Any, now: int) -> int:
    if raw is None:
        return now + MAX_EXPIRY
    expires_at = _int(raw, "expires_at")
    if expires_at < now + MIN_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            "expires_at", "parameter_invalid_integer",
        )
    if expires_at > now + MAX_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at", "parameter_invalid_integer",
        )
    return expires_at


def _metadata(raw: Any) -> dict[str, str]:
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", "metadata")
    if len(raw) > 50:
        raise invalid("You can specify up to 50 keys in metadata.", "metadata")
    for key, value in raw.items():
        if len(key) > 40 or not isinstance(value, str) or len(value) > 500:
            raise invalid(
                "Metadata keys are at most 40 characters and values strings of at most 500.",
                f"metadata[{key}]",
            )
    return dict(raw)


def _line_items(raw: Any, now: int) -> list[dict[str, Any]]:
    if raw is None:
        raise invalid(
            "line_items is required in payment mode.", "line_items", "parameter_missing"
        )
    if not isinstance(raw, list) or not raw:
        raise invalid("Invalid array", "line_items")
    items = []
    for i, line in enumerate(raw):
        prefix = f"line_items[{i}]"
        if not isinstance(line, dict):
            raise invalid("Invalid object", prefix)
        if "price" in line:
            raise invalid(f"No such price: '{line['price']}'", f"{prefix}[price]", "resource_missing")
        if "quantity" not in line:
            raise missing_param(f"{prefix}[quantity]")
        quantity = _int(line["quantity"], f"{prefix}[quantity]")
        if quantity < 1:
            raise invalid(
                "This value must be greater than or equal to 1.", f"{prefix}[quantity]",
                "parameter_invalid_integer",
            )
        price_data = line.get("price_data")
        if not isinstance(price_data, dict):
            raise invalid(
                "You must specify either `price` or `price_data` for each line item.",
                f"{prefix}[price_data]", "parameter_missing",
            )
        currency = price_data.get("currency")
        if currency is None:
            raise missing_param(f"{prefix}[price_data][currency]")
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise invalid(f"Invalid currency: {currency}", f"{prefix}[price_data][currency]",
                          "parameter_invalid_string")
        currency = currency.lower()
        if items and currency != items[0]["currency"]:
            raise invalid("All line items must use the same currency.",
                          f"{prefix}[price_data][currency]")
        if "unit_amount" not in price_data:
            raise missing_param(f"{prefix}[price_data][unit_amount]")
        unit_amount = _int(price_data["unit_amount"], f"{prefix}[price_data][unit_amount]")
        if unit_amount < 0:
            raise invalid("This value must be greater than or equal to 0.",
                          f"{prefix}[price_data][unit_amount]", "parameter_invalid_integer")
        product = price_data.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not name:
            raise missing_param(f"{prefix}[price_data][product_data][name]")
        amount = unit_amount * quantity
        items.append({
            "id": new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency,
            "description": name,
            "price": {
                "id": new_id("price_"),
                "object": "price",
                "active": False,
                "billing_scheme": "per_unit",
                "created": now,
                "currency": currency,
                "livemode": False,
                "metadata": {},
                "product": new_id("prod_", 14),
                "type": "one_time",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            },
            "quantity": quantity,
        })
    return items


def get_session(store: Store, session_id: str) -> dict[str, Any]:
    """The stored session or a 404."""
    session = store.sessions.get(session_id)
    if session is None:
        raise no_such("checkout.session", session_id)
    return session


def session_line_items(store: Store, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """A page of the session's line items."""
    get_session(store, session_id)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return list_object(copy.deepcopy(store.line_items[session_id]), url, params)


def render(store: Store, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    """A copy of `obj` as the API shows it, with `expand[]` applied."""
    view = copy.deepcopy(obj)
    if view["object"] == "checkout.session" and view["status"] != "open":
        view["url"] = None  # Stripe only shows the hosted page URL while the session is open
    resolvers = {
        ("checkout.session", "line_items"): lambda _: session_line_items(
            store, view["id"], {"limit": str(EXPANDED_LIST_LIMIT)}),
        ("checkout.session", "payment_intent"): lambda pid: _lookup(store.payment_intents, pid),
        ("payment_intent", "latest_charge"): lambda cid: _lookup(store.charges, cid),
        ("charge", "payment_intent"): lambda pid: _lookup(store.payment_intents, pid),
        ("refund", "charge"): lambda cid: _lookup(store.charges, cid),
        ("refund", "payment_intent"): lambda pid: _lookup(store.payment_intents, pid),
    }
    return apply_expand(view, expand, resolvers)


def _lookup(table: dict[str, dict[str, Any]], object_id: str | None) -> dict[str, Any] | None:
    return copy.deepcopy(table[object_id]) if object_id else None


def expire_session(store: Store, session_id: str, origin: Origin | None = None) -> dict[str, Any]:
    """Expire an open session (API, test control or clock) and emit `checkout.session.expired`."""
    with store.lock:
        session = get_session(store, session_id)
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{session["status"]}".', None, "checkout_session_not_open",
            )
        session["status"] = "expired"
        store.emit("checkout.session.expired", session, origin)
        return session


def expire_due_sessions(store: Store) -> list[str]:
    """Expire every open session whose `expires_at` the clock has reached."""
    with store.lock:
        now = store.clock.timestamp()
        due = [s["id"] for s in store.sessions.values()
               if s["status"] == "open" and s["expires_at"] <= now]
        for session_id in due:
            expire_session(store, session_id)
        return due


# ---------------------------------------------------------------- paying


def check_card(number: str, expiry: str, cvc: str, now: float) -> tuple[int, str, str] | None:
    """Validate card fields like the hosted page; return (status, code, message) on failure."""
    import datetime as dt

    digits = re.sub(r"[\s-]", "", number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn(digits):
        return 400, "incorrect_number", "Your card number is incorrect."
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry)
    if not match or not 1 <= int(match.group(1)) <= 12:
        return 400, "invalid_expiry_month", "Your card's expiration date is incomplete."
    year = int(match.group(2)) % 100 + 2000
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    if (year, int(match.group(1))) < (today.year, today.month):
        return 400, "invalid_expiry_year", "Your card's expiration year is in the past."
    if not re.fullmatch(r"\d{3,4}", cvc.strip()):
        return 400, "incomplete_cvc", "Your card's security code is incomplete."
    if digits not in TEST_CARDS:
        return 402, "card_declined", (
            "Your card was declined. Your request was in test mode, but used a non test card.")
    decline = TEST_CARDS[digits]
    if decline is not None:
        return 402, decline[0], decline[1]
    return None


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def open_session(store: Store, session_id: str) -> dict[str, Any]:
    """The session if it can still be paid, else an EmulatorStateError saying why."""
    session = store.sessions.get(session_id)
    if session is None:
        raise EmulatorStateError(f"No such checkout session: {session_id}", 404)
    if session["status"] == "expired":
        raise EmulatorStateError("This checkout session has expired.", 410)
    if session["status"] == "complete":
        raise EmulatorStateError("This checkout session is already complete.", 409)
    return session


def pay(
    store: Store,
    session_id: str,
    *,
    card: str = "4242424242424242",
    expiry: str = "12/34",
    cvc: str = "123",
    delayed: str | None = None,
    async_delay: float | None = None,
) -> PaymentResult:
    """Pay an open session as the hosted page would; `delayed` is None, "succeed" or "fail"."""
    with store.lock:
        session = open_session(store, session_id)
        if delayed not in (None, "succeed", "fail"):
            raise EmulatorStateError("delayed must be None, 'succeed' or 'fail'")
        if delayed is None:
            failure = check_card(card, expiry, cvc, store.clock.now())
            if failure:
                status, code, message = failure
                return PaymentResult(status, code, message)
        now = store.clock.timestamp()
        intent = {
            "id": new_id("pi_"),
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0,
            "canceled_at": None,
            "cancellation_reason": None,
            "created": now,
            "currency": session["currency"],
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {},
            "payment_method_types": ["card"] if delayed is None else ["us_bank_account"],
            "status": "processing",
        }
        store.payment_intents[intent["id"]] = intent
        session["payment_intent"] = intent["id"]
        session["status"] = "complete"
        session["customer_details"] = {"email": session["customer_email"]}
        store.emit("payment_intent.created", intent, None)
        if delayed is None:
            _succeed_intent(store, intent)
            session["payment_status"] = "paid"
        else:
            due = store.clock.now() + async_delay if async_delay is not None else None
            store.async_payments[session_id] = AsyncPayment(due, delayed == "succeed")
            store.emit("payment_intent.processing", intent, None)
        store.emit("checkout.session.completed", session, None)
        redirect = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        return PaymentResult(303, "paid" if delayed is None else "processing", None, redirect)


def _succeed_intent(store: Store, intent: dict[str, Any]) -> None:
    charge = {
        "id": new_id("ch_"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "captured": True,
        "created": store.clock.timestamp(),
        "currency": intent["currency"],
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": intent["id"],
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": ""},
        "status": "succeeded",
    }
    charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
    store.charges[charge["id"]] = charge
    intent.update(status="succeeded", latest_charge=charge["id"], amount_received=intent["amount"])
    store.emit("charge.succeeded", charge, None)
    store.emit("payment_intent.succeeded", intent, None)


def complete_async(store: Store, session_id: str, succeed: bool | None = None) -> dict[str, Any]:
    """Finish a delayed payment; `succeed=None` uses the outcome chosen when paying."""
    with store.lock:
        pending = store.async_payments.pop(session_id, None)
        if pending is None:
            raise EmulatorStateError(f"No delayed payment is pending for {session_id}")
        session = store.sessions[session_id]
        intent = store.payment_intents[session["payment_intent"]]
        if pending.succeed if succeed is None else succeed:
            _succeed_intent(store, intent)
            session["payment_status"] = "paid"
            store.emit("checkout.session.async_payment_succeeded", session, None)
        else:
            intent.update(status="requires_payment_method", last_payment_error={
                "code": "payment_method_not_available", "type": "card_error",
                "message": "The payment failed.",
            })
            store.emit("payment_intent.payment_failed", intent, None)
            store.emit("checkout.session.async_payment_failed", session, None)
        return session


def complete_due_async(store: Store) -> list[str]:
    """Complete every delayed payment whose scheduled time has come."""
    with store.lock:
        now = store.clock.now()
        due = [sid for sid, p in store.async_payments.items()
               if p.due_at is not None and p.due_at <= now]
        for session_id in due:
            complete_async(store, session_id)
        return due


# ---------------------------------------------------------------- refunds


def create_refund(store: Store, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """Refund all or part of what remains on a charge; emit refund and charge events."""
    allowed = {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    with store.lock:
        charge = _refundable_charge(store, params)
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", None,
                          "charge_already_refunded")
        amount = remaining
        if "amount" in params:
            amount = _int(params["amount"], "amount")
            if amount < 1:
                raise invalid("This value must be greater than or equal to 1.", "amount",
                              "parameter_invalid_integer")
            if amount > remaining:
                raise invalid(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                    f"({remaining})", "amount", "amount_too_large",
                )
        reason = params.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid(f"Invalid reason: {reason}", "reason", "parameter_invalid_string")
        refund = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": store.clock.timestamp(),
            "currency": charge["currency"],
            "metadata": _metadata(params.get("metadata", {})),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "succeeded",
        }
        store.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        store.emit("refund.created", refund, origin)
        store.emit("charge.refunded", charge, origin)
        store.emit("refund.updated", refund, origin)
        return refund


def _refundable_charge(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    if "charge" in params:
        charge = store.charges.get(params["charge"])
        if charge is None:
            raise no_such("charge", params["charge"], "charge")
        return charge
    if "payment_intent" in params:
        intent = store.payment_intents.get(params["payment_intent"])
        if intent is None:
            raise no_such("payment_intent", params["payment_intent"], "payment_intent")
        if intent["latest_charge"] is None or intent["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "payment_intent", "charge_not_refundable",
            )
        return store.charges[intent["latest_charge"]]
    raise StripeAPIError(400, "One of `charge` or `payment_intent` is required.",
                         code="parameter_missing", param="payment_intent")
