"""Balance transactions: the money each charge, refund (and dispute) moves through the account's balance.

Stripe creates one balance transaction per movement of funds (docs "Balance transaction types",
docs.stripe.com/reports/balance-transaction-types): a `charge` for a successful card payment (gross amount,
Stripe's processing fee, net), a `refund` (negative) when a refund is created, a `refund_failure` (positive)
when a refund that took money fails later, and `adjustment`s for disputes (`reporting_category` `dispute`
/ `dispute_reversal`). Every one is made by `record_balance_transaction`, the one door, kept in
`store.balance_transactions` in creation order.

Fees are Stripe's standard card pricing of the country whose home currency the charge is in (see `CARD_PRICING`).
The emulated account settles in every currency it charges in (as an account with a bank account for each
currency does: docs "Multi-currency settlement"), so a transaction is in the charge's own currency and its
`exchange_rate` is null: what a shop charged in EUR is reconciled in EUR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .objects import new_id
from .store import Store

DAY = 24 * 60 * 60


@dataclass(frozen=True)
class CardPrice:
    """Stripe's standard price of a domestic card payment: a percentage of the amount (in basis points, 1/100 of
    a percent) plus a fixed fee (in the currency's minor unit), and the page that says so."""

    basis_points: int
    fixed: int
    source: str


# Stripe's public price lists, standard (domestic) online card payments, checked 2026-12-07.
CARD_PRICING: dict[str, CardPrice] = {
    "usd": CardPrice(290, 30, "stripe.com/pricing: 2.9% + 30¢ per successful transaction for domestic cards"),
    "eur": CardPrice(150, 25, "stripe.com/de/pricing: 1.5% + €0.25 for standard EEA cards"),
    "gbp": CardPrice(150, 20, "stripe.com/gb/pricing: 1.5% + 20p for standard UK cards"),
    "cad": CardPrice(290, 30, "stripe.com/en-ca/pricing: 2.9% + C$0.30 for domestic cards"),
    "aud": CardPrice(170, 30, "stripe.com/au/pricing: 1.7% + A$0.30 for standard domestic cards"),
    "jpy": CardPrice(360, 0, "stripe.com/jp/pricing: 3.6% for domestic cards"),
}
# A currency whose home price list is not above: the US rate, in that currency's minor unit (an emulator choice).
DEFAULT_CARD_PRICE = CARD_PRICING["usd"]
# Funds of a card payment become available two days later (Stripe's standard payout timing for US accounts,
# docs "Payout schedule": "2 business days"), at midnight UTC, as Stripe's `available_on` values are.
AVAILABLE_AFTER_DAYS = 2


def card_fee(amount: int, currency: str) -> int:
    """Stripe's processing fee for a successful card payment of `amount` (minor unit), rounded half up."""
    price = CARD_PRICING.get(currency, DEFAULT_CARD_PRICE)
    return (amount * price.basis_points + 5_000) // 10_000 + price.fixed  # integers: no float rounding


def _available_on(created: int, immediately: bool) -> int:
    if immediately:
        return created
    return (created // DAY + AVAILABLE_AFTER_DAYS) * DAY


def record_balance_transaction(
    store: Store,
    *,
    amount: int,
    currency: str,
    type: str,
    reporting_category: str,
    source: str | None,
    fee: int = 0,
    fee_description: str | None = None,
    description: str | None = None,
    created: int | None = None,
    available_immediately: bool = False,
) -> dict[str, Any]:
    """Create and keep one balance transaction; returns it (its `id` goes on the source's `balance_transaction`).

    `amount` is signed, in the minor unit (positive: money in; negative: money out); `fee` is positive when
    Stripe charges one and is listed as one `stripe_fee` in `fee_details` (described by `fee_description`);
    `net` is amount - fee. `type` and `reporting_category` are Stripe's values (`charge`/`charge`,
    `refund`/`refund`, `refund_failure`/`refund_failure`, `adjustment`/`dispute` or `dispute_reversal`).
    `created` defaults to the service clock. Money taken out (refunds, disputes) is available at once, money
    paid in two days later. Call with the store's lock held (every caller changes other objects with it).
    """
    created = store.clock.timestamp() if created is None else created
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": fee_description or "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    transaction_id = new_id("txn_")
    transaction: dict[str, Any] = {
        "id": transaction_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": _available_on(created, available_immediately or amount < 0),
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "pending",  # rendered from the clock: see view()
        "type": type,
    }
    store.balance_transactions[transaction_id] = transaction
    return transaction


def record_charge(store: Store, charge: dict[str, Any]) -> dict[str, Any]:
    """The `charge` balance transaction of a successful card charge, with Stripe's processing fee."""
    return record_balance_transaction(
        store,
        amount=charge["amount"],
        currency=charge["currency"],
        type="charge",
        reporting_category="charge",
        source=charge["id"],
        fee=card_fee(charge["amount"], charge["currency"]),
        description=charge.get("description"),
        created=charge["created"],
    )


def record_refund(store: Store, refund: dict[str, Any]) -> dict[str, Any]:
    """The `refund` balance transaction of a new refund: its amount taken out, no fee (Stripe does not return
    the original payment's fee on a refund: docs "Refunds", "Stripe doesn't return the processing fees")."""
    return record_balance_transaction(
        store,
        amount=-refund["amount"],
        currency=refund["currency"],
        type="refund",
        reporting_category="refund",
        source=refund["id"],
        created=refund["created"],
    )


def record_refund_failure(store: Store, refund: dict[str, Any]) -> dict[str, Any]:
    """The `refund_failure` balance transaction of a refund that failed after taking money: it comes back."""
    return record_balance_transaction(
        store,
        amount=refund["amount"],
        currency=refund["currency"],
        type="refund_failure",
        reporting_category="refund_failure",
        source=refund["id"],
        available_immediately=True,
    )


def view(transaction: dict[str, Any], now: float) -> dict[str, Any]:
    """A copy as the API shows it: `status` is `available` once `available_on` has passed, else `pending`."""
    shown = dict(transaction)
    shown["status"] = "available" if now >= transaction["available_on"] else "pending"
    return shown
