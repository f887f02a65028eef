"""What the shop asks Stripe to add to a price, and the amount check that holds a completed session to it.

Issue 23. Stripe computes discounts, shipping and tax; the shop decides what it allows and never trusts the
browser. Each Checkout Session is created with `Terms` (recorded as JSON on its checkout attempt before Stripe
is called): the promotion codes the shopper may enter on Stripe's page (`allow_promotion_codes`; the shop never
applies a code itself, so no code or price comes from the browser), the shipping rates offered with their
amounts, whether Stripe Tax runs (`automatic_tax[enabled]`, sent as `false` explicitly when off) and the tax
behaviour of the prices. `check` then accepts a completed session only when (Stripe's Checkout Session object,
stripe-python checkout/_session.py):

- `amount_subtotal` equals the database prices x quantities copied onto the order's items;
- a discount (`total_details.amount_discount`) comes from one promotion code of the terms (`discounts[0]`), and is
  what that code's coupon gives: `amount_off` capped at the subtotal, or `percent_off` of the subtotal (Stripe
  rounds per line item, so within one cent per line);
- shipping (`shipping_cost`) is a rate of the terms, at its recorded amount, to a country it ships to;
- tax (`total_details.amount_tax`) appears only when the terms asked for it. Stripe adding tax the shop did not
  ask for (an account whose Stripe Tax default is on, with a session created before the shop said `false`, or a
  Dashboard setting overriding it) is never accepted silently: the order is flagged for review with the reason
  and staff decide (refund the tax, or accept). docs/STAFF.md, "Discounts, shipping and tax";
- `amount_total = subtotal - discount + shipping + tax` (tax only when exclusive: inclusive tax is part of the
  subtotal and of the shipping amount already).

Anything else is a problem string; the caller flags the order for review with it and records no payment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopapp.models import Order, PromotionCode, ShippingRate
from shopapp.models.base import utcnow
from shopapp.services import shipping

# Checkout Session `shipping_options`: "The shipping rate options to apply to this Session. Up to a maximum of 5."
MAX_SHIPPING_OPTIONS = 5
TAX_BEHAVIORS = ("exclusive", "inclusive")
# Stripe Tax's code for shipping charges ("Shipping", txcd_92010001).
SHIPPING_TAX_CODE = "txcd_92010001"


@dataclass(frozen=True)
class AllowedCode:
    """A promotion code the shopper may enter: Stripe ids, its code, and what its coupon takes off."""

    promotion_code: str  # Stripe id, promo_...
    code: str
    coupon: str  # Stripe id
    percent_off: str | None = None  # decimal as text, e.g. "15" or "100"
    amount_off: int | None = None  # cents, in `currency`
    currency: str | None = None

    def discount_for(self, subtotal: int) -> int:
        """The discount (cents) this code's coupon gives on `subtotal` (cents)."""
        if self.amount_off is not None:
            return min(self.amount_off, subtotal)
        percent = Decimal(self.percent_off or "0")
        return int((Decimal(subtotal) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class OfferedRate:
    """A shipping rate offered: its Stripe id, name, amount (cents, the order's currency) and countries."""

    shipping_rate: str  # Stripe id, shr_...
    name: str
    amount: int
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Terms:
    """What one Checkout Session asked Stripe for besides the line items (recorded on its checkout attempt)."""

    promotion_codes: tuple[AllowedCode, ...] = ()
    shipping_rates: tuple[OfferedRate, ...] = ()
    automatic_tax: bool = False
    tax_behavior: str | None = None  # the prices' tax_behavior when tax is on
    invoice_creation: bool = False
    shipping_countries: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        """The JSON stored in checkout_attempts.terms."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Terms:
        """Terms from checkout_attempts.terms; None (an attempt made before issue 23) asked for nothing extra."""
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(
            promotion_codes=tuple(AllowedCode(**code) for code in raw.get("promotion_codes", ())),
            shipping_rates=tuple(
                OfferedRate(**{**rate, "countries": tuple(rate.get("countries", ()))})
                for rate in raw.get("shipping_rates", ())
            ),
            automatic_tax=bool(raw.get("automatic_tax")),
            tax_behavior=raw.get("tax_behavior"),
            invoice_creation=bool(raw.get("invoice_creation")),
            shipping_countries=tuple(raw.get("shipping_countries", ())),
        )


def _allowed_codes(session: Session, currency: str) -> tuple[AllowedCode, ...]:
    now = utcnow()
    codes = session.scalars(
        select(PromotionCode)
        .where(PromotionCode.active.is_(True), PromotionCode.stripe_promotion_code_id.is_not(None))
        .order_by(PromotionCode.id)
    )
    allowed = []
    for promo in codes:
        coupon = promo.coupon
        if coupon.stripe_coupon_id is None:
            continue
        if (promo.expires_at and promo.expires_at <= now) or (coupon.redeem_by and coupon.redeem_by <= now):
            continue
        if coupon.amount_off_cents is not None and (coupon.currency or "").lower() != currency.lower():
            continue  # Stripe refuses an amount-off code in another currency
        allowed.append(
            AllowedCode(
                promotion_code=str(promo.stripe_promotion_code_id),
                code=promo.code,
                coupon=coupon.stripe_coupon_id,
                percent_off=None if coupon.percent_off is None else str(coupon.percent_off.normalize()),
                amount_off=coupon.amount_off_cents,
                currency=coupon.currency,
            )
        )
    return tuple(allowed)


def rate_amounts(rate: ShippingRate) -> dict[str, int]:
    """A shipping rate's amounts per currency (lower-case ISO code -> cents)."""
    return {str(k).lower(): int(v) for k, v in json.loads(rate.amounts or "{}").items()}


def rate_countries(rate: ShippingRate) -> tuple[str, ...]:
    """The ISO alpha-2 countries a shipping rate ships to."""
    return tuple(c.strip().upper() for c in (rate.countries or "").split(",") if c.strip())


def _offered_rates(session: Session, currency: str) -> tuple[OfferedRate, ...]:
    rates = session.scalars(
        select(ShippingRate)
        .where(ShippingRate.active.is_(True), ShippingRate.stripe_shipping_rate_id.is_not(None))
        .order_by(ShippingRate.id)
    )
    offered = []
    for rate in rates:
        amount = rate_amounts(rate).get(currency.lower())
        if amount is None:
            continue  # no amount in this order's currency: not offered
        offered.append(OfferedRate(str(rate.stripe_shipping_rate_id), rate.display_name, amount, rate_countries(rate)))
    return tuple(offered[:MAX_SHIPPING_OPTIONS])


def current_terms(session: Session, currency: str, shipping_countries: Sequence[str] = ()) -> Terms:
    """What a new Checkout Session in `currency` asks for now: active codes and rates at Stripe, the tax and
    invoice settings (config STRIPE_AUTOMATIC_TAX, TAX_BEHAVIOR, STRIPE_INVOICE_CREATION)."""
    config = current_app.config
    rates = _offered_rates(session, currency)
    countries = list(
        dict.fromkeys([*(c.upper() for c in shipping_countries), *(c for r in rates for c in r.countries)])
    )
    automatic_tax = bool(config["STRIPE_AUTOMATIC_TAX"])
    return Terms(
        promotion_codes=_allowed_codes(session, currency),
        shipping_rates=rates,
        automatic_tax=automatic_tax,
        tax_behavior=config["TAX_BEHAVIOR"] if automatic_tax else None,
        invoice_creation=bool(config["STRIPE_INVOICE_CREATION"]),
        shipping_countries=tuple(countries),
    )


def session_params(terms: Terms, order_id: int) -> dict[str, Any]:
    """The Checkout Session parameters that ask Stripe for `terms` (besides the line items' tax fields)."""
    params: dict[str, Any] = {
        # Sent either way: off, Stripe must not add tax on an account default (Stripe's docs: automatic_tax).
        "automatic_tax": {"enabled": terms.automatic_tax},
        **shipping.session_params(terms.shipping_countries),
    }
    if terms.promotion_codes:
        params["allow_promotion_codes"] = True
    if terms.shipping_rates:
        params["shipping_options"] = [{"shipping_rate": rate.shipping_rate} for rate in terms.shipping_rates]
    if terms.automatic_tax and not terms.shipping_countries:
        # Stripe Tax needs the customer's address: the shipping address when collected, else the billing one.
        params["billing_address_collection"] = "required"
    if terms.invoice_creation:
        # The order is named in the invoice's metadata so its `invoice.paid` event finds the order.
        params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": {"order_id": str(order_id)}}}
    return params


def taxed_line_items(line_items: list[dict[str, Any]], terms: Terms, tax_codes: Sequence[str | None]) -> None:
    """Add each price's `tax_behavior` and each product's Stripe `tax_code` when the terms ask for tax."""
    if not terms.automatic_tax:
        return
    for item, tax_code in zip(line_items, tax_codes, strict=True):
        item["price_data"]["tax_behavior"] = terms.tax_behavior
        if tax_code:
            item["price_data"]["product_data"]["tax_code"] = tax_code


@dataclass(frozen=True)
class Charged:
    """What Stripe charged besides the items, accepted by `check` (cents, the order's currency)."""

    amount_total: int
    discount: int = 0
    shipping: int = 0
    tax: int = 0
    tax_behavior: str | None = None
    promotion_code: str | None = None
    shipping_rate_name: str | None = None
    invoice: str | None = None

    def order_columns(self) -> dict[str, Any]:
        """The Order columns recording this charge (services/orders.py record_payment writes them): the total
        paid, and only what differs from the columns' defaults (0, None): fewer binds on the common path."""
        columns: dict[str, Any] = {"total_cents": self.amount_total}
        for name, value in (
            ("amount_discount_cents", self.discount),
            ("amount_shipping_cents", self.shipping),
            ("amount_tax_cents", self.tax),
            ("tax_behavior", self.tax_behavior),
            ("promotion_code", self.promotion_code),
            ("shipping_rate_name", self.shipping_rate_name),
            # Never clears an id an earlier invoice.paid event recorded (services/receipts.py).
            ("stripe_invoice_id", self.invoice),
        ):
            if value:
                columns[name] = value
        return columns


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _obj(cs: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cs.get(name)
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _discount(terms: Terms, cs: Mapping[str, Any], subtotal: int, lines: int) -> tuple[int, str | None] | str:
    totals = _obj(cs, "total_details")
    amount = _int(totals.get("amount_discount"))
    entries = [d for d in (cs.get("discounts") or []) if isinstance(d, Mapping)]
    if not entries:
        return (0, None) if amount == 0 else f"a discount of {amount} with no promotion code named"
    if len(entries) > 1:
        return f"{len(entries)} discounts on one session"
    promo_id = _id(entries[0].get("promotion_code"))
    allowed = next((code for code in terms.promotion_codes if code.promotion_code == promo_id), None)
    if allowed is None:
        return f"a discount from {promo_id or _id(entries[0].get('coupon'))}, not a promotion code the shop allowed"
    expected = allowed.discount_for(subtotal)
    # Stripe spreads a percentage over the line items and rounds each: within a cent per line.
    slack = lines if allowed.percent_off is not None else 0
    if abs(amount - expected) > slack:
        return f"discount {amount} != {expected} that code {allowed.code} gives on {subtotal}"
    return amount, allowed.code


def _shipping(terms: Terms, cs: Mapping[str, Any]) -> tuple[int, str | None] | str:
    totals = _obj(cs, "total_details")
    amount = _int(totals.get("amount_shipping"))
    cost = cs.get("shipping_cost")
    if not isinstance(cost, Mapping):
        if terms.shipping_rates:
            return "no shipping rate chosen on a session that offered them"
        return (0, None) if amount == 0 else f"shipping {amount} on a session that offered none"
    rate_id = _id(cost.get("shipping_rate"))
    offered = next((rate for rate in terms.shipping_rates if rate.shipping_rate == rate_id), None)
    if offered is None:
        return f"shipping rate {rate_id}, not one the shop offered"
    if _int(cost.get("amount_subtotal")) != offered.amount or amount != offered.amount:
        return f"shipping {amount} != {offered.amount} of rate {offered.name!r}"
    details = shipping.shipping_details_from_session(cs)
    country = (details or {}).get("address", {}).get("country")
    if offered.countries and country not in offered.countries:
        return f"rate {offered.name!r} ships to {', '.join(offered.countries)}, not to {country}"
    return amount, offered.name


def _tax(terms: Terms, cs: Mapping[str, Any]) -> int | str:
    totals = _obj(cs, "total_details")
    amount = _int(totals.get("amount_tax"))
    automatic = _obj(cs, "automatic_tax")
    if not terms.automatic_tax:
        if amount or automatic.get("enabled"):
            return (
                f"Stripe added tax of {amount} though the shop did not ask for it (automatic tax off for this "
                "session; an account default?)"
            )
        return 0
    if automatic.get("status") not in (None, "complete"):
        return f"automatic tax status {automatic.get('status')}"
    return amount


def reported(terms: Terms, cs: Mapping[str, Any]) -> Charged:
    """What a paid session says Stripe charged, unchecked (`amount_total`, `total_details`, the chosen rate and
    the invoice): the facts of a payment that failed `check`. Recorded as is, so the flagged order's columns
    add up to what was taken and staff see (and can refund) exactly that."""
    totals = _obj(cs, "total_details")
    rate_id = _id(_obj(cs, "shipping_cost").get("shipping_rate"))
    rate = next((r for r in terms.shipping_rates if r.shipping_rate == rate_id), None)
    return Charged(
        amount_total=_int(cs.get("amount_total")),
        discount=_int(totals.get("amount_discount")),
        shipping=_int(totals.get("amount_shipping")),
        tax=_int(totals.get("amount_tax")),
        tax_behavior=terms.tax_behavior if terms.automatic_tax else None,
        shipping_rate_name=rate.name if rate else None,
        invoice=_id(cs.get("invoice")),
    )


def check(order: Order, terms: Terms, cs: Mapping[str, Any]) -> Charged | str:
    """Hold a completed Checkout Session to the order's database prices and the attempt's terms (module doc);
    returns what was charged, or the problem (a sentence for staff)."""
    subtotal = order.subtotal_cents
    if str(cs.get("currency") or "").lower() != order.currency.lower():
        return f"currency {cs.get('currency')} != order currency {order.currency}"
    if cs.get("mode") not in (None, "payment"):
        return f"unexpected mode {cs.get('mode')}"
    # Sessions without amount_subtotal (never at Stripe) are held to the total alone.
    reported_subtotal = cs.get("amount_subtotal", subtotal)
    if reported_subtotal != subtotal:
        return f"subtotal {reported_subtotal} != {subtotal} of the order's items at database prices"
    discount = _discount(terms, cs, subtotal, len(order.items))
    if isinstance(discount, str):
        return discount
    shipped = _shipping(terms, cs)
    if isinstance(shipped, str):
        return shipped
    tax = _tax(terms, cs)
    if isinstance(tax, str):
        return tax
    added_tax = tax if terms.tax_behavior != "inclusive" else 0
    expected = subtotal - discount[0] + shipped[0] + added_tax
    if cs.get("amount_total") != expected:
        return (
            f"amount {cs.get('amount_total')} != order total {expected} (subtotal {subtotal} - discount "
            f"{discount[0]} + shipping {shipped[0]} + tax {added_tax})"
        )
    return Charged(
        amount_total=expected,
        discount=discount[0],
        shipping=shipped[0],
        tax=tax,
        tax_behavior=terms.tax_behavior if terms.automatic_tax else None,
        promotion_code=discount[1],
        shipping_rate_name=shipped[1],
        invoice=_id(cs.get("invoice")),
    )
