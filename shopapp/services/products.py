"""Staff edits to the catalogue: validated against Stripe's rules, saved in one transaction with an audit row.

Every admin write to a product goes through `create_product` / `update_product`; each changed field is
recorded in `product_changes` (who, when, old -> new) in the same transaction as the change itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from shopapp import currencies
from shopapp.extensions import db
from shopapp.models import Product, ProductChange
from shopapp.services.tx import write_transaction

MAX_NAME_LENGTH = 120
MAX_ALT_LENGTH = 200
MAX_DISPLAY_ORDER = 1_000_000
MAX_THRESHOLD = 100_000

# Fields whose changes are audited, with how each value is shown in the trail.
AUDITED = (
    "name", "price", "currency", "active", "display_order", "low_stock_threshold", "image", "image_alt", "tax_code",
)  # fmt: skip
# Stripe Tax's product tax codes look like txcd_99999999 (8 digits; Stripe's "Product tax codes" list).
TAX_CODE = re.compile(r"txcd_[0-9]{8}")


class ProductInputError(ValueError):
    """Staff input that was refused; `errors` maps a form field name to the message shown beside it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ProductInput:
    """What the staff product form sends; `price` is the decimal amount as typed (e.g. "19.99", "500")."""

    name: str
    price: str | Decimal | None
    currency: str
    description: str = ""
    active: bool = True
    display_order: int = 0
    low_stock_threshold: int | None = None
    image_alt: str = ""
    stock: int | None = None  # only on create; later changes go through the stock page
    tax_code: str = ""  # Stripe Tax's product tax code (issue 23); empty: the account's default


@dataclass(frozen=True)
class CleanProduct:
    """Validated values ready to store (price in the currency's minor units)."""

    name: str
    description: str
    price_cents: int
    currency: str
    active: bool
    display_order: int
    low_stock_threshold: int | None
    image_alt: str
    stock: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tax_code: str | None = None


def validate(data: ProductInput) -> CleanProduct:
    """Check a product against the shop's and Stripe's rules; ProductInputError with per-field messages.

    Price: exact in the currency's minor unit (no decimals for JPY), at least Stripe's minimum charge
    and at most its maximum (shopapp.currencies, from Stripe's "Minimum and maximum charge amounts").
    Currency: one of shopapp.currencies.SUPPORTED. A product must be chargeable on its own, so a
    one-unit cart is always a valid Stripe charge.
    """
    errors: dict[str, str] = {}
    name = (data.name or "").strip()
    if not name:
        errors["name"] = "Give the product a name."
    elif len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"At most {MAX_NAME_LENGTH} characters."
    currency = None
    try:
        currency = currencies.get(data.currency)
    except currencies.AmountError as error:
        errors["currency"] = str(error)
    price_cents = 0
    if data.price is None or str(data.price).strip() == "":
        errors["price"] = "Enter a price."
    elif currency is not None:
        try:
            price_cents = currencies.parse_amount(data.price, currency.code)
            currencies.check_charge(price_cents, currency.code)
        except currencies.AmountError as error:
            errors["price"] = str(error)
    if not 0 <= int(data.display_order or 0) <= MAX_DISPLAY_ORDER:
        errors["display_order"] = f"Between 0 and {MAX_DISPLAY_ORDER}."
    if data.low_stock_threshold is not None and not 0 <= data.low_stock_threshold <= MAX_THRESHOLD:
        errors["low_stock_threshold"] = f"Between 0 and {MAX_THRESHOLD}, or empty for no alert."
    if data.stock is not None and not 0 <= data.stock <= MAX_THRESHOLD:
        errors["stock"] = f"Between 0 and {MAX_THRESHOLD}, or empty for unlimited."
    alt = (data.image_alt or "").strip()
    if len(alt) > MAX_ALT_LENGTH:
        errors["image_alt"] = f"At most {MAX_ALT_LENGTH} characters."
    tax_code = (data.tax_code or "").strip().lower() or None
    if tax_code is not None and not TAX_CODE.fullmatch(tax_code):
        errors["tax_code"] = "A Stripe tax code such as txcd_99999999 (general tangible goods), or empty."
    if errors:
        raise ProductInputError(errors)
    assert currency is not None
    return CleanProduct(
        name=name,
        description=(data.description or "").strip(),
        price_cents=price_cents,
        currency=currency.code,
        active=bool(data.active),
        display_order=int(data.display_order or 0),
        low_stock_threshold=data.low_stock_threshold,
        image_alt=alt,
        stock=data.stock,
        tax_code=tax_code,
    )


def _shown(product: Product, name: str) -> str | None:
    """An audited field's value as text for the trail ("19.99 USD" for a price)."""
    if name == "price":
        return f"{currencies.to_major(product.price_cents, product.currency)} {product.currency.upper()}"
    if name == "currency":
        return product.currency.upper()
    if name == "image":
        return product.image_name
    value = getattr(product, name)
    return None if value is None else str(value)


def _snapshot(product: Product) -> dict[str, str | None]:
    return {name: _shown(product, name) for name in AUDITED}


def record_changes(session: Any, product: Product, before: dict[str, str | None], actor: str) -> list[ProductChange]:
    """Add one audit row per audited field whose shown value differs from `before` (caller's transaction)."""
    after = _snapshot(product)
    rows = [
        ProductChange(product_id=product.id, actor=actor, field=name, old_value=before[name], new_value=after[name])
        for name in AUDITED
        if before[name] != after[name]
    ]
    session.add_all(rows)
    return rows


def create_product(data: ProductInput, *, actor: str) -> Product:
    """Validate and store a new product with its "created" audit rows; ProductInputError on bad input."""
    clean = validate(data)
    with write_transaction() as session:
        product = Product(
            name=clean.name,
            description=clean.description,
            price_cents=clean.price_cents,
            currency=clean.currency,
            active=clean.active,
            display_order=clean.display_order,
            low_stock_threshold=clean.low_stock_threshold,
            image_alt=clean.image_alt,
            stock=clean.stock,
            reserved=0,
            tax_code=clean.tax_code,
        )
        session.add(product)
        session.flush()
        record_changes(session, product, dict.fromkeys(AUDITED), actor)
    return product


def update_product(product_id: int, data: ProductInput, *, actor: str) -> Product:
    """Validate and apply staff edits (not stock) with one audit row per changed field, in one transaction.

    Raises ProductInputError on bad input and LookupError if the product does not exist.
    """
    clean = validate(data)
    with write_transaction() as session:
        product = session.scalar(
            select(Product).where(Product.id == product_id).with_for_update().execution_options(populate_existing=True)
        )
        if product is None:
            raise LookupError(product_id)
        before = _snapshot(product)
        product.name = clean.name
        product.description = clean.description
        product.price_cents = clean.price_cents
        product.currency = clean.currency
        product.active = clean.active
        product.display_order = clean.display_order
        product.low_stock_threshold = clean.low_stock_threshold
        product.image_alt = clean.image_alt
        product.tax_code = clean.tax_code
        record_changes(session, product, before, actor)
    return product


def history(product_id: int, limit: int = 200) -> list[ProductChange]:
    """The product's audit trail, newest first."""
    return list(
        db.session.scalars(
            select(ProductChange)
            .where(ProductChange.product_id == product_id)
            .order_by(ProductChange.id.desc())
            .limit(limit)
        )
    )
