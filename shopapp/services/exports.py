"""CSV exports for staff: orders (one row per line item, with addresses), items, payment events, users.

Every text cell is neutralised against spreadsheet formulas: defusedcsv prefixes a cell starting with
= + - @ | % with an apostrophe (OWASP "CSV Injection"), and `_cell` does the same for a leading tab or
carriage return, which defusedcsv leaves alone. Numbers stay numbers. Rows are streamed from one query
a batch of BATCH rows at a time (keyset paging), so memory stays flat however long the export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from defusedcsv import csv
from sqlalchemy import Select, select

from shopapp import currencies
from shopapp.extensions import db
from shopapp.models import Order, OrderItem, PaymentEvent, User

BATCH = 1000
KINDS = ("orders", "items", "events", "users")


def _cell(value: Any) -> Any:
    """A value as written: times in ISO 8601 UTC to the second, and a leading tab/CR made inert."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value[:1] in ("\t", "\r"):
        return "'" + value
    return value


def _amount(minor: int | None, currency: str) -> Decimal | None:
    return None if minor is None else currencies.to_major(minor, currency)


class _Line:
    """A file-like object whose write returns the text, so a csv writer yields lines."""

    def write(self, text: str) -> str:
        return text


def _id_batches(ids: Select[Any], key: Any) -> Iterator[list[int]]:
    """The ids `ids` selects, BATCH at a time in key order (keyset paging).

    Not a server-side cursor (yield_per): PostgreSQL reads run in autocommit here (shopapp/database.py),
    where a cursor cannot live; each batch is one short query instead.
    """
    last = 0
    while True:
        batch = list(db.session.scalars(ids.where(key > last).order_by(key).limit(BATCH)))
        if not batch:
            return
        yield batch
        last = batch[-1]


def write_csv(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text, one line at a time, every cell passed through _cell and defusedcsv."""
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


ADDRESS_FIELDS = ("name", "line1", "line2", "city", "postal_code", "state", "country")


def address_parts(shipping_address: str | None) -> list[str]:
    """The stored shipping address (JSON of name + address) as ADDRESS_FIELDS, blanks when absent."""
    if not shipping_address:
        return [""] * len(ADDRESS_FIELDS)
    data = json.loads(shipping_address)
    address = data.get("address") or {}
    return [str(data.get("name") or "")] + [str(address.get(key) or "") for key in ADDRESS_FIELDS[1:]]


def order_rows(order_ids: Any = None) -> Iterator[list[Any]]:
    """Header, then one row per order line: the order, its shopper, address, shipping and the line.

    `order_ids`: an optional subquery with an `id` column (the admin list's filters) limiting the orders.
    """
    yield [
        "order", "created_at", "paid_at", "status", "shopper_email", "currency", "order_total", "refunded",
        "needs_review", "review_reason", "checkout_session", "payment_intent",
        *(f"ship_{name}" for name in ADDRESS_FIELDS), "shipped_at", "carrier", "tracking_number",
        "product", "quantity", "unit_price", "line_total",
        "subtotal", "discount", "promotion_code", "shipping", "shipping_rate", "tax", "tax_behavior",
        "invoice_url", "invoice_pdf",
    ]  # fmt: skip
    statement = (
        select(Order, User.email, OrderItem)
        .join(User, User.id == Order.user_id)
        .outerjoin(OrderItem, OrderItem.order_id == Order.id)
        .order_by(Order.id, OrderItem.id)
    )
    wanted = select(Order.id)
    if order_ids is not None:
        wanted = wanted.where(Order.id.in_(select(order_ids.c.id)))
    for batch in _id_batches(wanted, Order.id):
        for order, email, item in db.session.execute(statement.where(Order.id.in_(batch))):
            currency = order.currency
            yield [
                order.id, order.created_at, order.paid_at, order.status.value, email, currency.upper(),
                _amount(order.total_cents, currency), _amount(order.refunded_cents, currency), order.needs_review,
                order.review_reason or "", order.stripe_session_id or "", order.stripe_payment_intent_id or "",
                *address_parts(order.shipping_address), order.shipped_at, order.shipping_carrier,
                order.tracking_number, item.product_name if item else "", item.quantity if item else None,
                _amount(item.unit_price_cents, currency) if item else None,
                _amount(item.line_total_cents, currency) if item else None,
                *_charged(order),
            ]  # fmt: skip
        db.session.expunge_all()  # a batch's objects are done with: memory stays flat on a long export


def _charged(order: Order) -> list[Any]:
    """Issue 23: what Stripe charged besides the items. The subtotal follows from the recorded amounts (the
    amount check held them to `total = subtotal - discount + shipping + exclusive tax`), so no item query."""
    currency = order.currency
    added_tax = order.amount_tax_cents if order.tax_behavior != "inclusive" else 0
    subtotal = order.total_cents + order.amount_discount_cents - order.amount_shipping_cents - added_tax
    return [
        _amount(subtotal, currency), _amount(order.amount_discount_cents, currency), order.promotion_code or "",
        _amount(order.amount_shipping_cents, currency), order.shipping_rate_name or "",
        _amount(order.amount_tax_cents, currency), order.tax_behavior or "", order.invoice_url or "",
        order.invoice_pdf_url or "",
    ]  # fmt: skip


def item_rows() -> Iterator[list[Any]]:
    """Header, then every order line with its order's currency and status."""
    yield ["order", "product_id", "product", "quantity", "unit_price", "line_total", "currency", "order_status"]
    statement = (
        select(OrderItem, Order.currency, Order.status)
        .join(Order, Order.id == OrderItem.order_id)
        .order_by(OrderItem.id)
    )
    for batch in _id_batches(select(OrderItem.id), OrderItem.id):
        for item, currency, status in db.session.execute(statement.where(OrderItem.id.in_(batch))):
            yield [
                item.order_id, item.product_id, item.product_name, item.quantity,
                _amount(item.unit_price_cents, currency), _amount(item.line_total_cents, currency),
                currency.upper(), status.value,
            ]  # fmt: skip
        db.session.expunge_all()


def event_rows() -> Iterator[list[Any]]:
    """Header, then every webhook received (without its payload)."""
    yield ["event_id", "type", "order", "received_at", "processed_at", "signature_valid", "outcome", "error"]
    columns = PaymentEvent.__table__.c
    statement = select(
        columns.stripe_event_id, columns.type, columns.order_id, columns.received_at, columns.processed_at,
        columns.signature_valid, columns.outcome, columns.error,
    ).order_by(columns.id)  # fmt: skip
    for batch in _id_batches(select(columns.id), columns.id):
        for event_id, kind, order_id, received, processed, valid, outcome, error in db.session.execute(
            statement.where(columns.id.in_(batch))
        ):
            yield [event_id, kind, order_id, received, processed, valid, outcome, error or ""]


def user_rows() -> Iterator[list[Any]]:
    """Header, then every account (never password hashes or session tokens)."""
    yield ["user", "email", "is_staff", "created_at"]
    statement = select(User.id, User.email, User.is_staff, User.created_at).order_by(User.id)
    for batch in _id_batches(select(User.id), User.id):
        for row in db.session.execute(statement.where(User.id.in_(batch))):
            yield list(row)


ROWS = {"orders": order_rows, "items": item_rows, "events": event_rows, "users": user_rows}


def export_csv(kind: str, **selection: Any) -> Iterator[str]:
    """The CSV lines of one export kind ("orders", "items", "events", "users"); KeyError for another.

    `selection` is passed to the row builder (order_rows takes `order_ids`)."""
    return write_csv(ROWS[kind](**selection))
