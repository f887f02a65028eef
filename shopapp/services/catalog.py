"""The catalogue: products, prices, and turning a shopper's selection into a cart."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel.numbers import format_currency
from sqlalchemy import Row, select

from shopapp import currencies
from shopapp.extensions import db
from shopapp.models import Product
from shopapp.services.tx import write_transaction

DEMO_PRODUCTS = [
    ("Product A", "A sturdy everyday classic, made to last.", 1999),
    ("Product B", "Twice the charm, for people who like a little more.", 2999),
    ("Product C", "Our finest: premium materials and a lifetime of use.", 3999),
]

QUANTITY_FIELD = re.compile(r"^qty-([0-9]{1,9})$")  # [0-9], not \d, which also matches other scripts' digits
# Fields a checkout form may carry besides quantities; anything else is tampering.
ALLOWED_EXTRA_FIELDS = frozenset({"csrf_token"})


class SelectionError(ValueError):
    """A user-facing reason a product selection was refused."""


@dataclass(frozen=True)
class CartLine:
    """One product and how many of it, priced from the database."""

    product: Product
    quantity: int

    @property
    def line_total_cents(self) -> int:
        """Unit price times quantity."""
        return self.product.price_cents * self.quantity


@dataclass(frozen=True)
class Cart:
    """A validated selection: at least one line, one currency."""

    lines: tuple[CartLine, ...]

    @property
    def total_cents(self) -> int:
        """Sum of the lines."""
        return sum(line.line_total_cents for line in self.lines)

    @property
    def currency(self) -> str:
        """The single currency of every line."""
        return self.lines[0].product.currency

    @property
    def line_items(self) -> list[dict[str, Any]]:
        """The Checkout Session line_items this cart sends to Stripe (see line_items_for)."""
        return line_items_for(
            self.currency, [(line.product.name, line.product.price_cents, line.quantity) for line in self.lines]
        )

    @property
    def key(self) -> str:
        """Canonical description of what is bought (and at which prices), to recognise a repeated submit."""
        return ",".join(
            f"{line.product.id}x{line.quantity}@{line.product.price_cents}"
            for line in sorted(self.lines, key=lambda line: line.product.id)
        )


def line_items_for(currency: str, lines: Sequence[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Stripe Checkout line_items for (name, unit amount in minor units, quantity) lines in one currency.

    The one builder of what a session charges: checkout sends it, and its hash decides whether an
    open session still charges what the cart would (line_items_hash).
    """
    return [
        {
            "price_data": {"currency": currency, "unit_amount": unit, "product_data": {"name": name}},
            "quantity": quantity,
        }
        for name, unit, quantity in lines
    ]


def line_items_hash(line_items: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of line_items in canonical JSON: equal exactly when Stripe would be sent the same lines."""
    canonical = json.dumps(line_items, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=8192)
def format_money(cents: int, currency: str, locale: str = "en_US") -> str:
    """Format an amount in the currency's minor units with its symbol: 1999 USD -> $19.99, 500 JPY -> ¥500."""
    # Cached: Babel takes ~50 us per call and a shopper's order list formats dozens of amounts,
    # most of them the same few prices. The result depends only on the arguments.
    # Stripe's minor units decide the digits, not CLDR's: Stripe charges HUF with two decimals where CLDR
    # shows none (175.50 would print as 176). Zero-decimal currencies use CLDR's 0; the rest the pattern's 2.
    digits = currencies.minor_units(currency)
    return format_currency(
        currencies.to_major(cents, currency), currency.upper(), locale=locale, currency_digits=digits == 0
    )


# Built once: the shop page runs it on every view.
_ACTIVE_PRODUCTS = select(Product).where(Product.active.is_(True)).order_by(Product.display_order, Product.id)


def list_active_products() -> list[Product]:
    """Active products in display order (one query)."""
    return list(db.session.scalars(_ACTIVE_PRODUCTS))


# The columns the shop page shows, as plain rows: building tracked ORM objects (identity map, instance
# state) cost about a sixth of the anonymous page, and the page only reads them. Table columns rather than
# ORM attributes, so the statement also skips the ORM's execution layer.
_products = Product.__table__.c
_ACTIVE_PRODUCT_ROWS = (
    select(
        _products.id,
        _products.name,
        _products.description,
        _products.price_cents,
        _products.currency,
        _products.stock,
        _products.image_name,
        _products.image_width,
        _products.image_height,
        _products.image_alt,
    )
    .where(_products.active.is_(True))
    .order_by(_products.display_order, _products.id)
)


def active_product_rows() -> Sequence[Row[*tuple[Any, ...]]]:
    """Active products in display order as read-only rows (id, name, description, price_cents, currency, stock,
    image_name, image_width, image_height, image_alt); the page cache keys on every one of them."""
    return db.session.execute(_ACTIVE_PRODUCT_ROWS).all()


def parse_selection(fields: Iterable[tuple[str, str]], max_quantity: int) -> Cart:
    """Validate raw form fields (name, value pairs) into a Cart priced from the database.

    Only `qty-<product id>` fields (integers 0..max_quantity, each at most once) and the CSRF token are
    accepted; anything else — a price, a currency, a duplicate — is refused rather than ignored.
    """
    quantities: dict[int, int] = {}
    seen: set[str] = set()
    for name, raw in fields:
        if name in seen:
            raise SelectionError("The form was sent with a repeated field; please try again.")
        seen.add(name)
        if name in ALLOWED_EXTRA_FIELDS:
            continue
        match = QUANTITY_FIELD.match(name)
        if not match:
            raise SelectionError("The form contained an unexpected field; please reload the page.")
        text = raw.strip()
        if not re.fullmatch(r"[0-9]{1,4}", text):
            raise SelectionError("Quantities must be whole numbers.")
        quantity = int(text)
        if quantity > max_quantity:
            raise SelectionError(f"You can buy at most {max_quantity} of each product.")
        quantities[int(match.group(1))] = quantity

    wanted = {pid: qty for pid, qty in quantities.items() if qty > 0}
    if not wanted:
        raise SelectionError("Choose at least one product.")
    products = {
        p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(wanted), Product.active.is_(True)))
    }
    if set(wanted) - set(products):
        raise SelectionError("One of the chosen products is no longer available; please reload the page.")
    if len({p.currency for p in products.values()}) > 1:
        raise SelectionError("Products in different currencies cannot be bought together.")
    lines = tuple(CartLine(products[pid], wanted[pid]) for pid in sorted(wanted))
    return Cart(lines)


def seed_demo_products() -> int:
    """Create the three demo products that are missing (by name); returns how many were created."""
    created = 0
    with write_transaction() as session:
        existing = set(session.scalars(select(Product.name)))
        for order, (name, description, price) in enumerate(DEMO_PRODUCTS):
            if name in existing:
                continue
            session.add(
                Product(
                    name=name,
                    description=description,
                    price_cents=price,
                    currency="usd",
                    active=True,
                    display_order=order,
                )
            )
            created += 1
    return created
