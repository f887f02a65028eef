"""Staff's coupons, promotion codes and shipping rates, each created at Stripe exactly once (issue 23).

Like a Checkout Session or a refund, each object's row is committed with its idempotency key
(`coupon-<id>-<random>`, `promotion-code-<id>-<random>`, `shipping-rate-<id>-<random>`: unique for ever; from the
admin's forms `coupon-form-<submission>` etc., the form's one-time random token, so that submitting the same form
twice finds the first row instead of making a second object, as the refund form's `sequence` does) before
Stripe is called, and the Stripe id is stored when Stripe answers. A call that fails leaves the row without an
id: it is not offered to shoppers, and `send_pending` (the admin's "Send to Stripe" button, and every later
create) sends it again with the same key, so Stripe never makes two. Stripe does not let a coupon's or a
rate's amounts change after creation (its API reference): staff make a new one instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shopapp import currencies
from shopapp.gateway import GatewayError, get_gateway, shipping_countries
from shopapp.models import Coupon, PromotionCode, ShippingRate
from shopapp.services.amounts import SHIPPING_TAX_CODE, rate_amounts, rate_countries
from shopapp.services.ids import KEY_PART_LENGTH, random_key_part
from shopapp.services.tx import write_transaction

# Stripe's PromotionCode.code: "case-insensitive ... up to 500 characters; letters, digits, dashes"; the shop keeps
# codes short enough to type and print.
CODE_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{1,39}")
COUNTRY_PATTERN = re.compile(r"[A-Z]{2}")
Row = TypeVar("Row", Coupon, PromotionCode, ShippingRate)


class DiscountError(ValueError):
    """A refused coupon, code or rate: `errors` maps a form field to its message (for staff)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


class NotAtStripeYet(RuntimeError):
    """Saved, but Stripe could not be reached or refused: the message says which; the row waits for a resend."""


@dataclass(frozen=True)
class CouponInput:
    """A coupon as staff typed it: percent (e.g. "15") or amount (major units, e.g. "5.00") in currency."""

    name: str
    percent_off: str = ""
    amount_off: str = ""
    currency: str = "usd"
    max_redemptions: int | None = None
    redeem_by: datetime | None = None


def _decimal(text: str, field: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DiscountError({field: "Enter a number, e.g. 15 or 5.00."}) from None
    if not value.is_finite():  # "NaN", "Infinity": Decimal reads them, but they are no amount (and compare badly)
        raise DiscountError({field: "Enter a number, e.g. 15 or 5.00."})
    return value


# CouponCreateParams.redeem_by: "cannot be set to more than 5 years in the future" (the SDK's docstring).
MAX_REDEEM_BY = timedelta(days=5 * 365)


def _utc(moment: datetime) -> datetime:
    # The database may hand back a naive time; the shop stores UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _future_error(moment: datetime | None, limit: timedelta | None = None) -> str | None:
    """Why Stripe would refuse this date (redeem_by, expires_at must be in the future; redeem_by within 5 years)."""
    if moment is None:
        return None
    now = datetime.now(UTC)
    if _utc(moment) <= now:
        return "A day from today on: Stripe refuses a date in the past."
    if limit is not None and _utc(moment) > now + limit:
        return "At most 5 years ahead: Stripe refuses a later date."
    return None


def percent_text(percent: Decimal) -> str:
    """A stored percentage as people and Stripe write it: 10.00 -> "10", 12.50 -> "12.5" (never "1E+1", which
    Decimal.normalize() alone gives for 10)."""
    return f"{percent.normalize():f}"


def _supported(currency: str) -> bool:
    return currency in currencies.SUPPORTED


def _minor(amount: Decimal, currency: str, field: str) -> int:
    """Major units as minor units, at most Stripe's maximum charge (eight digits in the minor unit, the product
    form's rule in shopapp.currencies): Stripe refuses larger amount_off, minimum_amount and rate amounts."""
    try:
        minor = currencies.parse_amount(amount, currency)
    except currencies.AmountError as error:
        raise DiscountError({field: str(error)}) from None
    maximum = currencies.get(currency).max_charge_minor
    if minor > maximum:
        shown = currencies.to_major(maximum, currency)
        raise DiscountError({field: f"Stripe's maximum charge in {currency.upper()} is {shown}."})
    return minor


def _coupon_params(coupon: Coupon) -> dict[str, Any]:
    params: dict[str, Any] = {"duration": coupon.duration, "name": coupon.name, "metadata": {"shop_id": str(coupon.id)}}
    if coupon.percent_off is not None:
        params["percent_off"] = percent_text(coupon.percent_off)
    else:
        params["amount_off"] = coupon.amount_off_cents
        params["currency"] = coupon.currency
    if coupon.max_redemptions:
        params["max_redemptions"] = coupon.max_redemptions
    if coupon.redeem_by:
        params["redeem_by"] = int(coupon.redeem_by.timestamp())
    return params


def _promotion_code_params(code: PromotionCode) -> dict[str, Any]:
    params: dict[str, Any] = {
        "promotion": {"type": "coupon", "coupon": code.coupon.stripe_coupon_id},
        "code": code.code,
        "metadata": {"shop_id": str(code.id)},
    }
    if code.max_redemptions:
        params["max_redemptions"] = code.max_redemptions
    if code.expires_at:
        params["expires_at"] = int(code.expires_at.timestamp())
    if code.minimum_amount_cents:
        params["restrictions"] = {
            "minimum_amount": code.minimum_amount_cents,
            "minimum_amount_currency": code.minimum_amount_currency,
        }
    return params


def _shipping_rate_params(rate: ShippingRate) -> dict[str, Any]:
    amounts = rate_amounts(rate)
    first, *others = amounts
    fixed: dict[str, Any] = {"amount": amounts[first], "currency": first}
    if others:
        fixed["currency_options"] = {c: {"amount": amounts[c], "tax_behavior": rate.tax_behavior} for c in others}
    params: dict[str, Any] = {
        "type": "fixed_amount",
        "display_name": rate.display_name,
        "fixed_amount": fixed,
        # Set when created: Stripe lets tax_behavior change only from "unspecified" (its API reference).
        "tax_behavior": rate.tax_behavior,
        "tax_code": SHIPPING_TAX_CODE,
        "metadata": {"shop_id": str(rate.id)},
    }
    if rate.min_days is not None or rate.max_days is not None:
        params["delivery_estimate"] = {
            key: {"unit": "business_day", "value": value}
            for key, value in (("minimum", rate.min_days), ("maximum", rate.max_days))
            if value is not None
        }
    return params


_SENDERS: list[tuple[type[Any], str, Callable[[Any], dict[str, Any]], str]] = [
    (Coupon, "stripe_coupon_id", _coupon_params, "create_coupon"),
    (PromotionCode, "stripe_promotion_code_id", _promotion_code_params, "create_promotion_code"),
    (ShippingRate, "stripe_shipping_rate_id", _shipping_rate_params, "create_shipping_rate"),
]


def _send(model: type[Row], row_id: int) -> Row:
    """Create one row's object at Stripe with its stored key (outside any transaction), then store the id."""
    _, id_column, build, method = next(s for s in _SENDERS if s[0] is model)
    with write_transaction() as session:
        row = session.get(model, row_id)
        assert row is not None
        if getattr(row, id_column):
            return row
        if isinstance(row, PromotionCode) and not row.coupon.stripe_coupon_id:
            raise NotAtStripeYet(f"Coupon {row.coupon.name!r} is not at Stripe yet: send it first.")
        params, key = build(row), row.idempotency_key
    try:
        created = getattr(get_gateway(), method)(params, key)
    except GatewayError as error:
        raise NotAtStripeYet(f"Saved, but not at Stripe yet ({error}). Use 'Send to Stripe' to try again.") from error
    with write_transaction() as session:
        row = session.get(model, row_id)
        if row is None:  # staff deleted it (delete_not_at_stripe) while Stripe was being asked
            raise NotAtStripeYet(f"Deleted here while it was sent: Stripe holds {created['id']}, unused by the shop.")
        setattr(row, id_column, str(created["id"]))
    return row


# The admin page's lists by their URL names.
SECTIONS: dict[str, type[Coupon] | type[PromotionCode] | type[ShippingRate]] = {
    "coupons": Coupon,
    "codes": PromotionCode,
    "rates": ShippingRate,
}


class CannotDelete(ValueError):
    """A coupon, promotion code or shipping rate that must stay (the message says why, for staff)."""


def delete_not_at_stripe(model: type[Coupon] | type[PromotionCode] | type[ShippingRate], row_id: int) -> str:
    """Delete a coupon, promotion code or shipping rate that is not at Stripe yet (its creation failed; no
    checkout ever offered it); returns its name. Raises LookupError for an unknown row, CannotDelete for one at
    Stripe (checkouts may have used it: it stays, switched off) or a coupon that still has promotion codes."""
    id_column = next(s[1] for s in _SENDERS if s[0] is model)
    with write_transaction() as session:
        # FOR UPDATE OF this row's table only: a promotion code loads its coupon by an outer join, and PostgreSQL
        # refuses to lock the nullable side of one (a 500 on deleting a code).
        row = session.get(model, row_id, with_for_update={"of": model})
        if row is None:
            raise LookupError(row_id)
        name = str(row)
        if stripe_id := getattr(row, id_column):
            raise CannotDelete(f"{name} is at Stripe ({stripe_id}), so it stays: switch it off instead.")
        if isinstance(row, Coupon) and session.scalar(
            select(func.count(PromotionCode.id)).where(PromotionCode.coupon_id == row.id)
        ):
            raise CannotDelete(f"Coupon {name} has promotion codes: delete those first.")
        session.delete(row)
    return name


def send_pending() -> int:
    """Send every row Stripe has not confirmed yet (coupons first, then codes, then rates), each with its key;
    returns how many were sent. Raises NotAtStripeYet at the first that still fails."""
    sent = 0
    for model, id_column, _build, _method in _SENDERS:
        with write_transaction() as session:
            ids = list(session.scalars(select(model.id).where(getattr(model, id_column).is_(None)).order_by(model.id)))
        for row_id in ids:
            _send(model, row_id)
            sent += 1
    return sent


def _actor_row(row: Row, prefix: str) -> Row:
    # A placeholder key until the id is known; the final key names the row and a random part.
    row.idempotency_key = f"{prefix}-new-{random_key_part()}"
    return row


def _form_key(prefix: str, submission: str) -> str | None:
    # The admin form's one-time token (lower-case letters, shopapp.admin.forms.OnceForm); anything else: none.
    ok = len(submission) == KEY_PART_LENGTH and submission.isascii() and submission.isalpha() and submission.islower()
    return f"{prefix}-form-{submission}" if ok else None


def _submitted(model: type[Row], prefix: str, submission: str) -> int | None:
    """The row an earlier submit of the same form saved, if any."""
    key = _form_key(prefix, submission)
    if key is None:
        return None
    with write_transaction() as session:
        return session.scalar(select(model.id).where(model.idempotency_key == key))


def _saved(row: Row, prefix: str, submission: str = "") -> int:
    form_key = _form_key(prefix, submission)
    try:
        with write_transaction() as session:
            session.add(_actor_row(row, prefix))
            session.flush()
            row.idempotency_key = form_key or f"{prefix}-{row.id}-{random_key_part()}"
            return row.id
    except IntegrityError:
        # The same form submitted twice at once: the other request saved it first (the key is unique).
        found = _submitted(type(row), prefix, submission)
        if found is None:
            raise
        return found


def create_coupon(data: CouponInput, *, actor: str, submission: str = "") -> Coupon:
    """Save a coupon and create it at Stripe (duration once). Raises DiscountError for refused input (nothing
    saved) and NotAtStripeYet when Stripe could not be asked (saved; resend later). `submission`: the form's
    one-time token; the same token again returns the coupon it made (sent to Stripe if it was not yet)."""
    if (done := _submitted(Coupon, "coupon", submission)) is not None:
        return _send(Coupon, done)
    errors: dict[str, str] = {}
    name = data.name.strip()
    if not 1 <= len(name) <= 40:
        errors["name"] = "Name the coupon (at most 40 characters): shoppers see it on the payment page."
    percent = _decimal(data.percent_off, "percent_off")
    amount = _decimal(data.amount_off, "amount_off")
    currency = data.currency.strip().lower()
    if (percent is None) == (amount is None):
        errors["percent_off"] = "Give either a percentage off or an amount off, not both."
    if percent is not None and not (0 < percent <= 100 and percent == percent.quantize(Decimal("0.01"))):
        errors["percent_off"] = "A percentage above 0 and at most 100, with at most two decimals."
    amount_cents = None
    if amount is not None:
        if not _supported(currency):
            errors["currency"] = "A currency Stripe charges in, e.g. usd or eur."
        elif amount <= 0:
            errors["amount_off"] = "An amount above 0."
        else:
            amount_cents = _minor(amount, currency, "amount_off")
    if data.max_redemptions is not None and data.max_redemptions < 1:
        errors["max_redemptions"] = "At least 1, or leave empty for no limit."
    if when := _future_error(data.redeem_by, MAX_REDEEM_BY):
        errors["redeem_by"] = when
    if errors:
        raise DiscountError(errors)
    coupon = Coupon(
        name=name,
        percent_off=percent,
        amount_off_cents=amount_cents,
        currency=currency if amount_cents is not None else None,
        duration="once",
        max_redemptions=data.max_redemptions,
        redeem_by=data.redeem_by,
        created_by=actor,
    )
    return _send(Coupon, _saved(coupon, "coupon", submission))


def create_promotion_code(
    coupon_id: int,
    code: str,
    *,
    actor: str,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    minimum_amount: str = "",
    submission: str = "",
) -> PromotionCode:
    """Save a promotion code for a coupon and create it at Stripe. Raises DiscountError (nothing saved) or
    NotAtStripeYet (saved; resend later). Codes are upper-cased: Stripe treats them case-insensitively.
    `submission` as for create_coupon."""
    if (done := _submitted(PromotionCode, "promotion-code", submission)) is not None:
        return _send(PromotionCode, done)
    errors: dict[str, str] = {}
    typed = code.strip().upper()
    if not CODE_PATTERN.fullmatch(typed):
        errors["code"] = "2 to 40 letters, digits or dashes, e.g. SPRING15."
    if max_redemptions is not None and max_redemptions < 1:
        errors["max_redemptions"] = "At least 1, or leave empty for no limit."
    with write_transaction() as session:
        coupon = session.get(Coupon, coupon_id)
        if coupon is None:
            errors["coupon"] = "Choose a coupon."
        elif session.scalar(select(PromotionCode.id).where(PromotionCode.code == typed)) is not None:
            errors["code"] = f"{typed} exists already: codes are unique."
        if coupon is not None and not coupon.stripe_coupon_id:
            # Stripe creates a code only for a coupon it has; the code would be offered but never work.
            errors["coupon"] = f"Coupon {coupon.name} is not at Stripe yet: send it first."
        if when := _future_error(expires_at):
            errors["expires_at"] = when
        elif coupon is not None and coupon.redeem_by and expires_at and _utc(expires_at) > _utc(coupon.redeem_by):
            # PromotionCodeCreateParams.expires_at: "cannot be after the coupon's redeems_by".
            errors["expires_at"] = "At most the coupon's Redeem by day."
        currency = (coupon.currency if coupon else None) or current_app.config["DEFAULT_CURRENCY"]
    minimum_cents = None
    try:
        minimum = _decimal(minimum_amount, "minimum_amount")
        if minimum is not None and minimum <= 0:
            errors["minimum_amount"] = "An amount above 0, or leave empty."
        elif minimum is not None:
            minimum_cents = _minor(minimum, currency, "minimum_amount")
    except DiscountError as error:
        errors.update(error.errors)
    if errors:
        raise DiscountError(errors)
    row = PromotionCode(
        coupon_id=coupon_id,
        code=typed,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
        minimum_amount_cents=minimum_cents,
        minimum_amount_currency=currency if minimum_cents else None,
        created_by=actor,
    )
    return _send(PromotionCode, _saved(row, "promotion-code", submission))


def set_promotion_code_active(code_id: int, active: bool) -> None:
    """Switch a code on or off at Stripe, then here (off: no longer offered, and Stripe refuses it)."""
    with write_transaction() as session:
        row = session.get(PromotionCode, code_id)
        if row is None:
            raise LookupError(code_id)
        stripe_id = row.stripe_promotion_code_id
    if stripe_id:
        try:
            get_gateway().update_promotion_code(stripe_id, active=active)
        except GatewayError as error:
            raise NotAtStripeYet(f"Stripe could not be asked ({error}); nothing changed.") from error
    with write_transaction() as session:
        row = session.get(PromotionCode, code_id)
        assert row is not None
        row.active = active


def parse_amounts(text: str) -> dict[str, int]:
    """ "usd 4.95, eur 4.50" -> {"usd": 495, "eur": 450}. Raises DiscountError naming the field."""
    amounts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        currency, _, value = part.partition(" ")
        currency = currency.lower()
        amount = _decimal(value, "amounts") if value.strip() else None
        if not _supported(currency) or amount is None or amount < 0 or currency in amounts:
            raise DiscountError({"amounts": "One amount per currency, e.g. 'usd 4.95, eur 4.50'."})
        amounts[currency] = _minor(amount, currency, "amounts")
    if not amounts:
        raise DiscountError({"amounts": "At least one amount, e.g. 'usd 4.95'."})
    return amounts


def create_shipping_rate(
    display_name: str,
    amounts: str,
    countries: str,
    *,
    actor: str,
    min_days: int | None = None,
    max_days: int | None = None,
    submission: str = "",
) -> ShippingRate:
    """Save a shipping rate (amount per currency, countries, business days) and create it at Stripe with the
    shop's tax behaviour. Raises DiscountError (nothing saved) or NotAtStripeYet (saved; resend later).
    `submission` as for create_coupon."""
    if (done := _submitted(ShippingRate, "shipping-rate", submission)) is not None:
        return _send(ShippingRate, done)
    errors: dict[str, str] = {}
    name = display_name.strip()
    if not 1 <= len(name) <= 100:
        errors["display_name"] = "Name the rate (at most 100 characters): shoppers choose it by name."
    parsed: dict[str, int] = {}
    try:
        parsed = parse_amounts(amounts)
    except DiscountError as error:
        errors.update(error.errors)
    listed = [c.strip().upper() for c in countries.split(",") if c.strip()]
    if not listed or not all(COUNTRY_PATTERN.fullmatch(c) for c in listed):
        errors["countries"] = "Two-letter country codes, e.g. 'US, CA'."
    elif unknown := [c for c in listed if c not in shipping_countries()]:
        # Stripe refuses a session whose allowed_countries names one: every checkout offering the rate would fail.
        errors["countries"] = (
            f"Stripe does not ship to {', '.join(unknown)}: use two-letter country codes, e.g. 'US, CA'."
        )
    elif beyond := [c for c in listed if not ships_to(c)]:
        # Checkout collects addresses for these countries too (amounts.current_terms): the shop would take orders
        # it does not deliver.
        errors["countries"] = (
            f"The shop does not ship to {', '.join(beyond)}: it ships to "
            f"{', '.join(current_app.config['SHIPPING_COUNTRIES'])} (SHIPPING_COUNTRIES)."
        )
    if min_days is not None and max_days is not None and min_days > max_days:
        errors["max_days"] = "At least the minimum."
    if errors:
        raise DiscountError(errors)
    rate = ShippingRate(
        display_name=name,
        amounts=json.dumps(parsed),
        countries=",".join(dict.fromkeys(listed)),
        min_days=min_days,
        max_days=max_days,
        tax_behavior=current_app.config["TAX_BEHAVIOR"],
        created_by=actor,
    )
    return _send(ShippingRate, _saved(rate, "shipping-rate", submission))


def ships_to(country: str) -> bool:
    """Whether the shop ships to a two-letter country: config SHIPPING_COUNTRIES, when it names any."""
    configured = current_app.config["SHIPPING_COUNTRIES"]
    return not configured or country.upper() in configured


def set_shipping_rate_active(rate_id: int, active: bool) -> None:
    """Offer a rate on new checkouts, or stop offering it (open checkouts keep what they offered)."""
    with write_transaction() as session:
        row = session.get(ShippingRate, rate_id)
        if row is None:
            raise LookupError(rate_id)
        row.active = active


def describe_rate(rate: ShippingRate) -> str:
    """'usd 4.95, eur 4.50 to US, CA in 2-5 business days' for staff lists."""
    money = ", ".join(f"{c} {currencies.to_major(a, c)}" for c, a in rate_amounts(rate).items())
    days = ""
    if rate.min_days is not None or rate.max_days is not None:
        days = f" in {rate.min_days or 0}-{rate.max_days or '?'} business days"
    return f"{money} to {', '.join(rate_countries(rate))}{days}"
