"""Shipping rates (`/v1/shipping_rates`) and a Checkout Session's `shipping_options`.

Sources: the SDK's `ShippingRateCreateParams` and `SessionCreateParamsShippingOption` (`shipping_rate` id or
inline `shipping_rate_data`, which creates a ShippingRate as the API does), `Session.shipping_options`
(`shipping_amount`, `shipping_rate`) and `Session.shipping_cost` (`amount_subtotal`, `amount_tax`,
`amount_total`, `shipping_rate`); Checkout "Charge for shipping": up to 5 shipping options, the first is
preselected, the shopper may pick another on the page; a rate must be in the session's currency (or have a
`currency_options` entry for it) and must be active.
"""

from __future__ import annotations

from typing import Any

from . import taxes
from .errors import invalid, missing_param, no_such
from .objects import PRESENTMENT_CURRENCIES, check_amount, list_object, new_id
from .store import Store

MAX_SHIPPING_OPTIONS = 5  # SessionCreateParams.shipping_options: "The shipping rate options to apply" (max 5)
_UNITS = ("business_day", "day", "hour", "month", "week")
_RATE_PARAMS = {"display_name", "type", "fixed_amount", "delivery_estimate", "tax_behavior", "tax_code", "metadata"}


def _int(value: Any, param: str, minimum: int) -> int:
    if not (isinstance(value, str) and value.lstrip("-").isdigit()):
        raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")
    if int(value) < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param, "parameter_invalid_integer")
    return int(value)


def _estimate(raw: Any, prefix: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid object", prefix)
    estimate: dict[str, Any] = {"maximum": None, "minimum": None}
    for bound in ("minimum", "maximum"):
        if bound not in raw:
            continue
        value = raw[bound]
        param = f"{prefix}[{bound}]"
        if not isinstance(value, dict) or "unit" not in value or "value" not in value:
            raise missing_param(
                f"{param}[unit]" if isinstance(value, dict) and "unit" not in value else f"{param}[value]"
            )
        if value["unit"] not in _UNITS:
            raise invalid(f"Invalid {param}[unit]: must be one of {', '.join(_UNITS)}", f"{param}[unit]")
        estimate[bound] = {"unit": value["unit"], "value": _int(value["value"], f"{param}[value]", 1)}
    return estimate


def _currency_options(raw: Any, param: str) -> dict[str, dict[str, Any]]:
    """`fixed_amount[currency_options][<currency>]` = {amount, tax_behavior}: the rate's amount in other
    currencies (ShippingRateCreateParamsFixedAmount.currency_options: "Shipping rates defined in each available
    currency option. Each key must be a three-letter ISO currency code and a supported currency")."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", param)
    options: dict[str, dict[str, Any]] = {}
    for key, option in raw.items():
        code = str(key).lower()
        if code not in PRESENTMENT_CURRENCIES:
            raise invalid(f"Invalid currency: {key}", f"{param}[{key}]")
        if not isinstance(option, dict):
            raise invalid("Invalid object", f"{param}[{key}]")
        for name in option:
            if name not in ("amount", "tax_behavior"):
                raise invalid(f"Received unknown parameter: {param}[{key}][{name}]", f"{param}[{key}][{name}]",
                              "parameter_unknown")  # fmt: skip
        if "amount" not in option:
            raise missing_param(f"{param}[{key}][amount]")
        behavior = option.get("tax_behavior", "unspecified")
        options[code] = {
            "amount": check_amount(_int(option["amount"], f"{param}[{key}][amount]", 0), f"{param}[{key}][amount]"),
            "tax_behavior": taxes.tax_behavior(behavior, f"{param}[{key}][tax_behavior]"),
        }
    return options


def amount_in(rate: dict[str, Any], currency: str) -> int | None:
    """The rate's amount in `currency` (its own, or a `currency_options` entry), None when it has none."""
    fixed = rate["fixed_amount"]
    if fixed["currency"] == currency:
        return int(fixed["amount"])
    option = (fixed.get("currency_options") or {}).get(currency)
    return int(option["amount"]) if option is not None else None


def build_rate(store: Store, params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A ShippingRate from create params (POST /v1/shipping_rates or inline `shipping_rate_data`); not stored."""

    def p(name: str) -> str:
        return f"{prefix}[{name}]" if prefix else name

    for name in params:
        if name not in _RATE_PARAMS | ({"expand"} if not prefix else set()):
            raise invalid(f"Received unknown parameter: {p(name)}", p(name), "parameter_unknown")
    if not params.get("display_name"):
        raise missing_param(p("display_name"))
    kind = params.get("type", "fixed_amount")
    if kind != "fixed_amount":
        raise invalid(f"Invalid type: {kind}", p("type"), "parameter_invalid_string")
    fixed = params.get("fixed_amount")
    if not isinstance(fixed, dict):
        raise missing_param(p("fixed_amount"))
    if "amount" not in fixed:
        raise missing_param(p("fixed_amount") + "[amount]")
    if "currency" not in fixed:
        raise missing_param(p("fixed_amount") + "[currency]")
    currency = str(fixed["currency"]).lower()
    if currency not in PRESENTMENT_CURRENCIES:
        raise invalid(f"Invalid currency: {fixed['currency']}", p("fixed_amount") + "[currency]")
    options = _currency_options(fixed.get("currency_options"), p("fixed_amount") + "[currency_options]")
    behavior = taxes.tax_behavior(params.get("tax_behavior", "unspecified"), p("tax_behavior"))
    code = taxes.tax_code(params["tax_code"], p("tax_code")) if "tax_code" in params else None
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("Invalid object", p("metadata"))
    return {
        "id": new_id("shr_"),
        "object": "shipping_rate",
        "active": True,
        "created": store.clock.timestamp(),
        "delivery_estimate": _estimate(params.get("delivery_estimate"), p("delivery_estimate")),
        "display_name": str(params["display_name"]),
        "fixed_amount": {
            "amount": check_amount(
                _int(fixed["amount"], p("fixed_amount") + "[amount]", 0), p("fixed_amount") + "[amount]"
            ),
            "currency": currency,
            **({"currency_options": options} if options else {}),
        },
        "livemode": False,
        "metadata": dict(metadata),
        "tax_behavior": behavior,
        "tax_code": code,
        "type": "fixed_amount",
    }


def create_rate(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/shipping_rates"""
    with store.lock:
        rate = build_rate(store, params)
        store.shipping_rates[rate["id"]] = rate
        return rate


def get_rate(store: Store, rate_id: str) -> dict[str, Any]:
    """The stored shipping rate or a 404."""
    rate = store.shipping_rates.get(rate_id)
    if rate is None:
        raise no_such("shipping_rate", rate_id)
    return rate


def update_rate(store: Store, rate_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/shipping_rates/{id}: `active`, `metadata`, `tax_behavior` (ShippingRateUpdateParams)."""
    for name in params:
        if name not in ("active", "metadata", "tax_behavior", "expand"):
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    with store.lock:
        rate = get_rate(store, rate_id)
        if "active" in params:
            if params["active"] not in ("true", "false"):
                raise invalid(f"Invalid boolean: {params['active']}", "active", "parameter_invalid_boolean")
            rate["active"] = params["active"] == "true"
        if "metadata" in params and isinstance(params["metadata"], dict):
            rate["metadata"] = {**rate["metadata"], **params["metadata"]}
        if "tax_behavior" in params:
            rate["tax_behavior"] = taxes.tax_behavior(params["tax_behavior"], "tax_behavior")
        return rate


def list_rates(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/shipping_rates, newest first; filters `active` and `currency`."""
    rates = list(reversed(store.shipping_rates.values()))
    if "active" in params:
        rates = [r for r in rates if r["active"] == (params["active"] == "true")]
    if "currency" in params:
        rates = [r for r in rates if amount_in(r, str(params["currency"]).lower()) is not None]
    page = {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}
    return list_object(rates, "/v1/shipping_rates", page)


def session_options(store: Store, raw: Any, currency: str) -> list[dict[str, Any]]:
    """`shipping_options[]` -> the rates they name or create, each checked against the session's currency."""
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list):
        raise invalid("Invalid array", "shipping_options")
    if len(raw) > MAX_SHIPPING_OPTIONS:
        raise invalid(
            f"You can specify up to {MAX_SHIPPING_OPTIONS} shipping options; {len(raw)} were given.",
            "shipping_options",
            "parameter_invalid_array",
        )
    rates = []
    for i, option in enumerate(raw):
        prefix = f"shipping_options[{i}]"
        if not isinstance(option, dict):
            raise invalid("Invalid object", prefix)
        if ("shipping_rate" in option) == ("shipping_rate_data" in option):
            raise invalid(
                "You must specify exactly one of shipping_rate or shipping_rate_data for each shipping option.",
                prefix,
            )
        if "shipping_rate" in option:
            rate = store.shipping_rates.get(option["shipping_rate"])
            if rate is None:
                raise invalid(
                    f"No such shipping rate: '{option['shipping_rate']}'",
                    f"{prefix}[shipping_rate]",
                    "resource_missing",
                )
            if not rate["active"]:
                raise invalid(
                    f"The shipping rate {rate['id']} is inactive and cannot be used.", f"{prefix}[shipping_rate]"
                )
            param = f"{prefix}[shipping_rate]"
        else:
            data = option["shipping_rate_data"]
            if not isinstance(data, dict):
                raise invalid("Invalid object", f"{prefix}[shipping_rate_data]")
            rate = build_rate(store, data, f"{prefix}[shipping_rate_data]")
            store.shipping_rates[rate["id"]] = rate  # inline data creates a ShippingRate, as at Stripe
            param = f"{prefix}[shipping_rate_data][fixed_amount][currency]"
        if amount_in(rate, currency) is None:
            raise invalid(
                f"The shipping rate's currency ({rate['fixed_amount']['currency']}) must match the currency of the "
                f"line items ({currency}).",
                param,
            )
        rates.append(rate)
    return rates


def choose(session: dict[str, Any], rate: dict[str, Any]) -> None:
    """Make `rate` the session's chosen shipping option (totals.recompute turns it into `shipping_cost`)."""
    amount = amount_in(rate, session["currency"])
    option = (rate["fixed_amount"].get("currency_options") or {}).get(session["currency"])
    session["_shipping"] = {
        "shipping_rate": rate["id"],
        "shipping_amount": rate["fixed_amount"]["amount"] if amount is None else amount,
        "tax_behavior": option["tax_behavior"] if option is not None and option["tax_behavior"] != "unspecified"
        else rate["tax_behavior"],
    }  # fmt: skip
