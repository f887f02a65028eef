"""Limited stock: holds taken with atomic conditional updates, never read-then-write.

`Product.stock` counts units free to start a checkout with (None = unlimited); `Product.reserved` counts
units held by open checkouts. Every change is one UPDATE whose WHERE clause is the rule, so concurrent
shoppers on PostgreSQL (row locks, re-checked after a wait) or SQLite (one writer) can never take a unit
twice and stock never goes below zero (a CHECK constraint backs this up).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import cast

from flask_babel import gettext as _
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.models import Order, OrderItem, OrderStatus, Product, ProductChange, Refund, RefundOrigin, RefundStatus
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services import refunds
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.stock")

# An upper bound per staff action: a typo like 100000 instead of 100 is refused, not stored.
MAX_STOCK_CHANGE = 100_000
STOCK_REFUND_ACTOR = "shop (out of stock)"


class OutOfStock(ValueError):
    """Not enough units are available for the selection (the message is for the shopper)."""


class StockError(ValueError):
    """A staff stock change that was refused (the message is for staff)."""


def _lines(order: Order) -> list[OrderItem]:
    # Always in product id order, so two transactions touching the same products lock them in the
    # same order and cannot deadlock on PostgreSQL.
    return sorted(order.items, key=lambda item: item.product_id)


def _shortage_message(session: Session, product_id: int, wanted: int) -> str:
    product = session.get(Product, product_id, populate_existing=True)
    if product is None or product.stock is None:
        return _("One of the chosen products is no longer available; please reload the page.")
    if product.stock == 0:
        held = reserved_comeback_minutes([product_id])
        if product_id in held:
            return _(
                "Sorry, the last %(name)s are reserved by shoppers who are checking out; they may come back "
                "within %(minutes)d minutes.",
                name=product.name,
                minutes=held[product_id],
            )
        return _("Sorry, %(name)s is sold out.", name=product.name)
    return _(
        "Sorry, only %(stock)d of %(name)s left; you asked for %(wanted)d. Please choose fewer.",
        stock=product.stock,
        name=product.name,
        wanted=wanted,
    )


def reserve(session: Session, order: Order) -> bool:
    """Hold the order's quantities of limited products; OutOfStock if any is short.

    Returns whether anything was held. On OutOfStock the caller's transaction must roll back, which
    returns whatever this loop had already taken.
    """
    held = False
    for item in _lines(order):
        result = session.execute(
            update(Product)
            .where(Product.id == item.product_id, Product.stock.is_not(None), Product.stock >= item.quantity)
            .values(stock=Product.stock - item.quantity, reserved=Product.reserved + item.quantity)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            item.reserved_quantity = item.quantity
            held = True
            continue
        stock = session.scalar(select(Product.stock).where(Product.id == item.product_id))
        if stock is not None:
            raise OutOfStock(_shortage_message(session, item.product_id, item.quantity))
        item.reserved_quantity = 0  # unlimited: nothing to hold
    order.stock_reserved = held
    session.flush()
    return held


def _clear_reservation_flag(session: Session, order: Order) -> bool:
    # Compare-and-set: of two processes releasing (or consuming) the same order, only one gives units back.
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.stock_reserved.is_(True))
        .values(stock_reserved=False, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, order: Order) -> bool:
    """Return held units (session expired, payment failed, order canceled); a second call does nothing."""
    if not _clear_reservation_flag(session, order):
        return False
    for item in _lines(order):
        held = item.reserved_quantity
        if held:
            # stock + n stays NULL if staff made the product unlimited meanwhile; reserved is exact either way.
            session.execute(
                update(Product)
                .where(Product.id == item.product_id)
                .values(stock=Product.stock + held, reserved=Product.reserved - held)
                .execution_options(synchronize_session=False)
            )
    session.expire(order, ["stock_reserved"])
    return True


def _mark_consumed(session: Session, order: Order) -> bool:
    # The fact "this paid order's units were taken": set once (compare-and-set), so they never are twice.
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.stock_consumed.is_(False))
        .values(stock_consumed=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Both flags' compare-and-sets in one statement, built once: consumed (False -> True) and the reservation flag
# (as this transaction read it -> False). Table columns: a plain statement, no ORM execution layer.
_order_columns = Order.__table__.c
_CONSUME = (
    update(cast(Table, Order.__table__))
    .where(
        _order_columns.id == bindparam("b_order_id"),
        _order_columns.stock_consumed.is_(False),
        _order_columns.stock_reserved == bindparam("b_reserved"),
    )
    .values(stock_consumed=True, stock_reserved=False, updated_at=bindparam("updated_at"))
)


def _mark_consumed_and_released(session: Session, order: Order) -> bool | None:
    """Mark the units taken and clear the reservation flag in one compare-and-set on both flags as read.

    Returns whether a hold was released (the flag was set) when it matched; None when either flag had changed
    since it was read (then the caller takes the two steps one by one, each its own compare-and-set).
    """
    reserved = bool(order.stock_reserved)
    result = session.execute(_CONSUME, {"b_order_id": order.id, "b_reserved": reserved, "updated_at": utcnow()})
    return reserved if result.rowcount == 1 else None  # type: ignore[attr-defined]


def consume(session: Session, order: Order) -> bool:
    """A paid order keeps its units for good, at most once. Returns False when a late payment finds them gone
    (nothing taken, stock_consumed stays False: the order is refunded instead)."""
    released = _mark_consumed_and_released(session, order)
    if released is None:
        if not _mark_consumed(session, order):
            return True  # already taken for this order: never twice
        released = _clear_reservation_flag(session, order)
    if released:
        for item in _lines(order):
            if item.reserved_quantity:
                session.execute(
                    update(Product)
                    .where(Product.id == item.product_id)
                    .values(reserved=Product.reserved - item.reserved_quantity)
                    .execution_options(synchronize_session=False)
                )
        session.expire(order, ["stock_reserved", "stock_consumed"])
        return True
    # Paid after its hold was released (an edge Stripe allows): take the units again if they are all
    # still there, all or nothing (the savepoint undoes a partial take, and the consumed mark with it).
    try:
        with session.begin_nested():
            for item in _lines(order):
                if not item.reserved_quantity:
                    continue  # sold as unlimited: nothing was ever counted for this line
                result = session.execute(
                    update(Product)
                    .where(Product.id == item.product_id, Product.stock.is_not(None), Product.stock >= item.quantity)
                    .values(stock=Product.stock - item.quantity)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    stock = session.scalar(select(Product.stock).where(Product.id == item.product_id))
                    if stock is not None:
                        raise OutOfStock(item.product_name)
    except OutOfStock:
        session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(stock_consumed=False)
            .execution_options(synchronize_session=False)
        )
        session.expire(order, ["stock_consumed"])
        return False
    session.expire(order, ["stock_consumed"])
    return True


# ---------------------------------------------------------------------------------------------
# A late payment whose units are gone: refunded automatically, never oversold


def record_shortfall(session: Session, order: Order, *, actor: str) -> None:
    """Within the PAID transaction: flag the order and record a full refund (sent after commit).

    The refund goes through the refund service like a staff refund (same key scheme, metadata and
    lifecycle), with origin SHORTFALL.
    """
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(stock_shortfall=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if order.total_cents == 0:
        # A 100%-off order (issue 23): nothing was paid, so there is nothing to refund; staff tell the shopper.
        order_rules.flag_for_review(
            session, order, "free order (100% off) completed after its stock was gone: not fulfilled", actor=actor
        )
        return
    order_rules.flag_for_review(
        session,
        order,
        "paid after its reservation was released and the stock is gone: refunded automatically",
        actor=actor,
    )
    refunds.record_refund_request(
        session,
        order,
        order.total_cents,
        "Out of stock when the late payment arrived",
        origin=RefundOrigin.SHORTFALL,
        requested_by=STOCK_REFUND_ACTOR,
    )
    session.info.setdefault(_RECORDED_SHORTFALLS, set()).add(order.id)


# The orders whose out-of-stock refund the session's transaction recorded (Session.info, kept by the session):
# after the commit, only these have a refund to send now; one queued before is the CLI's (send-refunds, cron).
_RECORDED_SHORTFALLS = "shopapp.stock.recorded_shortfalls"


def take_recorded_shortfalls(session: Session) -> set[int]:
    """The orders whose out-of-stock refund was recorded in this session since the last call (forgotten now)."""
    recorded: set[int] = session.info.pop(_RECORDED_SHORTFALLS, set())
    return recorded


def send_shortfall_refunds(order_id: int | None = None) -> int:
    """Send every recorded out-of-stock refund Stripe has not answered yet (one order, or all); how many were sent.

    Safe to repeat and to run concurrently: each refund carries its own idempotency key, so Stripe makes
    one refund whatever the number of attempts (refunds.send_refund, which also refuses to re-send one
    older than Stripe keeps keys). A failure is recorded on the order's timeline and left for the next run
    (`flask stock send-refunds`, `flask payments reconcile`).
    """
    query = (
        select(Refund.id, Refund.order_id)
        .where(
            Refund.origin == RefundOrigin.SHORTFALL,
            Refund.status == RefundStatus.PENDING,
            Refund.stripe_refund_id.is_(None),
        )
        .order_by(Refund.id)
    )
    if order_id is not None:
        query = query.where(Refund.order_id == order_id)
    # A plain read, not a write transaction: the CLI asks on a schedule, and usually nothing is due; on SQLite
    # a write transaction would take the database's write lock just to find that out.
    due = list(db.session.execute(query))
    db.session.commit()  # end the read before any call to Stripe
    sent = 0
    for refund_id, refund_order_id in due:
        outcome = refunds.send_refund(refund_id, actor=STOCK_REFUND_ACTOR)
        if outcome in (refunds.SendOutcome.SENT, refunds.SendOutcome.FOUND):
            sent += 1
            log.info("Order %s: out-of-stock refund %s sent", refund_order_id, refund_id)
        elif outcome == refunds.SendOutcome.UNREACHABLE:
            log.error("Order %s: out-of-stock refund not sent: Stripe unreachable", refund_order_id)
            with write_transaction() as session:
                order = session.get(Order, refund_order_id)
                if order is not None:
                    order_rules.record_order_event(
                        session,
                        order,
                        actor=STOCK_REFUND_ACTOR,
                        note="Automatic refund not sent yet: Stripe unreachable",
                    )
    return sent


# ---------------------------------------------------------------------------------------------
# Staff


@dataclass(frozen=True)
class StockLevel:
    """A product's counts after a staff change."""

    product_id: int
    name: str
    stock: int | None
    reserved: int


def get_product(product_id: int) -> Product | None:
    """A product with its current counts, for the staff stock page."""
    return db.session.get(Product, product_id, populate_existing=True)


def _level(session: Session, product_id: int) -> StockLevel:
    product = session.get(Product, product_id, populate_existing=True)
    if product is None:
        raise StockError("That product does not exist.")
    return StockLevel(product.id, product.name, product.stock, product.reserved)


def _check_amount(value: int, what: str) -> None:
    if not 0 <= value <= MAX_STOCK_CHANGE:
        raise StockError(f"{what} must be between 0 and {MAX_STOCK_CHANGE}.")


def _audit_stock(session: Session, product_id: int, actor: str | None, before: int | None, note: str) -> None:
    """The product's audit row for a staff stock change (same transaction); nothing when no actor is given."""
    if actor is None:
        return
    shown = "unlimited" if before is None else str(before)
    session.add(ProductChange(product_id=product_id, actor=actor, field="stock", old_value=shown, new_value=note))


def _available(session: Session, product_id: int) -> int | None:
    return session.scalar(select(Product.stock).where(Product.id == product_id))


def restock(product_id: int, add: int, *, actor: str | None = None) -> StockLevel:
    """Add `add` units to a limited product's available stock (atomic; open holds are untouched).

    With `actor`, the change is recorded in the product's audit trail in the same transaction."""
    _check_amount(add, "Units to add")
    if add == 0:
        raise StockError("Units to add must be at least 1.")
    with write_transaction() as session:
        before = _available(session, product_id) if actor else None
        result = session.execute(
            update(Product)
            .where(Product.id == product_id, Product.stock.is_not(None))
            .values(stock=Product.stock + add)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            level = _level(session, product_id)
            raise StockError(f"{level.name} has unlimited stock; set units on hand to start counting it.")
        level = _level(session, product_id)
        _audit_stock(session, product_id, actor, before, f"{level.stock} (restocked +{add})")
    log.info("Restocked product %s by %s: %s available, %s held", product_id, add, level.stock, level.reserved)
    return level


def set_on_hand(product_id: int, on_hand: int | None, *, actor: str | None = None) -> StockLevel:
    """Set units on hand (available + held by open checkouts), e.g. after a count; None makes it unlimited.

    Held units stay held: available becomes on_hand - reserved, computed in the UPDATE itself, and a
    count below what open checkouts hold is refused rather than letting those checkouts oversell.
    With `actor`, the change is recorded in the product's audit trail in the same transaction.
    """
    with write_transaction() as session:
        before = _available(session, product_id) if actor else None
        if on_hand is None:
            # Open holds are given back exactly per order line (OrderItem.reserved_quantity), so
            # `reserved` stays correct and drains to zero as those checkouts finish.
            session.execute(
                update(Product)
                .where(Product.id == product_id)
                .values(stock=None)
                .execution_options(synchronize_session=False)
            )
            _audit_stock(session, product_id, actor, before, "unlimited")
            return _level(session, product_id)
        _check_amount(on_hand, "Units on hand")
        result = session.execute(
            update(Product)
            .where(Product.id == product_id, Product.reserved <= on_hand)
            .values(stock=on_hand - Product.reserved)
            .execution_options(synchronize_session=False)
        )
        level = _level(session, product_id)
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise StockError(
                f"{level.reserved} units of {level.name} are held by open checkouts; "
                f"units on hand cannot be fewer than that."
            )
        _audit_stock(session, product_id, actor, before, f"{level.stock} (counted {on_hand} on hand)")
    log.info("Set product %s on hand to %s: %s available, %s held", product_id, on_hand, level.stock, level.reserved)
    return level


def reserved_comeback_minutes(product_ids: Sequence[int]) -> dict[int, int]:
    """For sold-out products whose last units are held by open checkouts: minutes until the last of those
    checkouts expires at the latest (its units then come back unless it is paid), per product id.

    One query, run only when the page shows a sold-out product. Products with nothing held are absent.
    """
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(OrderItem.product_id, func.max(Order.session_expires_at))
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            OrderItem.product_id.in_(product_ids),
            OrderItem.reserved_quantity > 0,
            Order.status == OrderStatus.PENDING,
            Order.stock_reserved.is_(True),
        )
        .group_by(OrderItem.product_id)
    ).all()
    now = utcnow()
    minutes: dict[int, int] = {}
    for product_id, expires_at in rows:
        if expires_at is None:
            continue
        if expires_at.tzinfo is None:  # SQLite aggregates return naive text-parsed values
            expires_at = expires_at.replace(tzinfo=UTC)
        minutes[product_id] = max(1, math.ceil((expires_at - now).total_seconds() / 60))
    return minutes
