"""Checkout, payment and refund rules: the behaviour the API, hosted page and controls share."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from . import balance, discounts, disputes, invoices, shapes, shipping, taxes, totals
from .errors import EmulatorStateError, StripeAPIError, invalid, missing_param, no_such
from .objects import MAXIMUM_AMOUNT, PRESENTMENT_CURRENCIES, apply_expand, list_object, new_id
from .sdkfacts import CHECKOUT_LOCALES, SHIPPING_COUNTRIES
from .store import AsyncPayment, Origin, RefundTransition, Store
from .versions import CARD_REFUND_EVENTS
from .versions import render_object as render_version

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
MINIMUM_AMOUNT = 50  # Stripe's minimum charge is about 0.50 in the smallest unit
# SessionCreateParams.line_items: "For `payment` mode, there is a maximum of 100 line items".
MAX_LINE_ITEMS = 100
EXPANDED_LIST_LIMIT = 10

# Accepted (Stripe knows them) but without effect in the emulator.
_IGNORED_CREATE_PARAMS = {
    "customer",
    "customer_creation",
    "payment_method_types",
    "phone_number_collection",
    "submit_type",
    "ui_mode",
    "custom_text",
}
_CREATE_PARAMS = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "expires_at",
    "metadata",
    "client_reference_id",
    "customer_email",
    "expand",
    "shipping_address_collection",
    "branding_settings",
    "locale",
    "payment_intent_data",
    "allow_promotion_codes",
    "discounts",
    "shipping_options",
    "automatic_tax",
    "billing_address_collection",
    "invoice_creation",
} | _IGNORED_CREATE_PARAMS


@dataclass(frozen=True)
class Decline:
    """How a test card is declined: the error `code`, Stripe's `decline_code` and the shopper's message."""

    code: str
    decline_code: str
    message: str


# Stripe's test cards (docs.stripe.com/testing): None pays; a Decline is refused by the "bank".
TEST_CARDS: dict[str, Decline | None] = {
    "4242424242424242": None,
    # Stripe's test cards of other brands (docs.stripe.com/testing#cards): they pay like 4242.
    "5555555555554444": None,  # Mastercard
    "378282246310005": None,  # American Express
    "6011111111111117": None,  # Discover
    "4000000000007726": None,  # refunds start `pending`, later `succeeded`
    "4000000000005126": None,  # refunds start `succeeded`, later `failed` (expired_or_canceled_card)
    # Pay, then get disputed or an early fraud warning (stripe_emulator/disputes.py).
    **dict.fromkeys(disputes.DISPUTE_CARDS),
    disputes.EARLY_FRAUD_WARNING_CARD: None,
    "4000000000000002": Decline("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": Decline("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
}
REFUND_PENDING_CARD = "4000000000007726"
REFUND_FAILS_LATER_CARD = "4000000000005126"
REFUND_SETTLE_SECONDS = 60.0
"""Service-clock seconds until a test card's refund changes status ("some time later" in Stripe's docs)."""


@dataclass(frozen=True)
class PaymentResult:
    """Outcome of a payment attempt; `status` is what the hosted page answers."""

    status: int
    outcome: str  # "paid", "processing", or the decline/validation code
    message: str | None = None
    redirect_url: str | None = None


# ---------------------------------------------------------------- checkout sessions


_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_BRANDING_KEYS = {"display_name", "button_color", "background_color", "border_style", "font_family"}


def _branding_settings(raw: Any) -> dict[str, Any] | None:
    """`branding_settings` (SessionCreateParamsBrandingSettings): display_name (the name shown at the top of
    the page instead of the account's business name) and hex colours; the page uses display_name only."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid object", "branding_settings", "parameter_invalid_object")
    for key in raw:
        if key not in _BRANDING_KEYS:
            raise invalid(f"Received unknown parameter: branding_settings[{key}]", f"branding_settings[{key}]",
                          "parameter_unknown")  # fmt: skip
    for key in ("button_color", "background_color"):
        if key in raw and not _HEX_COLOR.fullmatch(str(raw[key])):
            raise invalid(f"Invalid hex color: {raw[key]}", f"branding_settings[{key}]", "parameter_invalid_string")
    return {
        "background_color": raw.get("background_color", "#ffffff"),
        "border_style": raw.get("border_style", "rounded"),
        "button_color": raw.get("button_color", "#0074d4"),
        "display_name": str(raw.get("display_name", "")),
        "font_family": raw.get("font_family", "default"),
        "icon": None,
        "logo": None,
    }


def create_session(store: Store, params: dict[str, Any], public_url: str, origin: Origin) -> dict[str, Any]:
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
            "mode",
            "parameter_invalid_string",
        )
    success_url = _url(params, "success_url")
    # Optional at Stripe (SessionCreateParams: `cancel_url: NotRequired[str]`): without it the page has no
    # cancel link.
    cancel_url = _url(params, "cancel_url") if params.get("cancel_url") is not None else None
    now = store.clock.timestamp()
    expires_at = _expires_at(params.get("expires_at"), now)
    metadata = _metadata(params.get("metadata", {}))
    client_reference_id = params.get("client_reference_id")
    if client_reference_id is not None and not 1 <= len(client_reference_id) <= 200:
        raise invalid("client_reference_id must be 1 to 200 characters.", "client_reference_id")
    customer_email = _email(params.get("customer_email"), "customer_email")
    session_id = new_id("cs_test_", 58)
    items = _line_items(params.get("line_items"), now)
    currency = items[0]["currency"]
    total = sum(item["amount_total"] for item in items)
    if total > MAXIMUM_AMOUNT:
        raise invalid(
            f"The Checkout Session's total amount due must be no more than {MAXIMUM_AMOUNT} in the smallest "
            f"currency unit (up to eight digits); these line items add up to {total}.",
            "line_items",
            "amount_too_large",
        )
    shipping_collection = _shipping_address_collection(params.get("shipping_address_collection"))
    branding = _branding_settings(params.get("branding_settings"))
    intent_data = _payment_intent_data(params.get("payment_intent_data"))
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": cancel_url,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "client_reference_id": client_reference_id,
        "collected_information": None,
        "created": now,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_details": None,
        "customer_email": customer_email,
        "expires_at": expires_at,
        "livemode": False,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "shipping_address_collection": shipping_collection,
        "shipping_options": [],
        "status": "open",
        "success_url": success_url,
        "url": f"{public_url.rstrip('/')}/pay/{session_id}",
        "_public_url": public_url.rstrip("/"),  # where the invoice pages of this session live
    }
    locale = params.get("locale")
    if locale is not None:
        if locale not in CHECKOUT_LOCALES:
            raise invalid(
                f"Invalid locale: must be one of {', '.join(sorted(CHECKOUT_LOCALES))}",
                "locale",
                "parameter_invalid_string",
            )
        session["locale"] = locale  # Session.locale: the language Checkout shows its page in
    if branding is not None:
        # Session.branding_settings is optional in Stripe's declarations: present when the create call set it.
        session["branding_settings"] = branding
    session["_payment_intent_data"] = intent_data  # copied onto the PaymentIntent and its charges
    with store.lock:
        store.line_items[session_id] = items
        _checkout_extras(store, session, items, params)
        _check_total(session)
        store.sessions[session_id] = session
    return session


# Stripe's statement descriptor rules (docs.stripe.com/get-started/account/statement-descriptors): Latin
# characters only, at least one letter, none of < > \\ ' " *; the suffix is at most 22 characters
# (PaymentIntentCreateParams.statement_descriptor_suffix: "Maximum 22 characters for the concatenated descriptor").
_DESCRIPTOR_FORBIDDEN = set("<>\\'\"*")
MAX_DESCRIPTOR_SUFFIX = 22
_INTENT_DATA_KEYS = {"statement_descriptor_suffix", "description", "metadata", "receipt_email"}


def _payment_intent_data(raw: Any) -> dict[str, Any]:
    """`payment_intent_data`: what the session's PaymentIntent is created with; the descriptor suffix checked
    as Stripe checks it (400 naming `payment_intent_data[statement_descriptor_suffix]`)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", "payment_intent_data", "parameter_invalid_object")
    for key in raw:
        if key not in _INTENT_DATA_KEYS:
            # Stripe knows more (capture_method, setup_future_usage, ...); the emulator refuses what it ignores.
            raise invalid(
                f"Received unknown parameter: payment_intent_data[{key}]",
                f"payment_intent_data[{key}]",
                "parameter_unknown",
            )
    suffix = raw.get("statement_descriptor_suffix")
    if suffix is not None:
        param = "payment_intent_data[statement_descriptor_suffix]"
        text = str(suffix)
        problem = None
        if not 1 <= len(text) <= MAX_DESCRIPTOR_SUFFIX:
            problem = f"must be at most {MAX_DESCRIPTOR_SUFFIX} characters"
        elif not text.isascii():
            problem = "must contain only Latin characters"
        elif not any(c.isalpha() for c in text):
            problem = "must contain at least one letter"
        elif _DESCRIPTOR_FORBIDDEN & set(text):
            problem = "cannot contain any of the characters < > \\ ' \" *"
        if problem is not None:
            raise invalid(f"Invalid statement_descriptor_suffix: {problem}.", param, "parameter_invalid_string")
    return {k: v for k, v in raw.items() if k == "statement_descriptor_suffix"}


def _checkout_extras(
    store: Store, session: dict[str, Any], items: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """Discounts, shipping options, automatic tax, address collection and invoice creation, then the totals."""
    allow = params.get("allow_promotion_codes")
    if allow is not None and allow not in ("true", "false"):
        raise invalid(f"Invalid boolean: {allow}", "allow_promotion_codes", "parameter_invalid_boolean")
    coupon_id, promotion_code_id = discounts.session_discounts(params.get("discounts"), allow)
    session["allow_promotion_codes"] = True if allow == "true" else None
    rates = shipping.session_options(store, params.get("shipping_options"), session["currency"])
    session["shipping_options"] = [
        {"shipping_amount": shipping.amount_in(rate, session["currency"]), "shipping_rate": rate["id"]}
        for rate in rates
    ]
    if rates:
        shipping.choose(session, rates[0])  # Checkout preselects the first option
    behaviors = [item["price"]["tax_behavior"] for item in items] + [rate["tax_behavior"] for rate in rates]
    enabled = taxes.automatic_tax_param(store, params.get("automatic_tax"), behaviors)
    session["automatic_tax"] = {
        "enabled": enabled,
        "liability": {"account": None, "type": "self"} if enabled else None,
        "provider": "stripe" if enabled else None,
        "status": None,
    }
    collection = params.get("billing_address_collection")
    if collection is not None and collection not in ("auto", "required"):
        raise invalid(
            f"Invalid billing_address_collection: {collection}",
            "billing_address_collection",
            "parameter_invalid_string",
        )
    session["billing_address_collection"] = collection
    session["invoice_creation"] = invoices.invoice_creation(params.get("invoice_creation"))
    totals.recompute(store, session)  # the subtotal the discount checks need
    if coupon_id is not None or promotion_code_id is not None:
        param = "discounts[0][coupon]" if coupon_id is not None else "discounts[0][promotion_code]"
        coupon, promotion_code = discounts.check_redeemable(store, session, coupon_id, promotion_code_id, param)
        apply_discount(store, session, coupon, promotion_code)


def apply_discount(
    store: Store, session: dict[str, Any], coupon: dict[str, Any] | None, promotion_code: dict[str, Any] | None
) -> None:
    """Put a checked coupon (and the code it came from) on the session, or take it off (None), and re-total."""
    session["_coupon"] = copy.deepcopy(coupon)
    session["_promotion_code"] = copy.deepcopy(promotion_code)
    session["discounts"] = (
        [{"coupon": coupon["id"], "promotion_code": promotion_code["id"] if promotion_code else None}]
        if coupon is not None
        else None
    )
    totals.recompute(store, session)


def _check_total(session: dict[str, Any]) -> None:
    """Stripe's minimum charge: the amount due is 0 (fully discounted: no payment is taken) or at least 50."""
    total = session["amount_total"]
    if total == 0 and session["total_details"]["amount_discount"] > 0:
        return
    if total < MINIMUM_AMOUNT:
        raise invalid(
            "The Checkout Session's total amount due must add up to at least 50 in the smallest currency unit.",
            None,
            "amount_too_small",
        )


def _shipping_address_collection(raw: Any) -> dict[str, Any] | None:
    """`shipping_address_collection[allowed_countries][]`: Stripe's two-letter codes, at least one."""
    if raw is None:
        return None
    param = "shipping_address_collection[allowed_countries]"
    if not isinstance(raw, dict) or "allowed_countries" not in raw:
        raise missing_param(param)
    countries = raw["allowed_countries"]
    if isinstance(countries, str):
        countries = [countries]
    if not isinstance(countries, list) or not countries:
        raise invalid("Invalid array", param)
    for i, country in enumerate(countries):
        if country not in SHIPPING_COUNTRIES:
            raise invalid(
                f"Invalid {param}[{i}]: must be one of {', '.join(SHIPPING_COUNTRIES)}",
                f"{param}[{i}]",
                "parameter_invalid_string",
            )
    return {"allowed_countries": list(dict.fromkeys(countries))}


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
            "expires_at",
            "parameter_invalid_integer",
        )
    if expires_at > now + MAX_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at",
            "parameter_invalid_integer",
        )
    return expires_at


def _email(raw: Any, param: str) -> str | None:
    """An email address Stripe would accept, or a 400 `email_invalid` naming `param`.

    Stripe answers "Invalid email address: <value>" (code `email_invalid`); the syntax check is
    email-validator's, syntax only (no DNS lookup, and test domains such as `shop.test` pass).
    """
    if raw is None:
        return None
    try:
        validate_email(str(raw), check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        raise invalid(f"Invalid email address: {raw}", param, "email_invalid") from None
    return str(raw)


def metadata_param(raw: Any) -> dict[str, str]:
    """`metadata` checked as Stripe checks every object's metadata (up to 50 keys of 40, values of 500)."""
    return _metadata(raw)


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
        raise invalid("line_items is required in payment mode.", "line_items", "parameter_missing")
    if not isinstance(raw, list) or not raw:
        raise invalid("Invalid array", "line_items")
    if len(raw) > MAX_LINE_ITEMS:
        raise invalid(
            f"You can only have up to {MAX_LINE_ITEMS} line items in a Checkout Session in payment mode; "
            f"{len(raw)} were given.",
            "line_items",
            "parameter_invalid_array",
        )
    items: list[dict[str, Any]] = []
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
                "This value must be greater than or equal to 1.",
                f"{prefix}[quantity]",
                "parameter_invalid_integer",
            )
        price_data = line.get("price_data")
        if not isinstance(price_data, dict):
            raise invalid(
                "You must specify either `price` or `price_data` for each line item.",
                f"{prefix}[price_data]",
                "parameter_missing",
            )
        currency = price_data.get("currency")
        if currency is None:
            raise missing_param(f"{prefix}[price_data][currency]")
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise invalid(
                f"Invalid currency: {currency}", f"{prefix}[price_data][currency]", "parameter_invalid_string"
            )
        currency = currency.lower()
        if currency not in PRESENTMENT_CURRENCIES:
            # Stripe's own wording for an unknown currency, with the list it supports.
            raise invalid(
                f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                + ", ".join(PRESENTMENT_CURRENCIES),
                f"{prefix}[price_data][currency]",
                "parameter_invalid_string",
            )
        if items and currency != items[0]["currency"]:
            raise invalid("All line items must use the same currency.", f"{prefix}[price_data][currency]")
        if "unit_amount" not in price_data:
            raise missing_param(f"{prefix}[price_data][unit_amount]")
        unit_amount = _int(price_data["unit_amount"], f"{prefix}[price_data][unit_amount]")
        if unit_amount < 0:
            raise invalid(
                "This value must be greater than or equal to 0.",
                f"{prefix}[price_data][unit_amount]",
                "parameter_invalid_integer",
            )
        if unit_amount > MAXIMUM_AMOUNT:
            raise invalid(
                f"This value must be less than or equal to {MAXIMUM_AMOUNT} (amounts have up to eight digits).",
                f"{prefix}[price_data][unit_amount]",
                "amount_too_large",
            )
        product = price_data.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not name:
            raise missing_param(f"{prefix}[price_data][product_data][name]")
        images = _images(product.get("images") if isinstance(product, dict) else None, prefix)
        behavior = taxes.tax_behavior(
            price_data.get("tax_behavior", "unspecified"), f"{prefix}[price_data][tax_behavior]"
        )
        code = product.get("tax_code") if isinstance(product, dict) else None
        if code is not None:
            code = taxes.tax_code(code, f"{prefix}[price_data][product_data][tax_code]")
        amount = unit_amount * quantity
        items.append(
            {
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
                    "tax_behavior": behavior,
                    "type": "one_time",
                    "unit_amount": unit_amount,
                    "unit_amount_decimal": str(unit_amount),
                },
                "quantity": quantity,
                "_images": images,  # the product's pictures, for the hosted page (Stripe keeps them on the Product)
                "_tax_code": code,  # the product's tax code (Stripe keeps it on the Product)
            }
        )
    return items


MAX_PRODUCT_IMAGES = 8  # "A list of up to 8 URLs of images for this product" (the SDK's ProductData.images)
MAX_URL_LENGTH = 2048


def _images(raw: Any, prefix: str) -> list[str]:
    """`price_data[product_data][images]`: up to 8 absolute http(s) URLs; [] when not given."""
    param = f"{prefix}[price_data][product_data][images]"
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(url, str) for url in raw):
        raise invalid("Invalid array", param, "parameter_invalid_array")
    if len(raw) > MAX_PRODUCT_IMAGES:
        raise invalid(
            f"Invalid array: {param} can have at most {MAX_PRODUCT_IMAGES} items, but {len(raw)} were given.",
            param,
            "parameter_invalid_array",
        )
    for index, url in enumerate(raw):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL_LENGTH:
            raise invalid(f"Not a valid URL: {url[:100]}", f"{param}[{index}]", "url_invalid")
    return list(raw)


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
    shown = [{k: v for k, v in item.items() if not k.startswith("_")} for item in store.line_items[session_id]]
    return list_object(shapes.fill(copy.deepcopy(shown)), url, params)


def render(store: Store, obj: dict[str, Any], expand: list[str], version: str) -> dict[str, Any]:
    """`obj` as the API shows it to a caller of API `version`, with `expand[]` applied."""
    view = render_version(store.snapshot(obj), version)
    if view["object"] == "checkout.session" and view["status"] != "open":
        view["url"] = None  # Stripe only shows the hosted page URL while the session is open

    def lookup(table: dict[str, dict[str, Any]], object_id: str | None) -> dict[str, Any] | None:
        return render_version(store.snapshot(table[object_id]), version) if object_id else None

    if "total_details.breakdown" in expand and view["object"] == "checkout.session":
        # TotalDetails.breakdown is includable (`expand[]=total_details.breakdown`): the discounts and taxes.
        expand = [e for e in expand if e != "total_details.breakdown"]
        view["total_details"]["breakdown"] = render_version(
            obj.get("_breakdown") or {"discounts": [], "taxes": []}, version
        )
    resolvers = {
        ("checkout.session", "invoice"): lambda iid: lookup(store.invoices, iid),
        ("checkout.session", "line_items"): lambda _: session_line_items(
            store, view["id"], {"limit": str(EXPANDED_LIST_LIMIT)}
        ),
        ("checkout.session", "payment_intent"): lambda pid: lookup(store.payment_intents, pid),
        ("payment_intent", "latest_charge"): lambda cid: lookup(store.charges, cid),
        ("charge", "payment_intent"): lambda pid: lookup(store.payment_intents, pid),
        ("charge", "refunds"): lambda _: charge_refunds(store, view["id"], {}, version),
        ("refund", "charge"): lambda cid: lookup(store.charges, cid),
        ("refund", "payment_intent"): lambda pid: lookup(store.payment_intents, pid),
        ("charge", "balance_transaction"): lambda tid: transaction(tid),
        ("refund", "balance_transaction"): lambda tid: transaction(tid),
        ("refund", "failure_balance_transaction"): lambda tid: transaction(tid),
        ("balance_transaction", "source"): lambda sid: source_object(sid),
    }

    def transaction(transaction_id: str | None) -> dict[str, Any] | None:
        found = lookup(store.balance_transactions, transaction_id)
        return balance.view(found, store.clock.now()) if found is not None else None

    def source_object(source_id: str | None) -> dict[str, Any] | str | None:
        # A balance transaction's source, by its id's prefix; `disputes` exists once disputes are modelled.
        table = next((t for prefix, t in _SOURCE_TABLES if (source_id or "").startswith(prefix)), None)
        objects = getattr(store, table, None) if table is not None else None
        return lookup(objects, source_id) if objects is not None and source_id in objects else source_id

    if view["object"] == "balance_transaction":
        view = balance.view(view, store.clock.now())
    return apply_expand(view, expand, resolvers)


# Which table holds a balance transaction's source, by id prefix (Stripe's id prefixes).
_SOURCE_TABLES = (("ch_", "charges"), ("py_", "charges"), ("re_", "refunds"), ("pyr_", "refunds"), ("dp_", "disputes"),
                  ("du_", "disputes"))  # fmt: skip


def charge_refunds(store: Store, charge_id: str, params: dict[str, Any], version: str) -> dict[str, Any]:
    """A page of a charge's refunds, newest first (what `expand[]=refunds` shows on a Charge)."""
    refunds = [render_version(r, version) for r in reversed(store.refunds.values()) if r["charge"] == charge_id]
    return list_object(refunds, f"/v1/charges/{charge_id}/refunds", params)


def list_refunds(store: Store, params: dict[str, Any], version: str) -> dict[str, Any]:
    """GET /v1/refunds: newest first, optionally only one charge's or one payment intent's."""
    refunds = list(reversed(store.refunds.values()))
    page_params = {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}
    for name in ("charge", "payment_intent"):
        if name in params:
            refunds = [r for r in refunds if r[name] == params[name]]
    return list_object([render_version(r, version) for r in refunds], "/v1/refunds", page_params)


def expire_session(store: Store, session_id: str, origin: Origin | None = None) -> dict[str, Any]:
    """Expire an open session (API, test control or clock) and emit `checkout.session.expired`."""
    with store.lock:
        session = get_session(store, session_id)
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{session["status"]}".',
                None,
                "checkout_session_not_open",
            )
        session["status"] = "expired"
        session["url"] = None
        store.emit("checkout.session.expired", session, origin)
        return session


def expire_due_sessions(store: Store) -> list[str]:
    """Expire every open session whose `expires_at` the clock has reached."""
    with store.lock:
        now = store.clock.timestamp()
        due = [s["id"] for s in store.sessions.values() if s["status"] == "open" and s["expires_at"] <= now]
        for session_id in due:
            expire_session(store, session_id)
        return due


# ---------------------------------------------------------------- paying


NON_TEST_CARD = Decline(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test card.",
)

_EXPIRY = (
    re.compile(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*"),  # 12/30, 12 / 2030
    re.compile(r"\s*(\d{2})(\d{2}|\d{4})\s*"),
)  # 1230, 122030 (typed without the slash)


def card_digits(number: str) -> str:
    """The card number without spaces or dashes."""
    return re.sub(r"[\s-]", "", number)


# Card brands by number prefix, in Stripe's names (Charge.payment_method_details.card.brand: amex, diners,
# discover, eftpos_au, jcb, link, mastercard, unionpay, visa, unknown). Longest prefixes first.
_BRANDS: tuple[tuple[str, str], ...] = (
    ("6011", "discover"),
    ("65", "discover"),
    ("34", "amex"),
    ("37", "amex"),
    ("36", "diners"),
    ("30", "diners"),
    ("38", "diners"),
    ("35", "jcb"),
    ("62", "unionpay"),
    ("2", "mastercard"),
    ("5", "mastercard"),
    ("4", "visa"),
)


def card_brand(digits: str) -> str:
    """Stripe's brand name for a card number (e.g. "visa"), "unknown" when no prefix matches."""
    return next((brand for prefix, brand in _BRANDS if digits.startswith(prefix)), "unknown")


def card_details(digits: str, expiry: str) -> dict[str, Any]:
    """`payment_method_details` of a charge paid by this card, as Stripe shows a card payment in Checkout
    (type "card", the card's brand, last 4, expiry, funding and checks; the SDK's
    Charge.PaymentMethodDetails.Card). The full number is never stored."""
    match = next((m for m in (p.fullmatch(expiry) for p in _EXPIRY) if m), None)
    month, year = (int(match.group(1)), int(match.group(2)) % 100 + 2000) if match else (12, 2034)
    brand = card_brand(digits)
    return {
        "card": {
            "amount_authorized": None,
            "authorization_code": None,
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "exp_month": month,
            "exp_year": year,
            "extended_authorization": None,
            "fingerprint": new_id("", 16),
            "funding": "credit",
            "incremental_authorization": None,
            "installments": None,
            "last4": digits[-4:],
            "mandate": None,
            "multicapture": None,
            "network": brand if brand != "unknown" else None,
            "network_token": None,
            "network_transaction_id": new_id("", 15),
            "overcapture": None,
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": None,
        },
        "type": "card",
    }


def bank_details() -> dict[str, Any]:
    """`payment_method_details` of a delayed payment (the test bank account the hosted page offers)."""
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": "checking",
            "bank_name": "STRIPE TEST BANK",
            "fingerprint": new_id("", 16),
            "last4": "6789",
            "mandate": None,
            "payment_reference": None,
            "routing_number": "110000000",
        },
    }


def check_card(number: str, expiry: str, cvc: str, now: float) -> tuple[int, str, str] | None:
    """Validate card fields as Checkout does before confirming; (400, code, message) when incomplete."""
    import datetime as dt

    digits = card_digits(number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn(digits):
        return 400, "incorrect_number", "Your card number is incorrect."
    match = next((m for m in (p.fullmatch(expiry) for p in _EXPIRY) if m), None)
    if not match or not 1 <= int(match.group(1)) <= 12:
        return 400, "invalid_expiry_month", "Your card's expiration date is incomplete."
    year = int(match.group(2)) % 100 + 2000
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    if (year, int(match.group(1))) < (today.year, today.month):
        return 400, "invalid_expiry_year", "Your card's expiration year is in the past."
    if not re.fullmatch(r"\d{3,4}", cvc.strip()):
        return 400, "incomplete_cvc", "Your card's security code is incomplete."
    return None


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


SHIPPING_FIELDS = ("name", "line1", "line2", "city", "state", "postal_code", "country")
_REQUIRED_SHIPPING = {
    "name": "Enter the name to ship to.",
    "line1": "Enter the street address.",
    "city": "Enter the city.",
    "postal_code": "Enter the postal code.",
}


def check_shipping(
    session: dict[str, Any], shipping: dict[str, str] | None
) -> tuple[tuple[int, str, str] | None, dict[str, Any] | None]:
    """Validate a shipping address against the session's allowed countries.

    Returns (problem, shipping_details): problem is (400, code, message); shipping_details is Stripe's
    `{"name", "address": {...}}`, or None when the session collects no address.
    """
    collection = session.get("shipping_address_collection")
    if not collection:
        return None, None
    shipping = {k: (v or "").strip() for k, v in (shipping or {}).items()}
    for name, message in _REQUIRED_SHIPPING.items():
        if not shipping.get(name):
            return (400, "shipping_address_invalid", message), None
    country = shipping.get("country", "").upper()
    if country not in collection["allowed_countries"]:
        return (400, "shipping_address_invalid", "We don't ship to this country."), None
    address = {k: shipping.get(k) or None for k in ("city", "line1", "line2", "postal_code", "state")}
    address["country"] = country
    return None, {"address": dict(sorted(address.items())), "name": shipping["name"]}


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
    shipping: dict[str, str] | None = None,
    billing: dict[str, str] | None = None,
    shipping_rate: str | None = None,
) -> PaymentResult:
    """Pay an open session as the hosted page would; `delayed` is None, "succeed" or "fail".

    `billing` is the billing address the page collects for tax (country, state, postal_code, line1, city,
    name); `shipping_rate` the shipping option chosen (one of the session's). Incomplete fields answer 400 and
    change nothing (Checkout checks them in the browser). A declined card confirms the session's PaymentIntent,
    which fails (402): the session stays open and names the intent. A session whose amount due is 0 (fully
    discounted) completes with `payment_status: no_payment_required` and no PaymentIntent, as Checkout does.
    """
    with store.lock:
        session = open_session(store, session_id)
        if delayed not in (None, "succeed", "fail"):
            raise EmulatorStateError("delayed must be None, 'succeed' or 'fail'")
        problem, shipping_details = check_shipping(session, shipping)
        if problem:
            return PaymentResult(*problem)
        problem = _confirm_amounts(store, session, shipping_details, billing, shipping_rate)
        if problem:
            return PaymentResult(*problem)
        free = session["amount_total"] == 0
        digits = None
        if delayed is None and not free:
            problem = check_card(card, expiry, cvc, store.clock.now())
            if problem:
                return PaymentResult(*problem)
            digits = card_digits(card)
        intent = None
        if not free:
            intent = _intent_for(store, session, ["card"] if delayed is None else ["us_bank_account"])
            # What paid, copied onto every charge of this confirmation (internal: never rendered on the intent).
            intent["_payment_method_details"] = card_details(digits, expiry) if digits is not None else bank_details()
            decline = TEST_CARDS.get(digits, NON_TEST_CARD) if digits is not None else None
            if decline is not None:
                _decline(store, session, intent, digits, decline)
                outcome = decline.code
                if decline.code == "card_declined" and decline.decline_code != "generic_decline":
                    outcome = decline.decline_code  # e.g. insufficient_funds
                return PaymentResult(402, outcome, decline.message)
        _complete(session, shipping_details, billing)
        discounts.redeem(store, session)
        if intent is None:
            session["payment_status"] = "no_payment_required"
            _make_invoice(store, session)
        elif delayed is None:
            _succeed_intent(store, session, intent, digits)
            session["payment_status"] = "paid"
            _make_invoice(store, session)
        else:
            intent["status"] = "processing"
            due = store.clock.now() + async_delay if async_delay is not None else None
            store.async_payments[session_id] = AsyncPayment(due, delayed == "succeed")
            store.emit("payment_intent.processing", intent, None)
        store.emit("checkout.session.completed", session, None)
        if delayed is None and intent is not None:  # a fully discounted session has no payment to dispute
            # Stripe disputes the test cards' charges "only" after they succeed: after the session completed.
            disputes.after_payment(store, store.charges[intent["latest_charge"]])
        redirect = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        return PaymentResult(303, "processing" if delayed is not None and intent else "paid", None, redirect)


def _complete(session: dict[str, Any], shipping_details: dict[str, Any] | None, billing: dict[str, str] | None) -> None:
    """Mark the session complete with what the page collected (shipping details, customer details)."""
    if shipping_details is not None:
        session["collected_information"] = {
            "business_name": None,
            "individual_name": None,
            "shipping_details": shipping_details,
        }
    session["status"] = "complete"
    session["url"] = None  # Stripe shows the hosted page URL only while the session is open
    # Checkout fills the customer's name and address from what the page collected: the billing address when it
    # asked for one, else the shipping form.
    shipped = shipping_details or {}
    billed = form_address(billing) if billing and billing.get("country") else None
    session["customer_details"] = {
        "address": billed or shipped.get("address"),
        "business_name": None,
        "email": session["customer_email"],
        "individual_name": None,
        "name": (billing or {}).get("name") or shipped.get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def form_address(raw: dict[str, str]) -> dict[str, Any]:
    """An address as Stripe shows it (city, country, line1, line2, postal_code, state; blanks null) from form fields."""
    address = {k: (raw.get(k) or "").strip() or None for k in ("city", "line1", "line2", "postal_code", "state")}
    address["country"] = (raw.get("country") or "").strip().upper() or None
    return dict(sorted(address.items()))


def needs_billing_address(session: dict[str, Any]) -> bool:
    """Whether the page asks for a billing address: `billing_address_collection=required`, or automatic tax
    without a shipping address to locate the buyer ("Enabling this parameter causes Checkout to collect any
    billing address information necessary for tax calculation", SessionCreateParamsAutomaticTax.enabled)."""
    if session.get("billing_address_collection") == "required":
        return True
    return bool(session["automatic_tax"]["enabled"]) and not session.get("shipping_address_collection")


def _confirm_amounts(
    store: Store,
    session: dict[str, Any],
    shipping_details: dict[str, Any] | None,
    billing: dict[str, str] | None,
    shipping_rate: str | None,
) -> tuple[int, str, str] | None:
    """Apply the page's choices (shipping option, tax location) and re-check the discount; a problem stops."""
    if shipping_rate:
        if shipping_rate not in {o["shipping_rate"] for o in session["shipping_options"]}:
            return 400, "shipping_rate_invalid", "Choose one of the shipping options offered."
        shipping.choose(session, store.shipping_rates[shipping_rate])
    if needs_billing_address(session):
        billed = form_address(billing or {})
        if not billed["country"] or not billed["postal_code"]:
            return 400, "billing_address_invalid", "Enter your billing address (country and postal code)."
        if billed["country"] in ("US", "CA") and not billed["state"]:
            return 400, "billing_address_invalid", "Enter your state or province."
    if session["automatic_tax"]["enabled"]:
        located = shipping_details["address"] if shipping_details else form_address(billing or {})
        session["_tax_address"] = located
    coupon = session.get("_coupon")
    if coupon is not None:
        promotion_code = session.get("_promotion_code")
        try:
            discounts.check_redeemable(
                store, session, coupon["id"], promotion_code["id"] if promotion_code else None, None
            )
        except discounts.DiscountRefused as refused:
            apply_discount(store, session, None, None)  # the code no longer applies: the page shows the new total
            return 400, refused.code or "promotion_code_invalid", refused.message
    totals.recompute(store, session)
    if session["automatic_tax"]["enabled"] and session["automatic_tax"]["status"] == "requires_location_inputs":
        return 400, "tax_location_invalid", "Enter a complete address so tax can be calculated."
    return None


def _make_invoice(store: Store, session: dict[str, Any]) -> None:
    creation = session.get("invoice_creation")
    if creation and creation["enabled"]:
        invoices.create_paid_invoice(store, session, store.business_name, session["_public_url"])


def _intent_for(store: Store, session: dict[str, Any], method_types: list[str]) -> dict[str, Any]:
    """The session's PaymentIntent, created at the first confirmation (API 2022-08-01 and later)."""
    if session["payment_intent"] is not None:
        intent = store.payment_intents[session["payment_intent"]]
        # The amount may have changed since the last attempt (another shipping option, tax, a code removed).
        intent.update(payment_method_types=method_types, last_payment_error=None, amount=session["amount_total"])
        return intent
    intent_id = new_id("pi_")
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": session["amount_total"],
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": store.clock.timestamp(),
        "currency": session["currency"],
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "payment_method": None,
        "payment_method_types": method_types,
        "statement_descriptor_suffix": session.get("_payment_intent_data", {}).get("statement_descriptor_suffix"),
        "status": "requires_payment_method",
    }
    store.payment_intents[intent_id] = intent
    session["payment_intent"] = intent_id
    store.emit("payment_intent.created", intent, None)
    return intent


def _new_charge(
    store: Store, session: dict[str, Any], intent: dict[str, Any], card: str | None, decline: Decline | None
) -> dict[str, Any]:
    succeeded = decline is None
    charge = {
        "id": new_id("ch_"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "balance_transaction": None,  # set below for a successful charge (balance.record_charge)
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": session["customer_email"],
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "captured": succeeded,
        "created": store.clock.timestamp(),
        "currency": intent["currency"],
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "livemode": False,
        "metadata": {},
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": None,  # no PaymentMethod objects here (Stripe's would be a pm_ id)
        "payment_method_details": copy.deepcopy(intent.get("_payment_method_details")),
        "receipt_email": None,
        "refunded": False,
        "statement_descriptor_suffix": intent.get("statement_descriptor_suffix"),
        "status": "succeeded" if succeeded else "failed",
        "_card": card,  # which test card paid: decides how its refunds behave
    }
    if succeeded:
        charge["balance_transaction"] = balance.record_charge(store, charge)["id"]
    store.charges[charge["id"]] = charge
    intent["latest_charge"] = charge["id"]
    return charge


def _decline(store: Store, session: dict[str, Any], intent: dict[str, Any], card: str | None, decline: Decline) -> None:
    charge = _new_charge(store, session, intent, card, decline)
    intent.update(
        status="requires_payment_method",
        last_payment_error={
            "charge": charge["id"],
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "message": decline.message,
            "type": "card_error",
        },
    )
    store.emit("charge.failed", charge, None)
    store.emit("payment_intent.payment_failed", intent, None)


def _succeed_intent(store: Store, session: dict[str, Any], intent: dict[str, Any], card: str | None) -> None:
    charge = _new_charge(store, session, intent, card, None)
    intent.update(status="succeeded", amount_received=intent["amount"])
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
            _succeed_intent(store, session, intent, None)
            session["payment_status"] = "paid"
            _make_invoice(store, session)
            store.emit("checkout.session.async_payment_succeeded", session, None)
        else:
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "code": "payment_method_not_available",
                    "type": "card_error",
                    "message": "The payment failed.",
                },
            )
            store.emit("payment_intent.payment_failed", intent, None)
            store.emit("checkout.session.async_payment_failed", session, None)
        return session


def complete_due_async(store: Store) -> list[str]:
    """Complete every delayed payment whose scheduled time has come."""
    with store.lock:
        now = store.clock.now()
        due = [sid for sid, p in store.async_payments.items() if p.due_at is not None and p.due_at <= now]
        for session_id in due:
            complete_async(store, session_id)
        return due


# ---------------------------------------------------------------- refunds


def create_refund(store: Store, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """Refund all or part of what remains on a charge; emit refund and charge events.

    A refund counts against the charge while `pending` or `succeeded`. Refunds of the test cards
    4000 0000 0000 7726 (starts pending) and 5126 (succeeds, later fails) change status
    REFUND_SETTLE_SECONDS later on the service clock (docs.stripe.com/testing, "Refunds").
    """
    allowed = {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    with store.lock:
        charge = _refundable_charge(store, params)
        disputes.refuse_refund_if_disputed(store, charge)
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", None, "charge_already_refunded")
        amount = remaining
        if "amount" in params:
            amount = _int(params["amount"], "amount")
            if amount < 1:
                raise invalid("This value must be greater than or equal to 1.", "amount", "parameter_invalid_integer")
            if amount > remaining:
                raise invalid(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                    "amount",
                    "amount_too_large",
                )
        reason = params.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid(f"Invalid reason: {reason}", "reason", "parameter_invalid_string")
        card = charge.get("_card")
        refund = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,  # set below (balance.record_refund)
            "charge": charge["id"],
            "created": store.clock.timestamp(),
            "currency": charge["currency"],
            "metadata": _metadata(params.get("metadata", {})),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if card == REFUND_PENDING_CARD else "succeeded",
            "transfer_reversal": None,
        }
        refund["balance_transaction"] = balance.record_refund(store, refund)["id"]
        store.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        due = store.clock.now() + REFUND_SETTLE_SECONDS
        if card == REFUND_PENDING_CARD:
            store.refund_transitions[refund["id"]] = RefundTransition(due, "succeeded")
        elif card == REFUND_FAILS_LATER_CARD:
            store.refund_transitions[refund["id"]] = RefundTransition(due, "failed", "expired_or_canceled_card")
        store.emit("refund.created", refund, origin, since_version=CARD_REFUND_EVENTS)
        store.emit("charge.refunded", charge, origin)
        disputes.after_refund(store, charge)
        return refund


def settle_refund(store: Store, refund_id: str) -> dict[str, Any]:
    """Apply a refund's scheduled status change now and announce it; returns the refund.

    Events: `charge.refund.updated` (every version), and from 2024-10-28.acacia on `refund.updated` plus
    `refund.failed` for a failure. A failed refund no longer counts in the charge's `amount_refunded`.
    """
    with store.lock:
        transition = store.refund_transitions.pop(refund_id, None)
        if transition is None:
            raise EmulatorStateError(f"No status change is scheduled for refund {refund_id}")
        refund = store.refunds[refund_id]
        previous: dict[str, Any] = {"status": refund["status"]}
        refund["status"] = transition.status
        if transition.status == "failed":
            previous.update(failure_balance_transaction=None, failure_reason=None)
            refund["failure_balance_transaction"] = balance.record_refund_failure(store, refund)["id"]
            refund["failure_reason"] = transition.failure_reason
            charge = store.charges[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        store.emit("charge.refund.updated", refund, None, previous_attributes=previous)
        store.emit("refund.updated", refund, None, since_version=CARD_REFUND_EVENTS, previous_attributes=previous)
        if transition.status == "failed":
            store.emit("refund.failed", refund, None, since_version=CARD_REFUND_EVENTS)
        return refund


def settle_due_refunds(store: Store) -> list[str]:
    """Apply every scheduled refund status change whose time has come on the service clock."""
    with store.lock:
        now = store.clock.now()
        due = [rid for rid, t in store.refund_transitions.items() if t.due_at <= now]
        for refund_id in due:
            settle_refund(store, refund_id)
        return due


def _refundable_charge(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    if "charge" in params:
        charge = store.charges.get(params["charge"])
        if charge is None:
            raise no_such("charge", params["charge"], "charge")
        if charge["status"] != "succeeded":
            raise invalid(
                f"Charge {charge['id']} did not succeed, so there is nothing to refund.",
                "charge",
                "charge_not_refundable",
            )
        return charge
    if "payment_intent" in params:
        intent = store.payment_intents.get(params["payment_intent"])
        if intent is None:
            raise no_such("payment_intent", params["payment_intent"], "payment_intent")
        if intent["latest_charge"] is None or intent["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "payment_intent",
                "charge_not_refundable",
            )
        return store.charges[intent["latest_charge"]]
    raise StripeAPIError(
        400, "One of `charge` or `payment_intent` is required.", code="parameter_missing", param="payment_intent"
    )
