"""The Alembic migrations produce exactly the models' schema, on SQLite and (in CI's second pass) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from shopapp import create_app
from shopapp.extensions import db


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A brand-new empty database: a SQLite file, or a fresh PostgreSQL database when CI provides one."""
    admin_url = os.environ.get("PG_ADMIN_URL")
    if not os.environ.get("TEST_DATABASE_URL") or not admin_url:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"shop_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_match_the_models(empty_database_url):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diff == [], diff
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "products", "orders", "order_items", "payment_events", "order_events", "refunds"} <= tables
        if db.engine.dialect.name == "postgresql":  # migration 0018: products announce their changes
            with db.engine.connect() as conn:
                triggers = set(conn.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
            assert "products_changed" in triggers
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
