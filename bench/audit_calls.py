"""Stripe calls per `flask payments audit` run: `python -m bench.audit_calls [--orders 10 --orders 10000]`.

For each size, a fresh SQLite shop and an in-process local Stripe service get that many paid orders spread over
yesterday (UTC), both sides written directly (the shop's orders, and at the service a charge with its balance
transaction each, as `balance.record_charge` makes them), plus every `--refund-every`-th order refunded on both
sides. Then the audit runs (`--days 1`: yesterday and today so far) and the requests the service answered are
counted per endpoint. The books match, so the exit status is 0.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import insert

from shopapp import create_app
from shopapp.extensions import db
from shopapp.models import Order, OrderStatus, Refund, RefundOrigin, RefundStatus, User
from shopapp.services.tx import write_transaction
from stripe_emulator import Emulator, EmulatorHTTPClient, balance

BATCH = 2000


def seed_paid_orders(
    emulator: Emulator,
    orders: int,
    *,
    start: datetime,
    span: timedelta = timedelta(days=1),
    currencies: tuple[str, ...] = ("usd",),
    refund_every: int = 0,
    amount: int = 7997,
) -> list[int]:
    """Insert `orders` PAID orders of `amount` paid evenly over [start, start + span) (cycling `currencies`) into
    the shop, and at the local service a succeeded charge with its `charge` balance transaction for each (and
    a `refund` of 500 for every `refund_every`-th, recorded by the shop too). Returns the order ids."""
    with write_transaction() as session:
        user_id = session.scalar(
            insert(User).returning(User.id),
            [{"email": f"audit-{time.time_ns()}@example.com", "password_hash": "x", "is_staff": False}],
        )
    step = span / max(1, orders)
    ids: list[int] = []
    for first in range(0, orders, BATCH):
        rows = []
        for n in range(first, min(orders, first + BATCH)):
            at = start + step * n
            rows.append(
                {
                    "user_id": user_id,
                    "status": OrderStatus.PAID,
                    "total_cents": amount,
                    "currency": currencies[n % len(currencies)],
                    "created_at": at,
                    "updated_at": at,
                    "paid_at": at,
                    "stripe_payment_intent_id": f"pi_audit{n:08d}{first:04d}x",
                }
            )
        with write_transaction() as session:
            made = list(session.scalars(insert(Order).returning(Order.id, sort_by_parameter_order=True), rows))
            refunds = []
            with emulator.store.lock:
                for order_id, row in zip(made, rows, strict=True):
                    created = int(row["paid_at"].timestamp())  # type: ignore[attr-defined]
                    charge = {
                        "id": f"ch_audit{order_id:010d}x",
                        "object": "charge",
                        "amount": amount,
                        "currency": row["currency"],
                        "created": created,
                        "payment_intent": row["stripe_payment_intent_id"],
                        "status": "succeeded",
                        "description": None,
                    }
                    charge["balance_transaction"] = balance.record_charge(emulator.store, charge)["id"]
                    emulator.store.charges[str(charge["id"])] = charge
                    if refund_every and order_id % refund_every == 0:
                        refund = {
                            "id": f"re_audit{order_id:010d}x",
                            "object": "refund",
                            "amount": 500,
                            "currency": row["currency"],
                            "created": created + 60,
                            "charge": charge["id"],
                            "payment_intent": charge["payment_intent"],
                            "status": "succeeded",
                        }
                        refund["balance_transaction"] = balance.record_refund(emulator.store, refund)["id"]
                        emulator.store.refunds[str(refund["id"])] = refund
                        refunds.append(
                            {
                                "order_id": order_id,
                                "stripe_refund_id": refund["id"],
                                "amount_cents": 500,
                                "status": RefundStatus.SUCCEEDED,
                                "origin": RefundOrigin.STAFF,
                                "created_at": row["paid_at"] + timedelta(seconds=60),  # type: ignore[operator]
                            }
                        )
            if refunds:
                session.execute(insert(Refund), refunds)
        ids += made
    return ids


@contextmanager
def audit_app(emulator: Emulator, database: Path) -> Iterator[Flask]:
    """A testing app on a fresh SQLite file at `database`, its Stripe calls routed to `emulator`."""
    app = create_app(
        "testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}", STRIPE_HTTP_CLIENT=EmulatorHTTPClient(emulator)
    )
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def measure(orders: int, refund_every: int) -> dict[str, Any]:
    """One size: the audit's exit status, its seconds, and the service's answered requests per endpoint."""
    emulator = Emulator(webhook_url="http://shop.test/webhook/", sender=lambda url, body, headers: 200)
    with tempfile.TemporaryDirectory() as tmp, audit_app(emulator, Path(tmp) / "shop.db") as app:
        today = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
        seed_paid_orders(emulator, orders, start=today - timedelta(days=1), refund_every=refund_every)
        before = emulator.call_counts
        started = time.perf_counter()
        result = app.test_cli_runner().invoke(args=["payments", "audit", "--days", "1"])
        seconds = time.perf_counter() - started
        calls = {k: v - before.get(k, 0) for k, v in emulator.call_counts.items() if v - before.get(k, 0)}
    emulator.close()
    return {"orders": orders, "exit": result.exit_code, "seconds": round(seconds, 2), "calls": calls}


def main() -> None:
    """Print the calls per audit run for each --orders size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, action="append", help="paid orders in the day (repeatable)")
    parser.add_argument("--refund-every", type=int, default=10, help="refund every n-th order (0: none)")
    args = parser.parse_args()
    for size in args.orders or [10, 10_000]:
        figures = measure(size, args.refund_every)
        total = sum(figures["calls"].values())
        print(f"{figures['orders']:>6} orders/day: exit {figures['exit']}, {total} Stripe calls {figures['calls']}, "
              f"{figures['seconds']} s")  # fmt: skip


if __name__ == "__main__":
    main()
