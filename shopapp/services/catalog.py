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
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Row, select

from shopapp import currencies
from shopapp.database import PRODUCTS_FEED
from shopapp.extensions import db
from shopapp.models import Product
from shopapp.services.tx import write_transaction

DEMO_PRODUCTS = [
    (
        "Product A",
        "A 350 ml stoneware mug, thrown by hand and glazed cream at the rim. Holds heat, survives the dishwasher, "
        "and sits just right in the hand.",
        1999,
    ),
    (
        "Product B",
        "A 28 cm navy vase with a cream band, for a single stem or a generous bunch. Watertight glaze inside; "
        "each one is a little different.",
        2999,
    ),
    (
        "Product C",
        "Three nesting serving bowls (14, 18 and 24 cm) in green, ochre and cream: salads, fruit, or the whole "
        "table's pasta. Oven and dishwasher safe.",
        3999,
    ),
]

# Stripe's Checkout Session create, `line_items`: "For `payment` mode, there is a maximum of 100 line items"
# (the SDK's SessionCreateParams docstring, generated from Stripe's OpenAPI description).
MAX_LINE_ITEMS = 100

CART_KEY_LENGTH = 255  # shopapp.models.order.Order.cart_key is String(255)

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
        """Canonical description of what is bought (and at which prices), to recognise a repeated submit.

        Readable ("1x2@1999,3x1@3999") while it fits the orders.cart_key column (CART_KEY_LENGTH); a longer cart
        (about 15 products or more) is keyed by the SHA-256 of that text, so PostgreSQL never truncates it
        into an error (SQLite does not enforce the length, which hid this).
        """
        text = ",".join(
            f"{line.product.id}x{line.quantity}@{line.product.price_cents}"
            for line in sorted(self.lines, key=lambda line: line.product.id)
        )
        if len(text) <= CART_KEY_LENGTH:
            return text
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# Stripe: product_data.images is "a list of up to 8 URLs of images for this product" (the SDK's
# SessionCreateParams...ProductData.images).
MAX_PRODUCT_IMAGES = 8


def line_items_for(
    currency: str, lines: Sequence[tuple[str, int, int]], images: Sequence[Sequence[str]] | None = None
) -> list[dict[str, Any]]:
    """Stripe Checkout line_items for (name, unit amount in minor units, quantity) lines in one currency, with
    each line's picture URLs (absolute, at most 8) as `product_data.images` when `images` gives any.

    The one builder of what a session charges: checkout sends it, and its hash decides whether an
    open session still charges what the cart would (line_items_hash).
    """
    items: list[dict[str, Any]] = []
    for index, (name, unit, quantity) in enumerate(lines):
        product_data: dict[str, Any] = {"name": name}
        urls = list(images[index])[:MAX_PRODUCT_IMAGES] if images is not None and index < len(images) else []
        if urls:
            product_data["images"] = urls
        items.append(
            {
                "price_data": {"currency": currency, "unit_amount": unit, "product_data": product_data},
                "quantity": quantity,
            }
        )
    return items


def line_items_hash(line_items: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of line_items in canonical JSON, without `product_data.images`: equal exactly when Stripe
    would charge the same lines (amounts, currency, names, quantities).

    Pictures are left out on purpose: a picture staff replaced does not change what the shopper pays for, so
    an open session showing the old picture is still the right one to send them back to (closing it would
    cancel the shopper's checkout for a cosmetic change).
    """
    # Tax fields (issue 23: `tax_behavior`, `product_data.tax_code`) are left out too: they follow the shop's
    # tax settings, which the checkout attempt's recorded terms compare on their own (services/amounts.py).
    charged = [
        {
            **item,
            "price_data": {
                **{k: v for k, v in item["price_data"].items() if k != "tax_behavior"},
                "product_data": {
                    k: v for k, v in item["price_data"]["product_data"].items() if k not in ("images", "tax_code")
                },
            },
        }
        for item in line_items
    ]
    canonical = json.dumps(charged, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
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
    image_name, image_width, image_height, image_alt); the page cache keys on every one of them.

    The rows last read are reused while the database says nothing changed since (the products feed: on
    PostgreSQL database.ChangeFeed, a committed change to `products` anywhere or any commit in this process;
    on a SQLite file database.SQLiteDataVersion, any commit to the file); otherwise, and whenever the feed
    cannot promise anything, they are read again.
    """
    feed = current_app.extensions.get(PRODUCTS_FEED)
    generation = feed.generation() if feed is not None else None
    if generation is not None:
        cached = current_app.extensions.get(_ROWS_KEY)
        if cached is not None and cached[0] == generation:
            return cached[1]
    rows = db.session.execute(_ACTIVE_PRODUCT_ROWS).all()
    if generation is not None:
        # Filed under the generation read BEFORE the query: a change committed meanwhile moves the feed on,
        # so these rows are read again on the next view.
        current_app.extensions[_ROWS_KEY] = (generation, rows)
    return rows


_ROWS_KEY = "shop_active_product_rows"


def active_product(product_id: int) -> Product | None:
    """One active product by id (its own page), or None for an unknown or inactive one."""
    return db.session.scalar(select(Product).where(Product.id == product_id, Product.active.is_(True)))


def parse_selection(fields: Iterable[tuple[str, str]], max_quantity: int) -> Cart:
    """Validate raw form fields (name, value pairs) into a Cart priced from the database.

    Only `qty-<product id>` fields (integers 0..max_quantity, each at most once) and the CSRF token are
    accepted; anything else — a price, a currency, a duplicate — is refused rather than ignored.
    """
    quantities: dict[int, int] = {}
    seen: set[str] = set()
    for name, raw in fields:
        if name in seen:
            raise SelectionError(_("The form was sent with a repeated field; please try again."))
        seen.add(name)
        if name in ALLOWED_EXTRA_FIELDS:
            continue
        match = QUANTITY_FIELD.match(name)
        if not match:
            raise SelectionError(_("The form contained an unexpected field; please reload the page."))
        text = raw.strip()
        # Up to 30 digits are read (so 999999 is "too many", not "not a number"); the limit is checked below,
        # where the product's name is known.
        if not re.fullmatch(r"[0-9]{1,30}", text):
            raise SelectionError(_("Quantities must be whole numbers."))
        quantities[int(match.group(1))] = int(text)

    wanted = {pid: qty for pid, qty in quantities.items() if qty > 0}
    if not wanted:
        raise SelectionError(_("Choose at least one product."))
    products = {
        p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(wanted), Product.active.is_(True)))
    }
    if set(wanted) - set(products):
        raise SelectionError(_("One of the chosen products is no longer available; please reload the page."))
    too_many = [products[pid] for pid in sorted(wanted) if wanted[pid] > max_quantity]
    if too_many:
        raise SelectionError(
            _(
                "You can buy at most %(limit)d of %(name)s in one order (you asked for %(wanted)s).",
                limit=max_quantity,
                name=too_many[0].name,
                wanted=f"{wanted[too_many[0].id]:,}",
            )
        )
    if len({p.currency for p in products.values()}) > 1:
        raise SelectionError(_("Products in different currencies cannot be bought together."))
    lines = tuple(CartLine(products[pid], wanted[pid]) for pid in sorted(wanted))
    cart = Cart(lines)
    check_chargeable(cart)
    return cart


def check_chargeable(cart: Cart) -> None:
    """Raise SelectionError (a message for the shopper) for a cart Stripe would refuse to charge.

    Checked before any order row is written or Stripe is called, so a refused cart changes nothing.
    Stripe's rules (the limits in shopapp.currencies, `MAX_LINE_ITEMS` above):
    - at most 100 line items in one payment-mode Checkout Session (SessionCreateParams.line_items);
    - each unit amount and the session's total at most Stripe's maximum charge for the currency, which
      is "up to eight digits" in its minor unit for every currency ("Minimum and maximum charge amounts",
      https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts; the same sentence is in the SDK's
      PaymentIntentCreateParams.amount: "a value of 99999999 for a USD charge of $999,999.99"). Prices are
      checked when staff set them, but a price can be valid and the total not: 2 x 600,000.00 USD.
    A currency the shop does not offer (a row older than the currency table) has the same 8-digit maximum.
    """
    if len(cart.lines) > MAX_LINE_ITEMS:
        raise SelectionError(
            _(
                "One payment can hold at most %(limit)d different products; this cart has %(count)d. "
                "Please buy the rest in a second order.",
                limit=MAX_LINE_ITEMS,
                count=len(cart.lines),
            )
        )
    currency = currencies.SUPPORTED.get(cart.currency)
    maximum = currency.max_charge_minor if currency is not None else currencies.MAX_CHARGE_MINOR
    for line in cart.lines:
        if line.product.price_cents > maximum:
            raise SelectionError(
                _(
                    "%(name)s costs more than our payment provider can take in one payment (%(maximum)s); "
                    "please contact us to buy it.",
                    name=line.product.name,
                    maximum=format_money(maximum, cart.currency),
                )
            )
    if cart.total_cents > maximum:
        raise SelectionError(
            _(
                "This cart comes to %(total)s, more than our payment provider can take in one payment "
                "(%(maximum)s). Please buy fewer items, or split them into separate orders.",
                total=format_money(cart.total_cents, cart.currency),
                maximum=format_money(maximum, cart.currency),
            )
        )


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
