"""SQLAlchemy models; money is always integer cents in the order's currency."""

from shopapp.models.order import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Refund,
)
from shopapp.models.payment_event import PaymentEvent
from shopapp.models.product import Product, ProductChange
from shopapp.models.user import User

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINAL_STATUSES",
    "Order",
    "OrderEvent",
    "OrderItem",
    "OrderStatus",
    "PaymentEvent",
    "Product",
    "ProductChange",
    "Refund",
    "User",
]
