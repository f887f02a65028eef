"""Coupons (`/v1/coupons`), promotion codes (`/v1/promotion_codes`) and how a Checkout Session redeems them.

Sources (docs.stripe.com and the SDK's generated params, `stripe/params/_coupon_create_params.py`,
`_promotion_code_create_params.py`, `_promotion_code_list_params.py`):
- a coupon is `percent_off` (a float > 0 and <= 100) or `amount_off` with its `currency`, never both;
  `duration` once/forever/repeating (repeating needs `duration_in_months`); `max_redemptions` and `redeem_by`
  limit it "across every application" ("Add discounts", Checkout docs); a coupon past either is `valid: false`.
- a promotion code points at one coupon (`promotion[type]=coupon`, `promotion[coupon]`, API 2025-09-30.clover;
  `coupon` before it), is `active` unless switched off, may expire (`expires_at`), has its own `max_redemptions`
  and `restrictions` (`minimum_amount` with `minimum_amount_currency`, `first_time_transaction`); its `code` is
  unique among active codes regardless of case, and lists filter by `code` case-insensitively.
- "Checkout Sessions supports up to one coupon or promotion code"; `allow_promotion_codes` and `discounts` are
  exclusive. A redemption counts when the session completes (`times_redeemed`).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .errors import StripeAPIError, invalid, missing_param, no_such
from .objects import PRESENTMENT_CURRENCIES, check_amount, list_object, new_id
from .store import Origin, Store

MAX_REDEEM_BY_YEARS = 5  # CouponCreateParams.redeem_by: "cannot be set to more than 5 years in the future"
_COUPON_PARAMS = {
    "id",
    "amount_off",
    "currency",
    "percent_off",
    "duration",
    "duration_in_months",
    "max_redemptions",
    "redeem_by",
    "name",
    "metadata",
    "expand",
}
_PROMOTION_PARAMS = {
    "code",
    "promotion",
    "coupon",
    "active",
    "expires_at",
    "max_redemptions",
    "metadata",
    "restrictions",
    "customer",
    "expand",
}
# PromotionCodeCreateParams.code: "Valid characters are lower case letters (a-z), upper case letters (A-Z), digits
# (0-9), and dashes (-)."
_CODE = re.compile(r"[A-Za-z0-9-]{1,500}")


def _unknown(params: dict[str, Any], allowed: set[str], unsupported: dict[str, str] | None = None) -> None:
    for name in params:
        if unsupported and name in unsupported:
            raise invalid(unsupported[name], name, "parameter_unknown")
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def _int(value: Any, param: str, minimum: int | None = None) -> int:
    if not (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
        raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param, "parameter_invalid_integer")
    return number


def _bool(value: Any, param: str) -> bool:
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param, "parameter_invalid_boolean")
    return bool(value == "true")


def _metadata(value: Any) -> dict[str, str]:
    if value in ("", None):
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", "metadata")
    return {str(k): str(v) for k, v in value.items()}


def _currency(value: Any, param: str) -> str:
    currency = str(value).lower()
    if currency not in PRESENTMENT_CURRENCIES:
        raise invalid(f"Invalid currency: {value}", param, "parameter_invalid_string")
    return currency


# ---------------------------------------------------------------- coupons


def create_coupon(store: Store, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """POST /v1/coupons: validate like Stripe, store, emit `coupon.created`."""
    _unknown(
        params,
        _COUPON_PARAMS,
        {
            "applies_to": "The local Stripe service does not support `applies_to` (its line items carry no Product).",
            "currency_options": "The local Stripe service does not support `currency_options`.",
        },
    )
    percent = params.get("percent_off")
    amount = params.get("amount_off")
    if percent is None and amount is None:
        raise invalid("You must pass either `percent_off` or `amount_off`.", "percent_off", "parameter_missing")
    if percent is not None and amount is not None:
        raise invalid("You may only specify one of these parameters: amount_off, percent_off.", "amount_off")
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    if percent is not None:
        try:
            percent_off = float(percent)
        except ValueError:
            raise invalid(f"Invalid decimal: {percent}", "percent_off", "parameter_invalid_decimal") from None
        if not 0 < percent_off <= 100:
            raise invalid(
                "percent_off must be greater than 0 and less than or equal to 100.",
                "percent_off",
                "parameter_invalid_decimal",
            )
        if "currency" in params:
            currency = _currency(params["currency"], "currency")
    else:
        amount_off = check_amount(_int(amount, "amount_off", 1), "amount_off")
        if "currency" not in params:
            raise invalid("You must pass currency when passing amount_off.", "currency", "parameter_missing")
        currency = _currency(params["currency"], "currency")
    duration = params.get("duration", "once")
    if duration not in ("once", "forever", "repeating"):
        raise invalid(f"Invalid duration: {duration}", "duration", "parameter_invalid_string")
    months = None
    if duration == "repeating":
        if "duration_in_months" not in params:
            raise missing_param("duration_in_months")
        months = _int(params["duration_in_months"], "duration_in_months", 1)
    elif "duration_in_months" in params:
        raise invalid("duration_in_months is only allowed when duration is `repeating`.", "duration_in_months")
    now = store.clock.timestamp()
    redeem_by = None
    if "redeem_by" in params:
        redeem_by = _int(params["redeem_by"], "redeem_by")
        if redeem_by <= now:
            raise invalid("Date must be in the future.", "redeem_by", "parameter_invalid_integer")
        if redeem_by > now + MAX_REDEEM_BY_YEARS * 366 * 86400:
            raise invalid("redeem_by cannot be more than 5 years in the future.", "redeem_by")
    max_redemptions = _int(params["max_redemptions"], "max_redemptions", 1) if "max_redemptions" in params else None
    coupon_id = str(params.get("id") or new_id("", 8).upper())
    with store.lock:
        if coupon_id in store.coupons:
            raise invalid("Coupon already exists.", "id", "resource_already_exists")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": amount_off,
            "created": now,
            "currency": currency,
            "duration": duration,
            "duration_in_months": months,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": _metadata(params.get("metadata")),
            "name": params.get("name") or None,
            "percent_off": percent_off,
            "redeem_by": redeem_by,
            "times_redeemed": 0,
            "valid": True,
        }
        store.coupons[coupon_id] = coupon
        store.emit("coupon.created", coupon, origin)
        return coupon


def refresh_coupon(store: Store, coupon: dict[str, Any]) -> dict[str, Any]:
    """Set `valid` from the coupon's limits: past `redeem_by` or at `max_redemptions` it can no longer apply."""
    expired = coupon["redeem_by"] is not None and coupon["redeem_by"] <= store.clock.timestamp()
    used_up = coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]
    coupon["valid"] = not (expired or used_up)
    return coupon


def get_coupon(store: Store, coupon_id: str, param: str = "id") -> dict[str, Any]:
    """The stored coupon (its `valid` refreshed) or a 404."""
    coupon = store.coupons.get(coupon_id)
    if coupon is None:
        raise no_such("coupon", coupon_id, param)
    return refresh_coupon(store, coupon)


def update_coupon(store: Store, coupon_id: str, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """POST /v1/coupons/{id}: only `name` and `metadata` change (CouponUpdateParams)."""
    _unknown(params, {"name", "metadata", "expand"})
    with store.lock:
        coupon = get_coupon(store, coupon_id)
        previous: dict[str, Any] = {k: coupon[k] for k in ("name", "metadata") if k in params}
        if "name" in params:
            coupon["name"] = params["name"] or None
        if "metadata" in params:
            coupon["metadata"] = {**coupon["metadata"], **_metadata(params["metadata"])}
        store.emit("coupon.updated", coupon, origin, previous_attributes=previous)
        return coupon


def delete_coupon(store: Store, coupon_id: str, origin: Origin) -> dict[str, Any]:
    """DELETE /v1/coupons/{id}: the deleted stub; its promotion codes can no longer be redeemed."""
    with store.lock:
        coupon = get_coupon(store, coupon_id)
        del store.coupons[coupon_id]
        store.emit("coupon.deleted", coupon, origin)
        return {"id": coupon_id, "object": "coupon", "deleted": True}


def list_coupons(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/coupons, newest first."""
    coupons = [refresh_coupon(store, c) for c in reversed(store.coupons.values())]
    return list_object(coupons, "/v1/coupons", _page(params, set()))


def _page(params: dict[str, Any], filters: set[str]) -> dict[str, Any]:
    allowed = {"limit", "starting_after", "ending_before", "expand", "created"} | filters
    _unknown(params, allowed)
    return {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}


# ---------------------------------------------------------------- promotion codes


def _restrictions(raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", "restrictions")
    for key in raw:
        if key not in ("first_time_transaction", "minimum_amount", "minimum_amount_currency"):
            raise invalid(
                f"Received unknown parameter: restrictions[{key}]", f"restrictions[{key}]", "parameter_unknown"
            )
    minimum = raw.get("minimum_amount")
    minimum_currency = raw.get("minimum_amount_currency")
    if minimum is not None and minimum_currency is None:
        raise invalid(
            "You must pass minimum_amount_currency when passing minimum_amount.",
            "restrictions[minimum_amount_currency]",
            "parameter_missing",
        )
    if minimum_currency is not None and minimum is None:
        raise missing_param("restrictions[minimum_amount]")
    first_time = raw.get("first_time_transaction")
    return {
        "first_time_transaction": _bool(first_time, "restrictions[first_time_transaction]")
        if first_time is not None
        else False,
        "minimum_amount": check_amount(_int(minimum, "restrictions[minimum_amount]", 1), "restrictions[minimum_amount]")
        if minimum is not None
        else None,
        "minimum_amount_currency": _currency(minimum_currency, "restrictions[minimum_amount_currency]")
        if minimum_currency is not None
        else None,
    }


def _promotion_coupon(params: dict[str, Any]) -> str:
    """`promotion[coupon]` (with `promotion[type]=coupon`), or the `coupon` param of versions before clover."""
    promotion = params.get("promotion")
    if promotion is None:
        if "coupon" in params:
            return str(params["coupon"])
        raise missing_param("promotion")
    if "coupon" in params:
        raise invalid("You may only specify one of these parameters: coupon, promotion.", "coupon")
    if not isinstance(promotion, dict):
        raise invalid("Invalid object", "promotion")
    if promotion.get("type") is None:
        raise missing_param("promotion[type]")
    if promotion["type"] != "coupon":
        raise invalid(f"Invalid promotion[type]: {promotion['type']}", "promotion[type]", "parameter_invalid_string")
    if not promotion.get("coupon"):
        raise missing_param("promotion[coupon]")
    return str(promotion["coupon"])


def create_promotion_code(store: Store, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """POST /v1/promotion_codes: validate like Stripe, store, emit `promotion_code.created`."""
    _unknown(params, _PROMOTION_PARAMS)
    coupon_param = "promotion[coupon]" if "promotion" in params else "coupon"
    coupon_id = _promotion_coupon(params)
    if "customer" in params:
        raise no_such("customer", str(params["customer"]), "customer")
    now = store.clock.timestamp()
    with store.lock:
        coupon = store.coupons.get(coupon_id)
        if coupon is None:
            raise invalid(f"No such coupon: '{coupon_id}'", coupon_param, "resource_missing")
        if not refresh_coupon(store, coupon)["valid"]:
            raise invalid(f"Coupon {coupon_id} is no longer valid.", coupon_param, "coupon_expired")
        code = params.get("code")
        if code is None:
            code = new_id("", 8).upper()
        elif not _CODE.fullmatch(str(code)):
            raise invalid(
                "Promotion codes can only contain letters (a-z, A-Z), digits (0-9) and dashes (-).",
                "code",
                "parameter_invalid_string",
            )
        active = _bool(params["active"], "active") if "active" in params else True
        if active and find_active_code(store, str(code)) is not None:
            raise invalid(
                f"An active promotion code with `code: {code}` already exists.", "code", "resource_already_exists"
            )
        expires_at = None
        if "expires_at" in params:
            expires_at = _int(params["expires_at"], "expires_at")
            if expires_at <= now:
                raise invalid("Date must be in the future.", "expires_at", "parameter_invalid_integer")
            if coupon["redeem_by"] is not None and expires_at > coupon["redeem_by"]:
                raise invalid("The promotion code's expires_at cannot be after its coupon's redeem_by.", "expires_at")
        max_redemptions = _int(params["max_redemptions"], "max_redemptions", 1) if "max_redemptions" in params else None
        promotion_code: dict[str, Any] = {
            "id": new_id("promo_"),
            "object": "promotion_code",
            "active": active,
            "code": str(code),
            "created": now,
            "customer": None,
            "customer_account": None,
            "expires_at": expires_at,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": _metadata(params.get("metadata")),
            "promotion": {"coupon": coupon_id, "type": "coupon"},
            "restrictions": _restrictions(params.get("restrictions")),
            "times_redeemed": 0,
        }
        store.promotion_codes[promotion_code["id"]] = promotion_code
        store.emit("promotion_code.created", promotion_code, origin)
        return promotion_code


def find_active_code(store: Store, code: str) -> dict[str, Any] | None:
    """The active promotion code with this customer-facing code, compared case-insensitively."""
    wanted = code.strip().lower()
    return next(
        (p for p in store.promotion_codes.values() if p["active"] and p["code"].lower() == wanted),
        None,
    )


def get_promotion_code(store: Store, promotion_code_id: str, param: str = "id") -> dict[str, Any]:
    """The stored promotion code or a 404."""
    promotion_code = store.promotion_codes.get(promotion_code_id)
    if promotion_code is None:
        raise no_such("promotion_code", promotion_code_id, param)
    return promotion_code


def update_promotion_code(store: Store, code_id: str, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """POST /v1/promotion_codes/{id}: `active` and `metadata` (PromotionCodeUpdateParams)."""
    _unknown(params, {"active", "metadata", "expand"})
    with store.lock:
        promotion_code = get_promotion_code(store, code_id)
        previous: dict[str, Any] = {k: promotion_code[k] for k in ("active", "metadata") if k in params}
        if "active" in params:
            active = _bool(params["active"], "active")
            if active and not promotion_code["active"]:
                other = find_active_code(store, promotion_code["code"])
                if other is not None:
                    raise invalid(
                        f"An active promotion code with `code: {promotion_code['code']}` already exists.",
                        "active",
                        "resource_already_exists",
                    )
            promotion_code["active"] = active
        if "metadata" in params:
            promotion_code["metadata"] = {**promotion_code["metadata"], **_metadata(params["metadata"])}
        store.emit("promotion_code.updated", promotion_code, origin, previous_attributes=previous)
        return promotion_code


def list_promotion_codes(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/promotion_codes, newest first; filters `active`, `code` (case-insensitive), `coupon`."""
    page = _page(params, {"active", "code", "coupon", "customer"})
    codes = list(reversed(store.promotion_codes.values()))
    if "active" in params:
        active = _bool(params["active"], "active")
        codes = [p for p in codes if p["active"] == active]
    if "code" in params:
        codes = [p for p in codes if p["code"].lower() == str(params["code"]).lower()]
    if "coupon" in params:
        codes = [p for p in codes if p["promotion"]["coupon"] == params["coupon"]]
    if "customer" in params:
        codes = []  # no promotion code here is restricted to a customer
    return list_object(codes, "/v1/promotion_codes", page)


# ---------------------------------------------------------------- redeeming in a Checkout Session


class DiscountRefused(StripeAPIError):
    """A coupon or code that cannot apply to this session; `message` is what the shopper or caller is told."""


def _refused(message: str, param: str | None, code: str = "promotion_code_invalid") -> DiscountRefused:
    return DiscountRefused(400, message, code=code, param=param)


def check_redeemable(
    store: Store,
    session: dict[str, Any],
    coupon_id: str | None,
    promotion_code_id: str | None,
    param: str | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(coupon, promotion code) if they can apply to `session` now, else DiscountRefused saying why.

    Checks, in Stripe's terms: the code is active, not expired, not past its `max_redemptions`; its coupon is
    `valid`; an `amount_off` coupon is in the session's currency; the subtotal reaches the code's
    `minimum_amount` in `minimum_amount_currency`; a `first_time_transaction` code is refused when the
    session's email already paid in an earlier completed session (the emulator has no Customer objects: the
    email stands for the customer).
    """
    promotion_code = None
    if promotion_code_id is not None:
        promotion_code = store.promotion_codes.get(promotion_code_id)
        if promotion_code is None:
            raise _refused(f"No such promotion code: '{promotion_code_id}'", param, "resource_missing")
        coupon_id = promotion_code["promotion"]["coupon"]
        now = store.clock.timestamp()
        if not promotion_code["active"]:
            raise _refused("This promotion code is not active.", param)
        if promotion_code["expires_at"] is not None and promotion_code["expires_at"] <= now:
            raise _refused("This promotion code has expired.", param)
        limit = promotion_code["max_redemptions"]
        if limit is not None and promotion_code["times_redeemed"] >= limit:
            raise _refused("This promotion code has reached its maximum number of redemptions.", param)
    assert coupon_id is not None
    coupon = store.coupons.get(coupon_id)
    if coupon is None:
        raise _refused(f"No such coupon: '{coupon_id}'", param, "resource_missing")
    if not refresh_coupon(store, coupon)["valid"]:
        raise _refused(f"This coupon ({coupon_id}) is no longer valid.", param, "coupon_expired")
    if coupon["amount_off"] is not None and coupon["currency"] != session["currency"]:
        raise _refused(
            f"This coupon is in {coupon['currency'].upper()}; it cannot apply to a Checkout Session in "
            f"{session['currency'].upper()}.",
            param,
        )
    if promotion_code is not None:
        restrictions = promotion_code["restrictions"]
        minimum = restrictions["minimum_amount"]
        if minimum is not None:
            if restrictions["minimum_amount_currency"] != session["currency"]:
                raise _refused(
                    f"This promotion code requires an order in {restrictions['minimum_amount_currency'].upper()}.",
                    param,
                )
            if session["amount_subtotal"] < minimum:
                raise _refused("This promotion code requires a higher order total.", param)
        if restrictions["first_time_transaction"] and _has_paid_before(store, session):
            raise _refused("This promotion code is only for first-time customers.", param)
    return coupon, promotion_code


def _has_paid_before(store: Store, session: dict[str, Any]) -> bool:
    email = (session.get("customer_email") or "").lower()
    if not email:
        return False
    return any(
        s["id"] != session["id"]
        and s["status"] == "complete"
        and s["payment_status"] in ("paid", "no_payment_required")
        and (s.get("customer_email") or "").lower() == email
        for s in store.sessions.values()
    )


def session_discounts(raw: Any, allow_promotion_codes: bool | None) -> tuple[str | None, str | None]:
    """(coupon id, promotion code id) from `discounts[]`; refuses two discounts, both ids in one, or `discounts`
    together with `allow_promotion_codes`."""
    if raw is None or raw == "":
        return None, None
    if allow_promotion_codes is not None:
        raise invalid("You may only specify one of these parameters: allow_promotion_codes, discounts.", "discounts")
    if not isinstance(raw, list):
        raise invalid("Invalid array", "discounts")
    if len(raw) > 1:
        raise invalid(
            "You can only apply one discount (a coupon or a promotion code) to a Checkout Session.",
            "discounts",
            "parameter_invalid_array",
        )
    entry = raw[0] if raw else {}
    if not isinstance(entry, dict):
        raise invalid("Invalid object", "discounts[0]")
    for key in entry:
        if key not in ("coupon", "promotion_code"):
            raise invalid(
                f"Received unknown parameter: discounts[0][{key}]", f"discounts[0][{key}]", "parameter_unknown"
            )
    if "coupon" in entry and "promotion_code" in entry:
        raise invalid("You may only specify one of these parameters: coupon, promotion_code.", "discounts[0]")
    if "coupon" not in entry and "promotion_code" not in entry:
        raise invalid("You must specify either `coupon` or `promotion_code`.", "discounts[0]", "parameter_missing")
    return entry.get("coupon"), entry.get("promotion_code")


def amount_off(coupon: dict[str, Any], subtotal: int) -> int:
    """What the coupon takes off a subtotal: percent rounded half up to the minor unit, or the fixed amount,
    never more than the subtotal."""
    if coupon["percent_off"] is not None:
        off = (Decimal(subtotal) * Decimal(str(coupon["percent_off"])) / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return min(int(off), subtotal)
    return min(int(coupon["amount_off"]), subtotal)


def spread(total: int, weights: list[int]) -> list[int]:
    """`total` split over lines in proportion to `weights`, largest remainders first, summing exactly to it."""
    whole = sum(weights)
    if whole == 0:
        return [0 for _ in weights]
    shares = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares


def discount_object(
    session: dict[str, Any], coupon: dict[str, Any], promotion_code: dict[str, Any] | None, created: int
) -> dict[str, Any]:
    """The Discount Stripe shows in `total_details.breakdown.discounts[].discount` (SDK `stripe.Discount`)."""
    return {
        "id": session.get("_discount_id") or new_id("di_"),
        "object": "discount",
        "checkout_session": session["id"],
        "customer": None,
        "customer_account": None,
        "end": None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": promotion_code["id"] if promotion_code else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": created,
        "subscription": None,
        "subscription_item": None,
    }


def redeem(store: Store, session: dict[str, Any]) -> None:
    """Count the session's discount as redeemed (at completion), so limits apply to later sessions."""
    for entry in session.get("discounts") or []:
        if entry.get("promotion_code"):
            code = store.promotion_codes.get(entry["promotion_code"])
            if code is not None:
                code["times_redeemed"] += 1
        coupon = store.coupons.get(entry["coupon"]) if entry.get("coupon") else None
        if coupon is not None:
            coupon["times_redeemed"] += 1
            refresh_coupon(store, coupon)
