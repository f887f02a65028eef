"""Fixtures for the operations tests: an app whose Stripe service state is a file, a schema stamped at head."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from shopapp.extensions import db
from shopapp.services.operations import migration_heads
from stripe_emulator import Emulator
from tests.support import deliver_webhooks_to


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator, tmp_path: Path) -> Flask:
    """The testing app, with the local Stripe service's state file at tmp_path/stripe-emulator.db."""
    application = app_factory(STRIPE_EMULATOR_STATE=str(tmp_path / "stripe-emulator.db"))
    deliver_webhooks_to(application, emulator)
    return application


def stamp(revision: str) -> None:
    """Record the schema (built by create_all, which matches the migrations) as at revision."""
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})


@pytest.fixture
def stamped_at_head(app: Flask) -> Iterator[Callable[[str], None]]:
    """The test database stamped at the migrations' head; the table is dropped afterwards (on PostgreSQL the
    database is shared by the whole run, and other tests build it with create_all)."""
    (head,) = migration_heads(app.config["SHOP_MIGRATIONS_DIR"])
    stamp(head)
    yield stamp
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
