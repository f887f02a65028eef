"""Ids, Stripe object shapes and list pagination."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any

from .errors import invalid

_ALPHABET = string.ascii_letters + string.digits

ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}

# "The amount value supports up to eight digits (e.g., a value of 99999999 for a USD charge of $999,999.99)"
# (the SDK's PaymentIntentCreateParams.amount; docs.stripe.com/currencies#minimum-and-maximum-charge-amounts):
# in the minor unit of every currency, so JPY 99,999,999 too. Stripe refuses larger amounts anywhere it takes
# one (a charge, a coupon's amount_off, a promotion code's minimum_amount, a shipping rate).
MAXIMUM_AMOUNT = 99_999_999


def check_amount(amount: int, param: str) -> int:
    """`amount` if Stripe takes it (at most MAXIMUM_AMOUNT in the minor unit); else a 400 `amount_too_large`."""
    if amount > MAXIMUM_AMOUNT:
        raise invalid(
            f"Amount must be no more than {MAXIMUM_AMOUNT} in the smallest currency unit (up to eight digits).",
            param,
            "amount_too_large",
        )
    return amount


# The currencies Stripe charges in, in the order Stripe lists them when it refuses another one ("Invalid currency:
# xyz. Stripe currently supports these currencies: usd, aed, afn, ..."), checked against the "Supported presentment
# currencies" of docs.stripe.com/currencies. Which of them an account may use depends on its country; the
# emulator, like a US test account, takes them all.
PRESENTMENT_CURRENCIES: tuple[str, ...] = tuple(
    """usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf
    chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf
    idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop
    mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd
    scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof
    xpf yer zar zmw""".split()  # noqa: SIM905 - a list literal would take 135 lines
)


def new_id(prefix: str, length: int = 24) -> str:
    """A random Stripe-style id such as `pi_3Qx...`."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(items: list[dict[str, Any]], url: str, params: dict[str, Any]) -> dict[str, Any]:
    """Paginate `items` (already in API order) like Stripe: limit, starting_after, ending_before."""
    raw_limit = params.get("limit", "10")
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        raise invalid("Invalid integer: " + str(raw_limit), "limit", "parameter_invalid_integer") from None
    if not 1 <= limit <= 100:
        raise invalid(
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            "limit",
            "parameter_invalid_integer",
        )
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None:
        if after not in ids:
            raise invalid(f"No such object: '{after}'", "starting_after", "resource_missing")
        start = ids.index(after) + 1
        page = items[start : start + limit]
        has_more = start + limit < len(items)
    elif before is not None:
        if before not in ids:
            raise invalid(f"No such object: '{before}'", "ending_before", "resource_missing")
        end = ids.index(before)
        page = items[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        page = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def expand_list(params: dict[str, Any]) -> list[str]:
    """The `expand[]` values of a request."""
    value = params.get("expand", [])
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid("Invalid array", "expand")
    return [str(v) for v in value]


def apply_expand(
    obj: dict[str, Any],
    paths: list[str],
    resolvers: dict[tuple[str, str], Callable[[Any], Any]],
) -> dict[str, Any]:
    """Replace id fields named by dotted `paths` with the objects `resolvers` return."""
    for path in paths:
        head, _, rest = path.partition(".")
        resolver = resolvers.get((obj.get("object", ""), head))
        if resolver is None:
            raise invalid(f"This property cannot be expanded ({path}).", "expand")
        value = obj.get(head)
        if isinstance(value, str) or head not in obj or value is None:
            value = resolver(value)
        if rest and isinstance(value, dict):
            value = apply_expand(dict(value), [rest], resolvers)
        obj[head] = value
    return obj
