"""Limited stock: reservations taken with atomic conditional updates, never read-then-write."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from shopapp.models import Order, Product
from shopapp.models.base import utcnow


class OutOfStock(ValueError):
    """Not enough units are available for the selection."""


def _limited_lines(order: Order) -> list[tuple[int, int]]:
    return [(item.product_id, item.quantity) for item in order.items]


def reserve(session: Session, order: Order) -> None:
    """Hold the order's quantities of limited products; OutOfStock (and nothing held) if any is short."""
    for product_id, quantity in _limited_lines(order):
        result = session.execute(
            update(Product)
            .where(Product.id == product_id, Product.stock.is_not(None), Product.stock >= quantity)
            .values(stock=Product.stock - quantity, reserved=Product.reserved + quantity)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            unlimited = session.get(Product, product_id)
            if unlimited is not None and unlimited.stock is None:
                continue
            # The caller's transaction rolls back, returning anything this loop already took.
            name = unlimited.name if unlimited is not None else "A product"
            raise OutOfStock(f"{name} does not have enough left for that quantity.")
    order.stock_reserved = True


def _clear_reservation_flag(session: Session, order: Order) -> bool:
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.stock_reserved.is_(True))
        .values(stock_reserved=False, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, order: Order) -> None:
    """Return held units (session expired, payment failed, order canceled); a second call does nothing."""
    if not _clear_reservation_flag(session, order):
        return
    for product_id, quantity in _limited_lines(order):
        session.execute(
            update(Product)
            .where(Product.id == product_id, Product.stock.is_not(None))
            .values(stock=Product.stock + quantity, reserved=Product.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    session.expire(order, ["stock_reserved"])


def consume(session: Session, order: Order) -> bool:
    """A paid order keeps its units for good. Returns False when a late payment finds them gone."""
    if _clear_reservation_flag(session, order):
        for product_id, quantity in _limited_lines(order):
            session.execute(
                update(Product)
                .where(Product.id == product_id, Product.stock.is_not(None))
                .values(reserved=Product.reserved - quantity)
                .execution_options(synchronize_session=False)
            )
        session.expire(order, ["stock_reserved"])
        return True
    # Paid after its reservation was released: take the units now if they are all still there,
    # all or nothing (a savepoint undoes a partial take).
    try:
        with session.begin_nested():
            for product_id, quantity in _limited_lines(order):
                result = session.execute(
                    update(Product)
                    .where(Product.id == product_id, Product.stock.is_not(None), Product.stock >= quantity)
                    .values(stock=Product.stock - quantity)
                    .execution_options(synchronize_session=False)
                )
                product = session.get(Product, product_id)
                if result.rowcount == 0 and product is not None and product.stock is not None:  # type: ignore[attr-defined]
                    raise OutOfStock(product.name)
    except OutOfStock:
        return False
    return True
