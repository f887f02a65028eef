"""Database outages answer 503 with the "busy, try again" page and Retry-After, never a 500 (issue 17, finding 4).

Three ways a SQLite shop loses its database, each on a real file: the file opened read-only, another
process holding the write lock past the busy timeout, and the database gone (its directory removed).
The PostgreSQL cases (server stopped, restarted) run against real gunicorn workers in
tests/concurrency/test_database_outage.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from config import TestingConfig
from shopapp import create_app
from shopapp.database import RETRY_AFTER_SECONDS
from shopapp.extensions import db as _db
from shopapp.models import Order, PaymentEvent
from shopapp.services import accounts, catalog
from stripe_emulator import EmulatorHTTPClient
from tests.conftest import PASSWORD, WEBHOOK_SECRET, IsolatedClient

sqlite_only = pytest.mark.skipif(bool(TestingConfig.TEST_DATABASE_URL), reason="SQLite files (PG: below, concurrency)")


def _assert_busy(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 503, text[:300]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "We are very busy right now" in text and "Traceback" not in text


@pytest.fixture
def open_app(emulator) -> Iterator:
    """Build an app over an existing database file (no schema reset), with its own app context."""
    contexts = []

    def make(url: str, **overrides):
        app = create_app(
            "testing", SQLALCHEMY_DATABASE_URI=url, STRIPE_HTTP_CLIENT=EmulatorHTTPClient(emulator), **overrides
        )
        app.test_client_class = IsolatedClient
        context = app.app_context()
        context.push()
        contexts.append(context)
        return app

    yield make
    for context in reversed(contexts):
        _db.session.remove()
        _db.engine.dispose()
        context.pop()


@pytest.fixture
def shop_file(tmp_path: Path, open_app) -> Path:
    """A SQLite file with products and a shopper, written by a normal app, then released."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "shop.db"
    open_app(f"sqlite:///{path}")
    _db.create_all()
    catalog.seed_demo_products()
    accounts.create_user("ann@example.com", PASSWORD)
    _db.session.remove()
    _db.engine.dispose()
    return path


def _logged_in(app):
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": "ann@example.com", "password": PASSWORD}).status_code == 302
    return browser


def _counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM payment_events").fetchone()[0]
    return orders, events


def _signed_event(emulator) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": "evt_outage", "object": "event", "type": "unknown.type", "data": {"object": {}}}).encode()
    return body, {"Stripe-Signature": emulator.sign(body), "Content-Type": "application/json"}


@sqlite_only
def test_read_only_database_file(open_app, shop_file: Path, emulator) -> None:
    app = open_app(f"sqlite:///file:{shop_file}?mode=ro&uri=true")
    browser = app.test_client()
    assert browser.get("/").status_code == 200  # reads still work
    before = _counts(shop_file)
    # Every write is refused by SQLite ("attempt to write a readonly database"): 503, nothing changes.
    _assert_busy(
        browser.post("/account/signup", data={"email": "new@example.com", "password": PASSWORD, "confirm": PASSWORD})
    )
    body, headers = _signed_event(emulator)
    webhook = browser.post("/webhook/", data=body, headers=headers)
    assert webhook.status_code == 503 and webhook.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert _counts(shop_file) == before


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process's connection holding SQLite's write lock."""
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@sqlite_only
def test_database_locked_past_its_busy_timeout(open_app, shop_file: Path, emulator) -> None:
    app = open_app(f"sqlite:///{shop_file}", SQLITE_BUSY_TIMEOUT_MS=200)
    emulator.deliverer.sender = lambda url, body, headers: 200
    browser = _logged_in(app)
    products = catalog.list_active_products()
    _db.session.remove()
    before = _counts(shop_file)
    with write_lock_held(shop_file):
        assert browser.get("/").status_code == 200  # WAL: readers are not blocked by a writer
        _assert_busy(browser.post("/checkout", data={f"qty-{products[0].id}": "1"}))
        body, headers = _signed_event(emulator)
        webhook = browser.post("/webhook/", data=body, headers=headers)
        assert webhook.status_code == 503
    assert _counts(shop_file) == before
    # Once the lock is released the same requests succeed.
    assert browser.post("/checkout", data={f"qty-{products[0].id}": "1"}).status_code == 303
    assert browser.post("/webhook/", data=body, headers=headers).status_code == 200
    assert _db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert _db.session.scalar(select(func.count()).select_from(PaymentEvent)) == 1


@sqlite_only
def test_database_gone(open_app, shop_file: Path, emulator) -> None:
    app = open_app(f"sqlite:///{shop_file}")
    browser = _logged_in(app)
    _db.session.remove()
    _db.engine.dispose()
    shutil.rmtree(shop_file.parent)  # the volume went away: "unable to open database file"
    for path in ("/", "/account/login", "/?page=2"):
        _assert_busy(browser.get(path))  # the logged-in shopper's user row cannot even be loaded
    _assert_busy(app.test_client().get("/"))  # nor the products for a visitor
    body, headers = _signed_event(emulator)
    assert app.test_client().post("/webhook/", data=body, headers=headers).status_code == 503
    assert WEBHOOK_SECRET  # signed with the app's own secret above


@pytest.mark.skipif(not os.environ.get("PG_ADMIN_URL"), reason="PostgreSQL run only (needs PG_ADMIN_URL)")
def test_read_only_postgresql_database(app, client, products, emulator) -> None:
    """A database switched to read-only (a failover replica, a full disk's emergency setting): 503, nothing changes."""
    database = _db.engine.url.database
    admin = psycopg.connect(
        make_url(os.environ["PG_ADMIN_URL"]).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    try:
        admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        _db.session.remove()
        _db.engine.dispose()  # new connections take the setting
        assert client.get("/").status_code == 200  # reads still work
        _assert_busy(
            client.post("/account/signup", data={"email": "n@example.com", "password": PASSWORD, "confirm": PASSWORD})
        )
        body, headers = _signed_event(emulator)
        response = client.post("/webhook/", data=body, headers=headers)
        assert response.status_code == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    finally:
        admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        admin.close()
        _db.session.remove()
        _db.engine.dispose()
    assert _db.session.scalar(select(func.count()).select_from(PaymentEvent)) == 0
