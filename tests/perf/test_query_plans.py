"""A shopper's newest orders are read from the (user_id, id) index, not found by walking the primary key down
over everyone else's newer orders (shopapp.database.newest_first, docs/PERFORMANCE.md round 8).

The data is the shape that fooled PostgreSQL's planner: one shopper with many orders, all older than another
shopper's many more. `user_id = ? ORDER BY id DESC LIMIT 21` then made it walk the primary key backwards from
the newest order of the whole table (every order of the other shopper read and thrown away), a cost that
grows with the shop, not with the page. Each statement a request sends to `orders` is explained with its
real parameters: PostgreSQL's EXPLAIN ANALYZE must show no sequential scan of orders and no orders read and
discarded by a filter; SQLite's EXPLAIN QUERY PLAN no scan of orders and no sort of the orders an index found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from shopapp.extensions import db
from shopapp.models import OrderStatus
from shopapp.services import bulk_seed
from tests.conftest import PASSWORD

OLD_SHOPPER_ORDERS = 1000
NEWER_ORDERS = 20000


@pytest.fixture
def old_shopper(app: Flask) -> int:
    """A shopper with 1,000 paid orders among four others' 4,000, all older than another shopper's 20,000;
    statistics fresh."""
    old, newer, *others = bulk_seed.add_shoppers(6, PASSWORD, prefix="plans")
    # The old shopper's orders among other shoppers' (a busy shop), then a long run of newer ones.
    for _ in range(OLD_SHOPPER_ORDERS // 50):
        bulk_seed.add_orders([old, *others], 50, items_per_order=1, status=OrderStatus.PAID)
    bulk_seed.add_orders([newer], NEWER_ORDERS, items_per_order=1, status=OrderStatus.PAID)
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return old


def _plan_problems(statement: str, parameters: Any) -> list[str]:
    """What in the statement's plan reads orders it does not return (empty when none)."""
    with db.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        if db.engine.dialect.name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            return list(_postgresql_problems(plan[0]["Plan"]))
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return _sqlite_problems([(parent, detail) for _, parent, _, detail in cursor.fetchall()])


def _sqlite_problems(rows: list[tuple[int, str]]) -> list[str]:
    """A scan of all orders; or a sort at a level that picks orders by an index (not by primary key), which
    means every matching order is read before the LIMIT. Sorting a page's rows already chosen by a
    subquery (a level that only looks orders up by rowid) is fine."""
    problems = [detail for _, detail in rows if detail.startswith("SCAN orders")]
    for parent in {parent for parent, detail in rows if "TEMP B-TREE" in detail}:
        picks = [d for p, d in rows if p == parent and d.startswith("SEARCH orders") and "(rowid=?)" not in d]
        problems += [f"sort after {d}" for d in picks]
    return problems


def _postgresql_problems(node: dict[str, Any]) -> Iterator[str]:
    if node.get("Relation Name") == "orders":
        if node["Node Type"] == "Seq Scan":
            yield "sequential scan of orders"
        if node.get("Rows Removed by Filter", 0) > 0:
            where = f"{node['Node Type']} on {node.get('Index Name')}"
            yield f"{node['Rows Removed by Filter']} orders read and discarded ({where})"
    for child in node.get("Plans", ()):
        yield from _postgresql_problems(child)


def _check_plans(sent: list[tuple[str, Any]]) -> None:
    assert sent, "no statement read the orders table"
    found = [
        f"{problems} in the plan of\n{statement}\nwith {parameters}"
        for statement, parameters in sent
        if (problems := _plan_problems(statement, parameters))
    ]
    assert not found, "\n\n".join(found)


def test_my_orders_and_checkout_read_the_shoppers_own_orders_only(
    app: Flask, client, old_shopper: int, auth, buy, queries
) -> None:
    auth.login(_email(old_shopper))
    with queries.capture():
        first = client.get("/orders")
        second = client.get("/orders?page=2")
        checkout = buy(A=1)  # finds the shopper's open order, if any, to reuse or replace
    assert first.status_code == 200 and second.status_code == 200
    assert "Older orders" in first.get_data(as_text=True)
    assert checkout.status_code == 303, checkout.get_data(as_text=True)[:300]
    _check_plans(
        [
            (statement, parameters)
            for statement, parameters in zip(queries.statements, queries.parameters, strict=True)
            if statement.lstrip().upper().startswith("SELECT") and " orders" in statement and parameters is not None
        ]
    )


def _email(user_id: int) -> str:
    return db.session.execute(text("SELECT email FROM users WHERE id = :id"), {"id": user_id}).scalar_one()
