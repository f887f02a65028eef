"""Fixtures for the concurrency proofs: a migrated database per module, the live stack, and setup helpers.

The database is PostgreSQL when TEST_DATABASE_URL names one (a fresh database per module is created through
PG_ADMIN_URL), else a SQLite file. Setup (users, products, orders) goes through the shop's own services in
this process; everything under test runs in other processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from shopapp import create_app
from shopapp.extensions import db
from shopapp.models import Order, Product, User
from shopapp.services import accounts, catalog, checkout
from tests.concurrency.harness import (
    PASSWORD,
    STRIPE_KEY,
    WEBHOOK_SECRET,
    Stack,
    database_kind,
    fresh_database,
    migrate,
    start_stack,
    stop_stack,
)

_PASSWORD_HASH: list[str] = []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A directory for this module's database file and process logs."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def database_url(workdir: Path) -> Iterator[str]:
    """A fresh database for the module, migrated with `flask db upgrade` (so migrations run on PostgreSQL too)."""
    with fresh_database(workdir, "shop_concurrency") as url:
        migrate(url, workdir)
        yield url


@pytest.fixture(scope="module")
def stack(database_url: str, workdir: Path) -> Iterator[Stack]:
    """gunicorn (4 sync workers, production config) + the Stripe service, on free ports."""
    running = start_stack(database_url, workdir)
    yield running
    stop_stack(running)


@dataclass
class Setup:
    """Creates shoppers, products and orders through the shop's services, in this process."""

    app: Flask

    def users(self, count: int, prefix: str) -> list[tuple[int, str]]:
        """`count` shoppers with the test password; returns (id, email) pairs."""
        emails = [f"{prefix}-{i}@example.com" for i in range(count)]
        with self.app.app_context():
            if not _PASSWORD_HASH:
                _PASSWORD_HASH.append(accounts.hash_password(PASSWORD))  # argon2 once, not per user
            db.session.add_all(User(email=e, password_hash=_PASSWORD_HASH[0]) for e in emails)
            db.session.commit()
            rows = db.session.execute(select(User.id, User.email).where(User.email.in_(emails))).all()
        by_email = {email: uid for uid, email in rows}
        return [(by_email[e], e) for e in emails]

    def product(self, *, stock: int | None = None, price_cents: int = 1999, name: str = "Widget") -> int:
        """A new active product; returns its id."""
        with self.app.app_context():
            product = Product(name=name, price_cents=price_cents, currency="usd", active=True, stock=stock)
            db.session.add(product)
            db.session.commit()
            return product.id

    def checkout(self, user_id: int, quantities: Mapping[int, int]) -> tuple[int, str]:
        """Start checkout for a shopper the way the Buy view does; returns (order id, session id)."""
        with self.app.app_context():
            fields = [(f"qty-{pid}", str(q)) for pid, q in quantities.items()]
            cart = catalog.parse_selection(fields, 10)
            started = checkout.start_checkout(
                user_id,
                cart,
                checkout.CheckoutUrls(
                    "http://127.0.0.1/success/?session_id={CHECKOUT_SESSION_ID}", "http://127.0.0.1/?checkout=canceled"
                ),
                checkout.SessionTTL(default=30, with_stock=30),
            )
            session_id = db.session.scalar(select(Order.stripe_session_id).where(Order.id == started.order_id))
            db.session.remove()
        assert session_id is not None
        return started.order_id, session_id

    def gateway_call(self, fn: Any) -> Any:
        """Run fn() inside the app context (for direct gateway calls)."""
        with self.app.app_context():
            return fn()


@pytest.fixture(scope="module")
def setup(stack: Stack) -> Iterator[Setup]:
    """Setup helpers bound to the module's database and Stripe service."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=stack.database_url,
        STRIPE_API_BASE=stack.stripe_url,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_HTTP_CLIENT=None,
    )
    with app.app_context():
        catalog.seed_demo_products()
    yield Setup(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def held(stack: Stack) -> Iterator[None]:
    """The Stripe service keeps new events back (the test delivers them itself); reset afterwards."""
    stack.stripe_post("deliveries/hold")
    yield
    stack.stripe_post("reset")


@pytest.fixture(scope="session")
def kind() -> str:
    """'sqlite' or 'postgresql' for the figures."""
    return database_kind()
