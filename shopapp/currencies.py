"""The currencies the shop may price in, with their minor units and Stripe's charge limits.

A leaf module (imports nothing from shopapp), so models, services and templates share one table.

Sources (Stripe docs, "Supported currencies", https://docs.stripe.com/currencies):
- "Minimum and maximum charge amounts"
  (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts): the minimum charge per
  settlement currency (USD 0.50, GBP 0.30, JPY 50 ...). Stripe publishes a minimum only for these
  currencies; a currency without a published minimum is not offered, because the shop could not tell staff
  which prices Stripe will refuse. The table checks a price against the minimum of its own currency; Stripe
  also converts a charge in another currency to the account's settlement currency and refuses it below that
  currency's minimum ("Amount must convert to at least ..."), so an account settling in USD needs a JPY price
  worth at least $0.50 too.
  Checked 2026-11-30 against that section: all 24 values below (USD 0.50, AED 2.00, AUD 0.50, BGN 1.00,
  BRL 0.50, CAD 0.50, CHF 0.50, CZK 15.00, DKK 2.50, EUR 0.50, GBP 0.30, HKD 4.00, HUF 175.00, INR 0.50,
  JPY 50, MXN 10, MYR 2, NOK 3.00, NZD 0.50, PLN 2.00, RON 2.00, SEK 3.00, SGD 0.50, THB 10) agree. BGN
  stays while the table lists it, although Bulgaria moved to the euro on 2026-01-01 (Stripe's changelog
  2026-01-28.clover, "Changes currency mapping for Bulgaria from BGN to EUR", names Terminal tipping only).
- The same section: "The amount value supports up to eight digits (e.g., a value of 99999999 for a USD
  charge of $999,999.99)" -- the maximum, in minor units, for every currency listed here.
- "Zero-decimal currencies": amounts are whole units (JPY 500 is sent as 500). Every other currency
  here is two-decimal (cents). "Special cases": HUF is charged with two decimals (payouts are integral).

Amounts everywhere in the shop (price_cents, total_cents, Stripe's unit_amount) are integers in the
currency's minor unit: cents for USD, yen for JPY.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Stripe docs "Zero-decimal currencies" (the complete list, also used to format any stored amount).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)

# Stripe docs "Minimum and maximum charge amounts": "up to eight digits".
MAX_CHARGE_MINOR = 99_999_999


@dataclass(frozen=True)
class Currency:
    """One ISO 4217 currency Stripe charges in: its lower-case code, name, minor-unit digits, minimum."""

    code: str
    name: str
    minor_units: int  # digits after the decimal point: 2 for USD, 0 for JPY
    min_charge_minor: int  # Stripe's minimum charge, in minor units
    max_charge_minor: int = MAX_CHARGE_MINOR


def _c(code: str, name: str, minimum: str) -> Currency:
    digits = 0 if code in ZERO_DECIMAL else 2
    return Currency(code, name, digits, int(Decimal(minimum).scaleb(digits)))


# Stripe docs "Minimum and maximum charge amounts" (minimum in major units as the table prints it).
SUPPORTED: dict[str, Currency] = {
    c.code: c
    for c in (
        _c("usd", "US dollar", "0.50"),
        _c("aed", "UAE dirham", "2.00"),
        _c("aud", "Australian dollar", "0.50"),
        _c("bgn", "Bulgarian lev", "1.00"),
        _c("brl", "Brazilian real", "0.50"),
        _c("cad", "Canadian dollar", "0.50"),
        _c("chf", "Swiss franc", "0.50"),
        _c("czk", "Czech koruna", "15.00"),
        _c("dkk", "Danish krone", "2.50"),
        _c("eur", "Euro", "0.50"),
        _c("gbp", "British pound", "0.30"),
        _c("hkd", "Hong Kong dollar", "4.00"),
        _c("huf", "Hungarian forint", "175.00"),
        _c("inr", "Indian rupee", "0.50"),
        _c("jpy", "Japanese yen", "50"),
        _c("mxn", "Mexican peso", "10"),
        _c("myr", "Malaysian ringgit", "2"),
        _c("nok", "Norwegian krone", "3.00"),
        _c("nzd", "New Zealand dollar", "0.50"),
        _c("pln", "Polish zloty", "2.00"),
        _c("ron", "Romanian leu", "2.00"),
        _c("sek", "Swedish krona", "3.00"),
        _c("sgd", "Singapore dollar", "0.50"),
        _c("thb", "Thai baht", "10"),
    )
}


class AmountError(ValueError):
    """A user-facing reason an amount or currency was refused."""


def minor_units(code: str) -> int:
    """Digits after the decimal point for any currency code (2 unless Stripe lists it as zero-decimal)."""
    return 0 if code.lower() in ZERO_DECIMAL else 2


def get(code: str) -> Currency:
    """The supported currency for a code (any case); AmountError if the shop does not offer it."""
    found = SUPPORTED.get((code or "").strip().lower())
    if found is None:
        raise AmountError("Choose a currency from the list.")
    return found


def choices() -> list[tuple[str, str]]:
    """(code, label) pairs for a select field, e.g. ("usd", "USD - US dollar")."""
    return [(c.code, f"{c.code.upper()} - {c.name}") for c in sorted(SUPPORTED.values(), key=lambda c: c.code)]


def to_major(amount_minor: int, code: str) -> Decimal:
    """Integer minor units as a decimal amount: 1999 USD -> 19.99, 500 JPY -> 500."""
    return Decimal(amount_minor).scaleb(-minor_units(code))


def parse_amount(text: str | Decimal, code: str) -> int:
    """A decimal amount typed by staff as integer minor units; AmountError for anything not exact."""
    digits = minor_units(code)
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise AmountError("Enter the price as a number, e.g. 19.99.") from None
    if not value.is_finite():
        raise AmountError("Enter the price as a number, e.g. 19.99.")
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        if digits == 0:
            raise AmountError(f"{code.upper()} has no decimal places: enter a whole amount.")
        raise AmountError(f"{code.upper()} amounts have at most {digits} decimal places.")
    return int(minor)


def check_charge(amount_minor: int, code: str) -> None:
    """Raise AmountError unless Stripe can charge this amount in this currency (its minimum and maximum)."""
    currency = get(code)
    if amount_minor < currency.min_charge_minor:
        minimum = to_major(currency.min_charge_minor, currency.code)
        raise AmountError(f"Stripe's minimum charge in {currency.code.upper()} is {minimum}.")
    if amount_minor > currency.max_charge_minor:
        maximum = to_major(currency.max_charge_minor, currency.code)
        raise AmountError(f"Stripe's maximum charge in {currency.code.upper()} is {maximum}.")
