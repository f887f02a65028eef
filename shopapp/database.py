"""Engine set-up per dialect: the one place that knows SQLite and PostgreSQL differ."""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from blinker import Namespace
from flask import Flask
from sqlalchemy import ColumnElement, Select, and_, event, exc
from sqlalchemy.engine import Engine

from shopapp.extensions import db

log = logging.getLogger("shopapp.database")

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


# A pooled PostgreSQL connection idle for longer than this is pinged before use (see _configure_postgresql).
IDLE_PING_SECONDS = 10.0


def init_database(app: Flask) -> None:
    """Bind Flask-SQLAlchemy, install the per-dialect engine hooks and the products change feed."""
    # No pool_pre_ping (a round trip on every checkout, so on every request): a SQLite file has no server
    # to drop a connection, and PostgreSQL gets the idle-only ping of _configure_postgresql instead.
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        _engines.add(engine)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
            path = _sqlite_file(engine)
            if app.config["PRODUCTS_CHANGE_FEED"] and path is not None:
                app.extensions[PRODUCTS_FEED] = SQLiteDataVersion(path)
        elif engine.dialect.name == "postgresql":
            _configure_postgresql(engine)
            if app.config["PRODUCTS_CHANGE_FEED"]:
                app.extensions[PRODUCTS_FEED] = ChangeFeed(engine, PRODUCTS_CHANNEL)


def _configure_postgresql(engine: Engine) -> None:
    """Two fewer round trips per read-only request, and one fewer per checkout of a busy connection.

    On this 2-core machine a round trip to PostgreSQL costs about 0.1 ms of two processes' time, more
    than a shop page's own work; a logged-in page made seven (ping, BEGIN, three queries, ROLLBACK).
    """

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads run in autocommit: under READ COMMITTED each statement sees the latest committed rows
        # anyway, so BEGIN and ROLLBACK bought nothing. Write transactions (WRITE: every service write, and
        # the migrations) stay real transactions. psycopg applies the flag locally, without a round trip;
        # the connection is idle here, as SQLAlchemy fires this before the transaction's first statement.
        conn.connection.driver_connection.autocommit = not conn.get_execution_options().get("shop_write")

    # SQLAlchemy's documented custom "pessimistic disconnect handling": ping a pooled connection only when
    # it sat idle (a server restart or a dropped link shows up there), not on every checkout as
    # pool_pre_ping does. DisconnectionError makes the pool discard it and connect afresh.
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["shop_last_used"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Every connection leaves the pool in autocommit, so a read needs no BEGIN whoever takes it: the
        # Session (whose "begin" above turns it off again for a write) or a PlainRead on the raw connection.
        # Idle here (the pool rolled back at checkin): psycopg sets the flag locally, no round trip.
        dbapi_connection.autocommit = True
        last_used = record.info.get("shop_last_used")
        if last_used is None:
            return  # just connected
        if server_has_hung_up(dbapi_connection):
            # A restarted or stopping server sends its goodbye (FATAL 57P01) and closes the socket, so an
            # idle connection with bytes waiting is dead. Found without a round trip (a poll of the
            # socket, microseconds), so the first request after a restart gets a fresh connection
            # instead of failing once per pooled connection.
            raise exc.DisconnectionError("the server closed this pooled connection")
        if time.monotonic() - last_used < IDLE_PING_SECONDS:
            return  # in use moments ago
        try:
            dbapi_connection.execute("SELECT 1")  # in autocommit (above): no transaction left open
        except Exception as error:  # any failure: this connection is unusable
            raise exc.DisconnectionError(f"idle connection failed its ping: {type(error).__name__}") from error


# ------------------------------------------------------------------------ PostgreSQL change notifications

# The channel on which PostgreSQL announces every committed change to `products` (a statement trigger,
# models/product.py and migration 0018), and the app.extensions key of the feed that listens to it.
PRODUCTS_CHANNEL = "shop_products_changed"
PRODUCTS_FEED = "shop_products_feed"
# After the listening connection failed, how long reads go to the database every time before it reconnects.
FEED_RETRY_SECONDS = 5.0

_feeds: weakref.WeakSet[ChangeFeed | SQLiteDataVersion] = weakref.WeakSet()


class ChangeFeed:
    """A number that changes whenever a table may have changed: PostgreSQL LISTEN/NOTIFY, per process.

    `generation()` returns an int; a value read from the table while the generation was g may be reused for
    as long as `generation()` still returns g. It changes when PostgreSQL delivers a notification on
    `channel` (a trigger on the table sends one at the commit of every transaction that changed it, from any
    process or node), when this process commits any transaction on `engine` (so a change made here is seen
    at once, before its notification comes back), and when the listening connection is (re)made. It returns
    None when nothing can be promised (the listening connection is down, or not made yet after a failure):
    then read the table every time.

    Why: the shop page's one products query was a round trip to PostgreSQL on every view (a third of an
    anonymous page's time on 2 cores, py-spy, issue 25) though products change rarely. The listening
    connection is one extra connection per worker process; checking it is a poll of its socket, no round
    trip. It needs a direct connection to PostgreSQL (a transaction-pooling proxy drops notifications):
    behind one, set PRODUCTS_CHANGE_FEED=0.
    """

    def __init__(self, engine: Engine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = os.getpid()
        self._generation = 0
        self._retry_at = 0.0
        # Before the COMMIT is sent: a reader in between re-reads the old rows under the new number, and the
        # notification that follows the commit moves the number on again.
        event.listen(engine, "commit", self._committed_here)
        _feeds.add(self)

    def _committed_here(self, _conn: Any) -> None:
        self._generation += 1

    def generation(self) -> int | None:
        """The current generation, or None when reads must go to the database (see the class)."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not use (or close: that would end the parent's session) its parent's
                # listening connection; it makes its own.
                self._pid, self._conn, self._retry_at = os.getpid(), None, 0.0
                self._generation += 1
            if self._conn is None and not self._listen():
                return None
            try:
                if select.select([self._conn.fileno()], [], [], 0)[0]:
                    # Notifications, or the server hanging up (then reading raises).
                    for _ in self._conn.notifies(timeout=0):
                        self._generation += 1
                    self._generation += 1
            except Exception as error:  # the listening connection broke: nothing promised until it is back
                log.warning("Products change feed lost its connection (%s); reading products on every view", error)
                self._drop()
                return None
            return self._generation

    def _listen(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            import psycopg

            args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
            conn = psycopg.connect(*args, **{**kwargs, "autocommit": True, "application_name": "shop-change-feed"})
            conn.execute(f'LISTEN "{self._channel}"')
        except Exception as error:  # the server is down or refuses: views read the products until it listens
            log.warning("Products change feed cannot listen (%s); retrying in %.0f s", error, FEED_RETRY_SECONDS)
            self._retry_at = time.monotonic() + FEED_RETRY_SECONDS
            return False
        self._conn = conn
        self._generation += 1  # whatever was read before the feed listened may be stale
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._generation += 1
        self._retry_at = time.monotonic() + FEED_RETRY_SECONDS
        with suppress(Exception):  # already broken: nothing to say goodbye on
            conn.close()

    def close(self) -> None:
        """Close the listening connection (an app's engine being disposed: tests, shutdown)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._drop()
            self._retry_at = 0.0


class SQLiteDataVersion:
    """SQLite's own change counter as a feed: `generation()` changes whenever any connection, in any process,
    committed a change to the database file since the last call (PRAGMA data_version on a connection of the
    feed's own that never writes, so every commit is another connection's).

    The same promise as ChangeFeed (rows read while the generation was g may be reused while it stays g),
    for any table; a pragma answered from SQLite's memory instead of a query through the ORM: the shop page's
    products query was a fifth of an anonymous view on SQLite (issue 25). None if the file cannot be opened.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        _feeds.add(self)

    def generation(self) -> int | None:
        """The file's data version as seen by the feed's connection, or None when it cannot be read."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child opens its own
                self._pid, self._conn = os.getpid(), None
            try:
                if self._conn is None:
                    # Autocommit (isolation_level None): each pragma sees the latest commit, no snapshot held.
                    self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as error:  # the views read the products until the file can be read again
                log.warning("SQLite data version unreadable (%s); reading products on this view", error)
                self._conn = None
                return None

    def close(self) -> None:
        """Close the feed's connection (test teardown, shutdown)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def close_change_feeds() -> None:
    """Close every live feed's listening connection in this process (test teardown)."""
    for feed in list(_feeds):
        feed.close()


# ------------------------------------------------------------------------------ SQLite writers take turns

# The lock file beside a SQLite database through which its writers queue (the suffix is SQLite's own style:
# `shop.db-wal`, `shop.db-shm`).
WRITE_QUEUE_SUFFIX = "-writers"
# While another process holds the turn, how long a writer sleeps between two tries (seconds). A write
# transaction here lasts a few milliseconds; SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms
# between its tries, so a second writer often slept several times as long as the first one wrote.
_TURN_POLL_SECONDS = 0.0002


class _Turns(threading.local):
    """Per thread: the open lock file of each database path, and how deeply this thread holds its turn."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.files: dict[str, int] = {}
        self.depth: dict[str, int] = {}


_turns = _Turns()


def _sqlite_file(engine: Any) -> str | None:
    """The path of the SQLite file behind `engine`, or None (another dialect, or an in-memory database)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return str(path)


def _turn_file(path: str) -> int:
    fd = _turns.files.get(path)
    if fd is None:
        fd = _turns.files[path] = os.open(path + WRITE_QUEUE_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return fd


def _take_turn(fd: int, timeout_seconds: float) -> bool:
    """Wait up to timeout_seconds for the exclusive flock on fd: True if taken, False if the wait ran out."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_TURN_POLL_SECONDS)


@contextmanager
def write_turn(engine: Any, timeout_ms: int) -> Iterator[None]:
    """On a SQLite file: wait for this writer's turn (an flock on `<database>-writers`) before its write
    transaction, and hand it on after the commit or rollback. On PostgreSQL and in-memory SQLite: nothing.

    Why: SQLite lets one writer in at a time and makes the others sleep in its busy handler (1, 2, 5, 10 ...
    ms) and retry, so under concurrent writes a worker spent a third of its time asleep in BEGIN IMMEDIATE
    while the database sat idle (py-spy on the webhook benchmark, issue 25). Queued on the lock file, the next
    writer starts within a fraction of a millisecond of the last commit.

    The turn only orders writers that take it; SQLite's own lock stays what guarantees one writer at a time.
    If the turn does not come within `timeout_ms` (a writer hung while holding it), the writer goes ahead
    without it and SQLite's busy timeout decides, as before: "database is locked" (a 503). Re-entrant per
    thread. Raises OSError if the lock file cannot be created beside the database.
    """
    path = _sqlite_file(engine)
    if path is None:
        yield
        return
    if _turns.pid != os.getpid():
        # After a fork the parent's descriptors share its locks (an flock belongs to the open file
        # description), so a child opens its own and holds no turn yet.
        _turns.__init__()  # type: ignore[misc]
    depth = _turns.depth.get(path, 0)
    if depth:  # this thread already holds the turn (a write transaction inside another's scope)
        _turns.depth[path] = depth + 1
        try:
            yield
        finally:
            _turns.depth[path] = depth
        return
    fd = _turn_file(path)
    taken = _take_turn(fd, timeout_ms / 1000)
    _turns.depth[path] = 1
    try:
        yield
    finally:
        _turns.depth[path] = 0
        if taken:
            fcntl.flock(fd, fcntl.LOCK_UN)


# SQLSTATEs of a database that is there but cannot serve now (PostgreSQL Appendix A): read-only transaction,
# admin/crash shutdown, cannot connect now, too many connections, lock or statement timeout.
_UNAVAILABLE_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03", "53300", "55P03", "57014"})
# The drivers' own classes, for errors raised outside SQLAlchemy's wrapping (the BEGIN of _on_begin below).
_DRIVER_UNAVAILABLE: tuple[type[BaseException], ...] = (sqlite3.OperationalError, sqlite3.InterfaceError)
try:
    import psycopg

    _DRIVER_UNAVAILABLE += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # psycopg is installed only where PostgreSQL is used
    pass

# How long a shopper (or Stripe) is told to wait before trying again when the database is unavailable.
RETRY_AFTER_SECONDS = 5


def is_unavailable(error: BaseException) -> bool:
    """True if `error` (or what caused it) means the database is down, locked past its timeout or read-only.

    Those are outages to wait out (503, Retry-After), not bugs (500): OperationalError covers a refused or
    dropped connection, "database is locked" and "attempt to write a readonly database" on SQLite;
    InterfaceError a connection already closed; the SQLSTATEs above PostgreSQL's read-only and shutdown cases.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)):
            return True
        if isinstance(current, _DRIVER_UNAVAILABLE):
            return True
        if getattr(current, "sqlstate", None) in _UNAVAILABLE_SQLSTATES:
            return True
        if isinstance(current, exc.DBAPIError):
            if current.connection_invalidated:
                return True
            if getattr(current.orig, "sqlstate", None) in _UNAVAILABLE_SQLSTATES:
                return True
        current = current.__cause__ or current.__context__
    return False


def server_has_hung_up(dbapi_connection: Any) -> bool:
    """True if an idle psycopg connection's socket has something to read: the server's FATAL and EOF.

    Between requests nothing is in flight, so a healthy idle connection has nothing waiting (PostgreSQL
    sends unsolicited messages only for LISTEN, which this shop does not use).
    """
    try:
        fileno = dbapi_connection.fileno()
    except Exception:  # closed or broken: certainly unusable
        return True
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


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


# --------------------------------------------------------------------------------- newest rows of one owner


def newest_first(key: Any, value: Any, row_id: Any) -> tuple[ColumnElement[bool], tuple[Any, Any]]:
    """`(where, order_by)` for "the rows whose `key` column equals `value`, newest `row_id` first", shaped so
    that both databases read them from the (`key`, `row_id`) index and stop at the LIMIT.

    Use as `select(...).where(where, ...).order_by(*order_by).limit(n)`; `key` and `row_id` are columns (ORM
    attributes or table columns), `value` a Python value or a bindparam. There must be an index on
    (`key`, `row_id`), as ix_orders_user_id_id for orders.

    Why not `key = value ORDER BY row_id DESC`: PostgreSQL's planner assumes the rows of one `key` are spread
    evenly over the primary key. Planning with the value known (every call before psycopg prepares the
    statement, and every call after on a connection whose first prepared calls were planned that way), for a
    `key` with many rows (a shopper with 1,000 orders) it expects to meet LIMIT of them soon when walking the
    primary key backwards from the newest row of the whole table, and may pick that plan over the index.
    When that shopper's orders are old, the walk reads every newer order of everyone else (21,000 rows and
    3-5 ms for the benchmark's 1,000-order shopper, growing with the shop; docs/PERFORMANCE.md round 8). A
    range that admits one value is not turned into a constant by the planner (an equality is, and is then
    dropped from ORDER BY), so ordering by `key` and `row_id` can only be served without a sort by the
    (`key`, `row_id`) index, read backwards; SQLite picks the same index. Pinned by
    tests/perf/test_query_plans.py.
    """
    return and_(key >= value, key <= value), (key.desc(), row_id.desc())


# --------------------------------------------------------------------------------- plain one-row reads

# Sent before every PlainRead statement (sender: the PlainRead; keyword `statement`: the SQL string), so
# that what counts statements through SQLAlchemy's cursor events (the query budgets, the work counts)
# counts these too: they go to the driver straight and SQLAlchemy's events never see them.
plain_read_sent = Namespace().signal("shop-plain-read-sent")


@dataclass(frozen=True)
class _ReadPlan:
    """A PlainRead compiled for one dialect: SQL string, how to lay out parameters, value converters."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in order for a positional paramstyle, else None
    binds: dict[str, Callable[[Any], Any]]  # parameter name -> the type's bind processor (only those it has)
    results: tuple[Callable[[Any], Any] | None, ...]  # per column: the type's result processor or None


class PlainRead:
    """A one-row read on a hot path, sent to the driver on a pooled connection without the ORM Session.

    `PlainRead(select(...)).first(**params)` returns the first row as a tuple of Python values (converted by
    the columns' SQLAlchemy types, as a Session would: booleans on SQLite, enums) or None. Database errors are
    raised as SQLAlchemy's DBAPIError subclasses (OperationalError and so on), so `is_unavailable` and the
    503 handler treat them as any other; a connection the driver reports dead is invalidated in the pool.

    Why: on PostgreSQL one statement through the Session (connection checkout and return through the
    Session's transaction bookkeeping, the ORM and Core execution layers, result handling) costs the worker
    about 0.25 ms of CPU, the same read on a pooled driver connection 0.09 ms (measured on this 2-core VM,
    docs/PERFORMANCE.md round 7); every logged-in request and every duplicate webhook makes one. Only for a
    single statement that needs no transaction: it runs in autocommit (PostgreSQL's READ COMMITTED statement
    sees the latest commit; SQLite's autocommit read likewise), so it never sees this request's own
    uncommitted writes: do not use it inside a write transaction for rows that transaction changes.
    The pool's events still apply (the idle ping on checkout, the last-used time on checkin).
    """

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._plans: dict[str, _ReadPlan] = {}

    def _plan(self, dialect: Any) -> _ReadPlan:
        compiled = self._statement.compile(dialect=dialect)
        binds: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binds[name] = processor
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._statement.selected_columns
        )
        plan = _ReadPlan(
            sql=compiled.string,
            positions=tuple(compiled.positiontup or ()) if dialect.positional else None,
            binds=binds,
            results=results,
        )
        self._plans[dialect.name] = plan
        return plan

    def first(self, **params: Any) -> tuple[Any, ...] | None:
        """The first row, or None. Raises sqlalchemy.exc.DBAPIError (and subclasses) on a database error."""
        engine = db.engine
        dialect = engine.dialect
        plan = self._plans.get(dialect.name) or self._plan(dialect)
        values = dict(params)  # every parameter by name: the statements use bindparam() without values
        for name, processor in plan.binds.items():
            values[name] = processor(values[name])
        args: Any = tuple(values[name] for name in plan.positions) if plan.positions is not None else values
        raw = engine.raw_connection()  # in autocommit: _configure_postgresql's checkout, SQLite's _on_connect
        try:
            cursor = raw.cursor()
            try:
                plain_read_sent.send(self, statement=plan.sql)
                cursor.execute(plan.sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as error:
            dead = dialect.is_disconnect(error, raw.dbapi_connection, None)
            if dead:
                raw.invalidate(error)
            raise exc.DBAPIError.instance(
                plan.sql, args, error, dialect.loaded_dbapi.Error, connection_invalidated=dead, dialect=dialect
            ) from error
        finally:
            raw.close()
        if row is None:
            return None
        converted = zip(row, plan.results, strict=True)
        return tuple(value if convert is None else convert(value) for value, convert in converted)
