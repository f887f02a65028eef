"""The database announces product changes and the shop page's product rows follow them (issue 25).

The shop page reuses the product rows it last read until the products feed moves on (shopapp/database.py:
on PostgreSQL ChangeFeed, LISTEN on the channel a statement trigger on `products` notifies; on a SQLite file
SQLiteDataVersion, PRAGMA data_version on a connection of its own). These tests
change products the way another process or node would (its own connection, not this app's) and require the
page to show the change, waiting for the notification with a deadline, never a fixed sleep; and they break the
listening connection and require the page to fall back to reading the products, then to listen again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from shopapp.database import PRODUCTS_FEED
from shopapp.extensions import db as _db

DEADLINE_SECONDS = 30.0


@pytest.fixture
def elsewhere(app: Any) -> Callable[[str], None]:
    """Run SQL on a connection of its own, committed at once: another worker, node or `psql` session."""
    if _db.engine.dialect.name == "sqlite":

        def run_sqlite(sql: str) -> None:
            conn = sqlite3.connect(str(_db.engine.url.database), isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()

        return run_sqlite
    args, kwargs = _db.engine.dialect.create_connect_args(_db.engine.url)

    def run(sql: str) -> None:
        with psycopg.connect(*args, **{**kwargs, "autocommit": True}) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    return run


def _eventually(client: Any, wanted: str) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        html = client.get("/").get_data(as_text=True)
        if wanted in html or time.monotonic() > deadline:
            return html
        time.sleep(0.01)


def test_the_trigger_exists(app: Any, elsewhere: Callable[[str], None]) -> None:
    if _db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite needs no trigger: its data version counts every commit")
    with _db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'products_changed'")) == 1


def test_a_change_committed_elsewhere_shows_on_the_page(client: Any, products: Any, elsewhere: Any) -> None:
    _db.session.commit()
    assert "Product A" in client.get("/").get_data(as_text=True)
    assert "Product A" in client.get("/").get_data(as_text=True)  # from the reused rows
    elsewhere("UPDATE products SET name = 'Renamed elsewhere' WHERE name = 'Product A'")
    assert "Renamed elsewhere" in _eventually(client, "Renamed elsewhere")
    elsewhere("UPDATE products SET stock = 0 WHERE name = 'Product B'")
    html = _eventually(client, "Sold out")
    assert "Sold out" in html
    elsewhere("DELETE FROM products WHERE name = 'Product C'")
    html = client.get("/").get_data(as_text=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while "Product C" in html and time.monotonic() < deadline:
        html = client.get("/").get_data(as_text=True)
    assert "Product C" not in html


def test_a_change_made_in_this_process_shows_at_once(client: Any, products: Any, elsewhere: Any) -> None:
    """No waiting for the notification: a commit here moves the feed on before the next view."""
    _db.session.commit()
    client.get("/")
    products["Product A"].name = "Renamed here"
    _db.session.commit()
    assert "Renamed here" in client.get("/").get_data(as_text=True)


def test_a_lost_listener_falls_back_to_reading_and_listens_again(
    app: Any, client: Any, products: Any, elsewhere: Any
) -> None:
    if _db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's listening connection")
    _db.session.commit()
    client.get("/")
    feed = app.extensions[PRODUCTS_FEED]
    assert feed.generation() is not None
    # The listening connection is ended from outside (a server restart, a proxy timeout).
    elsewhere(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'shop-change-feed' AND datname = current_database()"
    )
    elsewhere("UPDATE products SET name = 'Changed while deaf' WHERE name = 'Product A'")
    assert "Changed while deaf" in _eventually(client, "Changed while deaf")
    # Reads go to the database until the feed listens again, then rows are reused once more.
    deadline = time.monotonic() + DEADLINE_SECONDS
    while feed.generation() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.generation() is not None
    elsewhere("UPDATE products SET name = 'Heard again' WHERE name = 'Changed while deaf'")
    assert "Heard again" in _eventually(client, "Heard again")
