"""How requests use the database connection: reads without a transaction on PostgreSQL (one is pointless
under READ COMMITTED and costs two round trips), writes in one, and pooled connections that went bad
while idle replaced before a request sees them. SQLite keeps a real transaction for both (its reads
need one for a consistent snapshot, and BEGIN costs no round trip)."""

from __future__ import annotations

import psycopg
from sqlalchemy import select

from shopapp import database
from shopapp.extensions import db as _db
from shopapp.models import Product
from shopapp.services.tx import write_transaction


def _driver_connection():
    return _db.session.connection().connection.driver_connection


def test_reads_run_outside_a_transaction_on_postgresql_and_writes_inside_one(app, products):
    _db.session.commit()
    _db.session.execute(select(Product.id)).all()
    reading = _driver_connection()
    if _db.engine.dialect.name == "postgresql":
        from psycopg.pq import TransactionStatus

        assert reading.autocommit is True
        assert reading.info.transaction_status == TransactionStatus.IDLE  # no BEGIN was sent
        with write_transaction() as session:
            session.execute(select(Product.id).with_for_update()).all()
            writing = _driver_connection()
            assert writing.autocommit is False
            assert writing.info.transaction_status == TransactionStatus.INTRANS
    else:
        assert reading.in_transaction  # a deferred BEGIN: one snapshot for the whole read
        with write_transaction() as session:
            session.execute(select(Product.id)).all()
            assert _driver_connection().in_transaction
    assert _db.session.scalar(select(Product.name).where(Product.id == products["Product A"].id)) == "Product A"


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(app, client, products, monkeypatch):
    if _db.engine.dialect.name != "postgresql":
        # A SQLite file has no server to drop a connection, so nothing pings it (no round trip per checkout).
        assert not _db.engine.pool._pre_ping
        assert client.get("/").status_code == 200
        return
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    assert not _db.engine.pool._pre_ping  # the idle-only ping replaces pool_pre_ping's ping per checkout
    assert client.get("/").status_code == 200
    _db.session.remove()
    assert _db.engine.pool.checkedin() >= 1  # the request's connection waits in the pool
    # From outside the pool, end every session of this database, as a server restart or a dropped link would.
    with psycopg.connect(_db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended and ended[0] >= 1
    for _ in range(3):
        response = client.get("/")
        assert response.status_code == 200 and "Product A" in response.get_data(as_text=True)
