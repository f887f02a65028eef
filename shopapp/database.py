"""Engine set-up per dialect: the one place that knows SQLite and PostgreSQL differ."""

from __future__ import annotations

import os
import weakref
from typing import Any

from flask import Flask
from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine

from shopapp.extensions import db

# Session.connection(execution_options=WRITE) makes SQLite take the write lock at BEGIN,
# so two writers never both read and then fail to upgrade their lock ("database is locked").
WRITE = {"shop_write": True}


# Engines of every live app in this process; weak so that apps built by tests can be freed.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    # Pooled connections must not cross a fork (gunicorn --preload, multiprocessing): a child that
    # reused its parent's sockets would interleave bytes with it. close=False leaves the parent's intact.
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_after_fork)


def init_database(app: Flask) -> None:
    """Bind Flask-SQLAlchemy and install the per-dialect engine hooks."""
    if make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite":
        # pool_pre_ping guards against a server that dropped an idle connection; a SQLite file has no server,
        # so the ping would only add a round trip to every request. PostgreSQL keeps it.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.pop("pool_pre_ping", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        _engines.add(engine)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Real transactions on pysqlite (SQLAlchemy docs, 'Serializable isolation / Savepoints / Transactional DDL')."""
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's BEGIN below instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: as a SQLAlchemy statement, BEGIN cost as much as the query after it.
        statement = "BEGIN IMMEDIATE" if conn.get_execution_options().get("shop_write") else "BEGIN"
        conn.connection.driver_connection.execute(statement)
