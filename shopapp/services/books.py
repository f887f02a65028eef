"""The books' vocabulary: movements of money on Stripe's side and the shop's, and how they are compared.

Pure functions over plain values (no database, no Stripe call), used by services/audit.py: Stripe's balance
transactions become Movements (`stripe_movements`), the shop's recorded facts are Movements too (audit.RECORDED),
and `compare` pairs them per (kind, Stripe object, currency) into Differences; `totals` sums both per UTC day.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopapp.currencies import ZERO_DECIMAL
from shopapp.services.catalog import format_money


class Kind(enum.StrEnum):
    """What a movement of money is; each is compared with its own kind only."""

    PAYMENT = "payment"  # keyed by the PaymentIntent (the shop's order names it; the charge is Stripe's)
    REFUND = "refund"  # keyed by the refund (re_...)
    DISPUTE = "dispute"  # keyed by the dispute (dp_... / du_...)
    FEE = "fee"  # Stripe's fee, keyed by the object it was charged for; compared only where the shop knows it


@dataclass(frozen=True)
class Movement:
    """Money moved on one side: signed minor units as Stripe's balance shows them (payment +, refund and
    dispute -, a fee as a positive cost), at a UTC instant, for an order when the side knows it."""

    kind: Kind
    stripe_id: str
    currency: str
    amount: int
    at: datetime
    order_id: int | None = None
    payment_intent: str | None = None  # Stripe's side: what names the order when the shop lacks the object


def plain_amount(cents: int, currency: str) -> str:
    """An amount in its currency's major unit without a symbol, as accounts show it: -500 usd -> "-5.00"."""
    return str(cents) if currency in ZERO_DECIMAL else f"{Decimal(cents).scaleb(-2):.2f}"


@dataclass(frozen=True)
class Difference:
    """One Stripe object whose amount differs between Stripe and the shop (None: that side has nothing)."""

    day: str  # ISO date, UTC
    currency: str
    kind: str
    stripe_id: str
    stripe_amount: int | None
    shop_amount: int | None
    order_id: int | None
    healed: bool = False

    def text(self) -> str:
        """E.g. "2026-12-05 usd: refund re_123 -5.00 at Stripe, not recorded (order #42)"."""

        def money(cents: int) -> str:
            return plain_amount(cents, self.currency)

        if self.shop_amount is None:
            what = f"{money(self.stripe_amount or 0)} at Stripe, not recorded"
        elif self.stripe_amount is None:
            what = f"{money(self.shop_amount)} recorded, not at Stripe"
        else:
            what = f"{money(self.stripe_amount)} at Stripe, {money(self.shop_amount)} recorded"
        order = f" (order #{self.order_id})" if self.order_id is not None else ""
        healed = " - healed by this run" if self.healed else ""
        return f"{self.day} {self.currency}: {self.kind} {self.stripe_id} {what}{order}{healed}"


@dataclass(frozen=True)
class DayTotals:
    """One UTC day in one currency, both sides: Stripe's gross, fees and net; the shop's recorded sums."""

    day: str
    currency: str
    stripe_payments: int = 0
    stripe_refunds: int = 0
    stripe_disputes: int = 0
    stripe_fees: int = 0
    shop_payments: int = 0
    shop_refunds: int = 0
    shop_disputes: int = 0

    def text(self) -> str:
        """One line for the command's output."""

        def m(cents: int) -> str:
            return format_money(cents, self.currency)

        net = self.stripe_payments + self.stripe_refunds + self.stripe_disputes - self.stripe_fees
        return (
            f"{self.day} {self.currency}: Stripe paid {m(self.stripe_payments)}, refunds {m(self.stripe_refunds)}, "
            f"disputes {m(self.stripe_disputes)}, fees {m(self.stripe_fees)}, net {m(net)}; shop paid "
            f"{m(self.shop_payments)}, refunds {m(self.shop_refunds)}, disputes {m(self.shop_disputes)}"
        )


# ---------------------------------------------------------------- Stripe's side


# (balance transaction type, reporting_category) -> kind; other movements (payouts, top-ups...) are not sales.
_KINDS: dict[tuple[str, str], Kind] = {
    ("charge", "charge"): Kind.PAYMENT,
    ("payment", "charge"): Kind.PAYMENT,
    ("refund", "refund"): Kind.REFUND,
    ("payment_refund", "refund"): Kind.REFUND,
    ("refund_failure", "refund_failure"): Kind.REFUND,
    ("adjustment", "dispute"): Kind.DISPUTE,
    ("adjustment", "dispute_reversal"): Kind.DISPUTE,
}


def _source(transaction: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    source = transaction.get("source")
    if isinstance(source, Mapping):
        return str(source.get("id")), source
    return str(source), {}


def stripe_movements(transactions: Iterable[Mapping[str, Any]]) -> list[Movement]:
    """Movements from balance transactions (with `source` expanded): payments keyed by the charge's
    PaymentIntent, refunds and disputes by their own id, each fee as a Kind.FEE movement of its source."""
    movements = []
    for transaction in transactions:
        kind = _KINDS.get((str(transaction.get("type")), str(transaction.get("reporting_category"))))
        if kind is None:
            continue
        source_id, source = _source(transaction)
        payment_intent = source.get("payment_intent")
        payment_intent = str(payment_intent) if isinstance(payment_intent, str) else None
        key = payment_intent if kind == Kind.PAYMENT and payment_intent else source_id
        at = datetime.fromtimestamp(int(transaction["created"]), UTC)
        currency = str(transaction["currency"])
        movements.append(Movement(kind, key, currency, int(transaction["amount"]), at, None, payment_intent))
        if transaction.get("fee"):
            movements.append(Movement(Kind.FEE, source_id, currency, int(transaction["fee"]), at, None, payment_intent))
    return movements


# ---------------------------------------------------------------- comparing


@dataclass
class _Pair:
    stripe: int | None = None
    shop: int | None = None
    stripe_at: datetime | None = None
    shop_at: datetime | None = None
    order_id: int | None = None
    payment_intent: str | None = None


def _pairs(stripe: list[Movement], shop: list[Movement]) -> dict[tuple[Kind, str, str], _Pair]:
    pairs: dict[tuple[Kind, str, str], _Pair] = {}
    for movement in stripe:
        pair = pairs.setdefault((movement.kind, movement.stripe_id, movement.currency), _Pair())
        pair.stripe = (pair.stripe or 0) + movement.amount
        pair.stripe_at = max(pair.stripe_at or movement.at, movement.at)
        pair.payment_intent = pair.payment_intent or movement.payment_intent
    for movement in shop:
        pair = pairs.setdefault((movement.kind, movement.stripe_id, movement.currency), _Pair())
        pair.shop = (pair.shop or 0) + movement.amount
        pair.shop_at = max(pair.shop_at or movement.at, movement.at)
        pair.order_id = pair.order_id or movement.order_id
    return pairs


def compare(stripe: list[Movement], shop: list[Movement], since: datetime) -> list[Difference]:
    """Differences per (kind, Stripe object, currency), oldest day first. Fees are compared only where the shop
    records them. Pairs whose every side lies before `since` (fetched as the edge margin) are not reported."""
    differences = []
    for (kind, stripe_id, currency), pair in _pairs(stripe, shop).items():
        if pair.stripe == pair.shop or (kind == Kind.FEE and pair.shop is None):
            continue
        latest = max(at for at in (pair.stripe_at, pair.shop_at) if at is not None)
        if latest < since:
            continue
        day = (pair.stripe_at or pair.shop_at or latest).date().isoformat()
        differences.append(Difference(day, currency, kind.value, stripe_id, pair.stripe, pair.shop, pair.order_id))
    return sorted(differences, key=lambda d: (d.day, d.currency, d.kind, d.stripe_id))


def totals(stripe: list[Movement], shop: list[Movement], since: datetime) -> list[DayTotals]:
    """Both sides summed per UTC day and currency from `since` on."""
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for side, movements in (("stripe", stripe), ("shop", shop)):
        for m in movements:
            if m.at < since:
                continue
            name = {Kind.PAYMENT: "payments", Kind.REFUND: "refunds", Kind.DISPUTE: "disputes", Kind.FEE: "fees"}[
                m.kind
            ]
            if side == "shop" and m.kind == Kind.FEE:
                continue
            day = sums.setdefault((m.at.date().isoformat(), m.currency), {})
            day[f"{side}_{name}"] = day.get(f"{side}_{name}", 0) + m.amount
    return [DayTotals(day, currency, **values) for (day, currency), values in sorted(sums.items())]
