"""Stripe Tax in test mode: registrations and rates given on the command line, inclusive and exclusive prices.

Stripe Tax computes tax only where the account has a tax registration ("Monitor your obligations", "Tax
registrations"); elsewhere the tax is 0 with `taxability_reason: not_collecting`. Test mode computes with the
real rates of registered locations; the emulator has no rate database, so the operator states each registration
and its combined rate on the command line (`--tax-registration US-CA:7.25 --tax-registration DE:19`).

- Exclusive prices: tax is added on top, rounded half up per line ("Tax behavior": "exclusive adds tax onto the
  subtotal amount you specify on your price").
- Inclusive prices: the amount the buyer pays never changes; the tax inside it is
  `amount - round(amount / (1 + rate))`.
- A price without a tax behavior uses the account's default ("Setting the tax behavior explicitly on a price is
  optional, if you set up the default tax behavior in the Stripe Tax settings"); with neither, a session asking
  for automatic tax is refused.
- Product tax codes (`product_data[tax_code]`): the emulator knows the few codes in TAX_CODES (Stripe's list,
  docs.stripe.com/tax/tax-codes); `txcd_00000000` (Nontaxable) is taxed at 0 with `not_subject_to_tax`. Without
  a code the account's preset product code applies (here `txcd_99999999`, General - Tangible Goods); shipping
  uses the preset shipping code `txcd_92010001`.
- The location is the shipping address when the session collects one, else the billing address ("Automatically
  collect tax on Checkout sessions", table "New customer"). Without it `automatic_tax.status` is
  `requires_location_inputs` and the hosted page asks for the address before it can be paid.
- The account default `checkout_sessions[automatic_tax_default_value]=enabled_when_possible` ("Enable tax by
  default for Checkout Sessions"): a payment-mode session that does not pass `automatic_tax` at all gets
  automatic tax when it passes the same checks as an explicit `automatic_tax[enabled]=true`; one that fails them
  is created with automatic tax disabled instead of refused; an explicit `automatic_tax[enabled]` (true or
  false) always wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.core import Locale

from .errors import invalid
from .objects import new_id
from .store import Store

GENERAL_TANGIBLE_GOODS = "txcd_99999999"
SHIPPING = "txcd_92010001"
NONTAXABLE = "txcd_00000000"

# id -> (name, description, taxable): a few of Stripe's product tax codes (docs.stripe.com/tax/tax-codes).
TAX_CODES: dict[str, tuple[str, str, bool]] = {
    NONTAXABLE: ("Nontaxable", "Any nontaxable good or service, or a product for which tax is not collected.", False),
    "txcd_10000000": (
        "General - Electronically Supplied Services",
        "A generic electronically supplied service (e.g. a download) that is taxed at the standard rate.",
        True,
    ),
    "txcd_20030000": ("General - Services", "A general service that is taxed at the standard rate.", True),
    SHIPPING: ("Shipping", "Charges for delivery of goods to the buyer.", True),
    GENERAL_TANGIBLE_GOODS: (
        "General - Tangible Goods",
        "A physical good that is taxed at the standard rate for tangible personal property.",
        True,
    ),
}
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
DEFAULTS = ("disabled", "enabled_when_possible")
_REGISTRATION = re.compile(r"([A-Z]{2})(?:-([A-Z0-9]{1,3}))?:(\d{1,2}(?:\.\d{1,4})?)")
_TERRITORIES = Locale.parse("en_US").territories


@dataclass(frozen=True)
class Registration:
    """A place the account collects tax in: a country, or a US state / Canadian province, and its rate (%)."""

    country: str
    state: str | None
    rate: Decimal

    @classmethod
    def parse(cls, text: str) -> Registration:
        """`US-CA:7.25` or `DE:19` -> Registration; ValueError saying the expected form otherwise."""
        match = _REGISTRATION.fullmatch(text.strip().upper())
        if not match:
            raise ValueError(f"{text!r}: expected COUNTRY[-STATE]:PERCENT, e.g. US-CA:7.25 or DE:19")
        return cls(match.group(1), match.group(2), Decimal(match.group(3)))


@dataclass
class TaxSettings:
    """The account's Stripe Tax settings (set on the command line; not part of the saved state)."""

    registrations: tuple[Registration, ...] = ()
    checkout_default: str = "disabled"  # checkout_sessions[automatic_tax_default_value]
    default_behavior: str | None = None  # "inclusive" / "exclusive": Stripe Tax's default tax behavior setting

    @property
    def active(self) -> bool:
        """Stripe Tax is set up (here: at least one registration was given)."""
        return bool(self.registrations)

    def registration(self, country: str, state: str | None) -> Registration | None:
        """The registration covering an address: the state's for US/CA, the country's elsewhere."""
        for reg in self.registrations:
            if reg.country == country and (reg.state is None or reg.state == (state or "").upper()):
                return reg
        return None


@dataclass(frozen=True)
class LineTax:
    """Tax on one line (or on shipping): the amount, whether it is inside the price, and its breakdown key."""

    amount: int = 0
    inclusive: bool = False
    taxable_amount: int = 0
    reason: str | None = None


@dataclass
class Calculation:
    """The outcome for a session: `automatic_tax.status`, tax per line and on shipping, the breakdown."""

    status: str | None
    lines: list[LineTax]
    shipping: LineTax = field(default_factory=LineTax)
    breakdown: list[dict[str, Any]] = field(default_factory=list)


def settings(store: Store) -> TaxSettings:
    """The account's tax settings (a default, inactive one when none were given)."""
    found = getattr(store, "tax", None)
    return found if isinstance(found, TaxSettings) else TaxSettings()


def tax_code(value: Any, param: str) -> str:
    """A product tax code the emulator knows, else a 400 naming `param`."""
    if value not in TAX_CODES:
        raise invalid(
            f"Invalid tax code: {value}. The local Stripe service knows {', '.join(sorted(TAX_CODES))}.",
            param,
            "parameter_invalid_string",
        )
    return str(value)


def tax_behavior(value: Any, param: str) -> str:
    """`inclusive`, `exclusive` or `unspecified`, else a 400."""
    if value not in TAX_BEHAVIORS:
        raise invalid(f"Invalid tax_behavior: must be one of {', '.join(TAX_BEHAVIORS)}", param)
    return str(value)


def automatic_tax_param(store: Store, raw: Any, behaviors: list[str]) -> bool:
    """Whether the new session computes tax: `automatic_tax[enabled]` when given (refused if Stripe Tax cannot
    work for it), else the account's default (`enabled_when_possible` turns it on only when compatible)."""
    account = settings(store)
    problem = _incompatible(account, behaviors)
    if raw is None:
        return account.checkout_default == "enabled_when_possible" and problem is None
    if not isinstance(raw, dict) or "enabled" not in raw:
        raise invalid("Missing required param: automatic_tax[enabled].", "automatic_tax[enabled]", "parameter_missing")
    for key in raw:
        if key not in ("enabled", "liability"):
            raise invalid(
                f"Received unknown parameter: automatic_tax[{key}]", f"automatic_tax[{key}]", "parameter_unknown"
            )
    if raw["enabled"] not in ("true", "false"):
        raise invalid(f"Invalid boolean: {raw['enabled']}", "automatic_tax[enabled]", "parameter_invalid_boolean")
    enabled = raw["enabled"] == "true"
    if enabled and problem is not None:
        raise invalid(problem, "automatic_tax[enabled]")
    return enabled


def _incompatible(account: TaxSettings, behaviors: list[str]) -> str | None:
    if not account.active:
        return (
            "Stripe Tax has not been activated on your account. Start the local Stripe service with "
            "--tax-registration (e.g. --tax-registration US-CA:7.25) to set it up."
        )
    if account.default_behavior is None and "unspecified" in behaviors:
        return (
            "Automatic tax needs a tax behavior for every price (price_data[tax_behavior] inclusive or exclusive), "
            "or a default tax behavior in the tax settings (--tax-default-behavior)."
        )
    return None


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _line(amount: int, rate: Decimal, inclusive: bool, reason: str) -> LineTax:
    if inclusive:
        net = _round(Decimal(amount) * 100 / (100 + rate))
        return LineTax(amount - net, True, net, reason)
    return LineTax(_round(Decimal(amount) * rate / 100), False, amount, reason)


def calculate(store: Store, session: dict[str, Any], items: list[dict[str, Any]], shipping: int) -> Calculation:
    """Tax for the session's lines (after their discount) and its shipping, as Stripe Tax test mode would."""
    if not session["automatic_tax"]["enabled"]:
        return Calculation(None, [LineTax() for _ in items])
    address = session.get("_tax_address")
    if not address or (address["country"] in ("US", "CA") and not address.get("state")):
        return Calculation("requires_location_inputs", [LineTax() for _ in items])
    account = settings(store)
    registration = account.registration(address["country"], address.get("state"))
    rate = registration.rate if registration else Decimal(0)
    default = account.default_behavior or "exclusive"
    lines: list[LineTax] = []
    for item in items:
        behavior = item["price"].get("tax_behavior", "unspecified")
        inclusive = (default if behavior == "unspecified" else behavior) == "inclusive"
        taxable_code = TAX_CODES[item.get("_tax_code") or GENERAL_TANGIBLE_GOODS][2]
        amount = item["amount_subtotal"] - item["amount_discount"]
        if registration is None:
            lines.append(LineTax(0, inclusive, amount, "not_collecting"))
        elif not taxable_code:
            lines.append(LineTax(0, inclusive, amount, "not_subject_to_tax"))
        else:
            lines.append(_line(amount, rate, inclusive, "standard_rated"))
    option = session.get("_shipping")
    shipping_tax = LineTax()
    if option is not None:
        behavior = option.get("tax_behavior", "unspecified")
        inclusive = (default if behavior == "unspecified" else behavior) == "inclusive"
        reason = "standard_rated" if registration else "not_collecting"
        shipping_tax = (
            _line(shipping, rate, inclusive, reason) if registration else LineTax(0, inclusive, shipping, reason)
        )
    breakdown = _breakdown(store, address, registration, [*lines, shipping_tax] if option else lines)
    return Calculation("complete", lines, shipping_tax, breakdown)


def _breakdown(
    store: Store, address: dict[str, Any], registration: Registration | None, taxes: list[LineTax]
) -> list[dict[str, Any]]:
    """`total_details.breakdown.taxes`: one entry per (rate, inclusive, reason), as Stripe groups them."""
    groups: dict[tuple[bool, str | None], list[LineTax]] = {}
    for tax in taxes:
        groups.setdefault((tax.inclusive, tax.reason), []).append(tax)
    entries = []
    for (inclusive, reason), members in groups.items():
        percentage = registration.rate if registration and reason == "standard_rated" else Decimal(0)
        entries.append(
            {
                "amount": sum(t.amount for t in members),
                "rate": tax_rate(store, address, registration, percentage, inclusive),
                "taxability_reason": reason,
                "taxable_amount": sum(t.taxable_amount for t in members),
            }
        )
    return entries


def tax_rate(
    store: Store, address: dict[str, Any], registration: Registration | None, percentage: Decimal, inclusive: bool
) -> dict[str, Any]:
    """The TaxRate object Stripe Tax reports for a jurisdiction (one per rate and behaviour, reused)."""
    country = address["country"]
    state = (address.get("state") or None) if registration and registration.state else None
    key = f"{country}-{state or ''}-{percentage}-{inclusive}"
    existing = store.tax_rates.get(key)
    if existing is not None:
        return existing
    us_like = country in ("US", "CA")
    rate = {
        "id": new_id("txr_"),
        "object": "tax_rate",
        "active": True,
        "country": country,
        "created": store.clock.timestamp(),
        "description": None,
        "display_name": "Sales Tax" if us_like else "VAT",
        "effective_percentage": float(percentage),
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": state or _TERRITORIES.get(country, country),
        "jurisdiction_level": "state" if state else "country",
        "livemode": False,
        "metadata": {},
        "percentage": float(percentage),
        "rate_type": "percentage",
        "state": state,
        "tax_type": "sales_tax" if us_like else "vat",
    }
    store.tax_rates[key] = rate
    return rate


def tax_code_object(code: str) -> dict[str, Any]:
    """GET /v1/tax_codes/{id}: Stripe's TaxCode shape."""
    name, description, _ = TAX_CODES[code]
    return {"id": code, "object": "tax_code", "description": description, "name": name, "requirements": None}
