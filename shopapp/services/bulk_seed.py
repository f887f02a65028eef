"""Bulk demo data: many shoppers and orders inserted quickly (for `flask seed --orders N` and the benchmark).

Rows go in with Core executemany in batches, not through the ORM unit of work: 100,000 orders with
300,000 items take seconds instead of minutes. The data is realistic enough for query plans (orders
spread over a year, mixed statuses, a few items each) but is not a substitute for real payments.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, insert, select

from shopapp.extensions import db
from shopapp.models import PAID_STATUSES, CheckoutAttempt, Order, OrderItem, OrderStatus, Product, User
from shopapp.models.base import utcnow
from shopapp.models.user import new_session_token
from shopapp.services import accounts, catalog
from shopapp.services.tx import write_transaction

BATCH = 2000
# Most bulk orders are settled; a few are still open or gave up, as in a real shop.
STATUS_MIX = (
    (OrderStatus.PAID, 80),
    (OrderStatus.EXPIRED, 8),
    (OrderStatus.CANCELED, 5),
    (OrderStatus.REFUNDED, 4),
    (OrderStatus.PENDING, 3),
)


@dataclass(frozen=True)
class BulkSeedResult:
    """What a bulk seed created."""

    shoppers: int
    orders: int
    items: int


def add_shoppers(count: int, password: str, *, prefix: str = "bulk-shopper") -> list[int]:
    """Create `count` shoppers `<prefix>-<n>@example.com` sharing one password (hashed once); returns their ids."""
    if count <= 0:
        return []
    accounts.check_password_rules(password)
    password_hash = accounts.hash_password(password)
    now = utcnow()
    with write_transaction() as session:
        start = (session.scalar(select(func.max(User.id))) or 0) + 1
        rows = [
            {
                "email": f"{prefix}-{start + n}@example.com",
                "password_hash": password_hash,
                "is_staff": False,
                "session_token": new_session_token(),
                "created_at": now,
            }
            for n in range(count)
        ]
        for first in range(0, count, BATCH):
            session.execute(insert(User), rows[first : first + BATCH])
        emails = [str(row["email"]) for row in rows]
        ids = {email: uid for uid, email in session.execute(select(User.id, User.email).where(User.email.in_(emails)))}
    return [ids[email] for email in emails]


def add_orders(
    user_ids: Sequence[int],
    per_user: int,
    *,
    items_per_order: int = 3,
    status: OrderStatus | None = None,
    seed: int = 1,
) -> BulkSeedResult:
    """Give each user `per_user` orders of `items_per_order` demo-product lines.

    `status` None draws a realistic mix (mostly paid); a given status is used for every order.
    """
    catalog.seed_demo_products()
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    now = utcnow()
    total_orders = total_items = 0
    with write_transaction() as session:
        products = list(session.execute(select(Product.id, Product.name, Product.price_cents)))
        pending_rows: list[dict[str, object]] = []
        pending_lines: list[list[tuple[int, str, int, int]]] = []

        def flush() -> None:
            nonlocal total_orders, total_items
            if not pending_rows:
                return
            ids = list(
                session.scalars(
                    insert(Order).returning(Order.id, sort_by_parameter_order=True),
                    pending_rows,
                )
            )
            items = [
                {"order_id": oid, "product_id": pid, "product_name": name, "unit_price_cents": price, "quantity": qty}
                for oid, lines in zip(ids, pending_lines, strict=True)
                for pid, name, price, qty in lines
            ]
            session.execute(insert(OrderItem), items)
            # Each order's one Checkout Session, as the shop would have created it: a paid session must be the
            # shop's own to settle an order (CheckoutAttempt), so synthetic events name these ids.
            session.execute(
                insert(CheckoutAttempt),
                [
                    {
                        "order_id": oid,
                        "number": 1,
                        "idempotency_key": f"order-{oid}-attempt-1-bulkseed",
                        "stripe_session_id": bulk_session_id(oid),
                        "created_at": row["created_at"],
                    }
                    for oid, row in zip(ids, pending_rows, strict=True)
                ],
            )
            total_orders += len(ids)
            total_items += len(items)
            pending_rows.clear()
            pending_lines.clear()

        for user_id in user_ids:
            for _ in range(per_user):
                lines = [
                    (pid, name, price, rng.randint(1, 3))
                    for pid, name, price in (
                        products[(total_orders + len(pending_rows) + k) % len(products)] for k in range(items_per_order)
                    )
                ]
                order_status = status or rng.choices(statuses, weights)[0]
                created = now - timedelta(minutes=rng.randint(1, 365 * 24 * 60))
                total = sum(price * qty for _, _, price, qty in lines)
                pending_rows.append(
                    {
                        "user_id": user_id,
                        "status": order_status,
                        "total_cents": total,
                        "currency": "usd",
                        "cart_key": ",".join(f"{pid}x{qty}@{price}" for pid, _, price, qty in sorted(lines)),
                        "refunded_cents": total if order_status == OrderStatus.REFUNDED else 0,
                        "created_at": created,
                        "updated_at": created,
                        "paid_at": created if order_status in PAID_STATUSES else None,
                        "checkout_attempt": 1,
                    }
                )
                pending_lines.append(lines)
                if len(pending_rows) >= BATCH:
                    flush()
        flush()
    return BulkSeedResult(shoppers=len(user_ids), orders=total_orders, items=total_items)


def bulk_session_id(order_id: int) -> str:
    """The Checkout Session id a bulk-seeded order's attempt names (benchmarks send events for it)."""
    return f"cs_test_bulk_{order_id}"


def seed_bulk(orders: int, *, shoppers: int, password: str, items_per_order: int = 3) -> BulkSeedResult:
    """Create `shoppers` new shoppers and spread `orders` orders over them (the remainder goes to the first)."""
    shoppers = max(1, min(shoppers, orders)) if orders > 0 else max(0, shoppers)
    user_ids = add_shoppers(shoppers, password)
    if orders <= 0 or not user_ids:
        return BulkSeedResult(shoppers=len(user_ids), orders=0, items=0)
    per_user, extra = divmod(orders, len(user_ids))
    result = add_orders(user_ids, per_user, items_per_order=items_per_order)
    if extra:
        more = add_orders(user_ids[:1], extra, items_per_order=items_per_order, seed=2)
        result = BulkSeedResult(result.shoppers, result.orders + more.orders, result.items + more.items)
    return result


def bulk_shopper_range(prefix: str = "bulk-shopper") -> tuple[str, str, int] | None:
    """(first email, last email, count) of the bulk demo shoppers, for `flask seed --orders` to print."""
    pattern = f"{prefix}-%@example.com"
    row = db.session.execute(
        select(func.min(User.id), func.max(User.id), func.count(User.id)).where(User.email.like(pattern))
    ).one()
    if not row[2]:
        return None
    first = db.session.get(User, row[0])
    last = db.session.get(User, row[1])
    assert first is not None and last is not None
    return first.email, last.email, int(row[2])
