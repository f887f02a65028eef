"""Scenario 7: the database becomes unavailable while a webhook is being processed.

PostgreSQL: this module runs its own throwaway cluster (scripts/pg.sh). A webhook is caught mid-transaction
(its event row already INSERTed, its compare-and-set waiting on a row lock the test holds), and the server is
stopped under it. The shop must answer 5xx so Stripe retries, leave no partial rows, and converge when the
service redelivers after the restart.

SQLite: a database file cannot be "stopped", and as root we cannot make it unreadable with permissions. The
way a SQLite shop loses its database in production is another process holding the write lock longer than the
busy timeout, so that is simulated here (with the busy timeout shortened to 1 s for this module's workers).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.concurrency.conftest import Setup
from tests.concurrency.harness import (
    ROOT,
    WORKERS,
    Stack,
    database_kind,
    free_port,
    fresh_database,
    migrate,
    record,
    start_stack,
    stop_stack,
    wait_until,
)

BUSY_TIMEOUT_MS = 1000


def _pg(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str | None]:
    """PostgreSQL only: a cluster of our own that the test may stop; its maintenance database URL."""
    if database_kind() != "postgresql":
        yield None
        return
    data_dir = tempfile.mkdtemp(prefix="shop-pg-outage.")
    port = free_port()
    _pg("start", data_dir, str(port))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres#{data_dir}"
    finally:
        _pg("stop", data_dir)


@pytest.fixture(scope="module")
def database_url(workdir: Path, cluster: str | None) -> Iterator[str]:
    """A fresh database on the module's own cluster (PostgreSQL) or a SQLite file, migrated."""
    admin = cluster.split("#")[0] if cluster else None
    with fresh_database(workdir, "shop_outage", pg_admin=admin) as url:
        migrate(url, workdir)
        yield url


@pytest.fixture(scope="module")
def stack(database_url: str, workdir: Path) -> Iterator[Stack]:
    """The live stack; SQLite workers give up on a held lock after 1 s instead of 15 s."""
    running = start_stack(database_url, workdir, SQLITE_BUSY_TIMEOUT_MS=str(BUSY_TIMEOUT_MS))
    yield running
    stop_stack(running)


def _partial_rows(stack: Stack, order_id: int, event_id: str) -> dict[str, object]:
    return {
        "event_rows": stack.stored_events(event_id),
        "paid_transitions": stack.paid_transitions(order_id),
        "status": stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id),
    }


def test_scenario_7_database_unavailable_during_a_webhook(
    stack: Stack, setup: Setup, cluster: str | None, held: None, kind: str
) -> None:
    """Database gone mid-webhook -> 5xx, no partial rows; after it is back, the service's redelivery converges."""
    ((user_id, _),) = setup.users(1, "s7")
    order_id, session_id = setup.checkout(user_id, {setup.product(): 1})
    stack.stripe_post(f"sessions/{session_id}/pay")
    event = stack.event_for_session("checkout.session.completed", session_id)

    if cluster is not None:
        data_dir = cluster.split("#")[1]
        locker = create_engine(stack.database_url).connect()
        locker.execute(text("SELECT id FROM orders WHERE id = :o FOR UPDATE"), {"o": order_id})
        with ThreadPoolExecutor(1) as pool:
            delivery = pool.submit(stack.deliver, event)
            wait_until(
                lambda: stack.scalar(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE orders%'"
                ),
                "the webhook's compare-and-set to wait on the row lock",
            )
            in_flight_rows = stack.stored_events(event["id"])  # inserted by the worker, not committed
            _pg("halt", data_dir)
            first_status = delivery.result(timeout=60)
        with contextlib.suppress(DBAPIError):  # its server is gone; closing may report that
            locker.close()
        _pg("resume", data_dir)
        outage = "server stopped mid-transaction"
    else:
        path = make_url(stack.database_url).database
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        in_flight_rows = 0
        try:
            first_status = stack.deliver(event)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        outage = f"write lock held > busy timeout ({BUSY_TIMEOUT_MS} ms)"

    after_outage = _partial_rows(stack, order_id, event["id"])
    stack.stripe_post("deliveries/release")  # the service delivers the held event now
    attempts = wait_until(
        lambda: (a := stack.attempts(event["id"])) and 200 <= (a[-1]["status"] or 0) < 300 and a,
        "the service's delivery to succeed",
    )
    converged = _partial_rows(stack, order_id, event["id"])
    figures = {
        "outage": outage,
        "first_status": first_status,
        "uncommitted_event_rows_seen": in_flight_rows,
        "rows_after_outage": f"events={after_outage['event_rows']} transitions={after_outage['paid_transitions']}",
        "status_after_outage": after_outage["status"],
        "service_attempts": len(attempts),
        "final_status": attempts[-1]["status"],
        "transitions": converged["paid_transitions"],
        "stored_events": converged["event_rows"],
        "status": converged["status"],
    }
    record(7, kind, figures)
    assert first_status >= 500
    assert after_outage == {"event_rows": 0, "paid_transitions": 0, "status": "pending"}
    assert in_flight_rows == 0
    assert converged == {"event_rows": 1, "paid_transitions": 1, "status": "paid"}


def _shop_backends(stack: Stack) -> int:
    """Connections the shop's workers hold to the database (the test's own engine excluded)."""
    return int(
        stack.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
    )


def test_after_a_postgresql_restart_every_workers_first_request_succeeds(
    stack: Stack, setup: Setup, cluster: str | None, kind: str
) -> None:
    """Issue 17: the first request on each worker after a restart used to fail once per pooled connection."""
    if cluster is None:
        pytest.skip("PostgreSQL only: a SQLite file has no server to restart")
    setup.product()
    http = requests.Session()

    def page() -> int:
        return http.get(stack.base_url + "/", timeout=60).status_code

    # Every worker holds a pooled connection: concurrent waves until the server counts one per worker.
    with ThreadPoolExecutor(WORKERS * 2) as pool:
        wait_until(
            lambda: (
                all(s == 200 for s in pool.map(lambda _: page(), range(WORKERS * 4)))
                and _shop_backends(stack) >= WORKERS
            ),
            "a pooled connection in every worker",
        )
        pooled_before = _shop_backends(stack)
        data_dir = cluster.split("#")[1]
        _pg("halt", data_dir)
        _pg("resume", data_dir)
        # Concurrent waves again, so that each worker's pooled (now dead) connections are checked out.
        statuses = [status for _ in range(5) for status in pool.map(lambda _: page(), range(WORKERS * 2))]
    pooled_after = _shop_backends(stack)
    record(
        10,
        kind,
        {
            "workers": WORKERS,
            "pooled_connections_before_restart": pooled_before,
            "requests_after_restart": len(statuses),
            "non_200": len([s for s in statuses if s != 200]),
            "connections_after": pooled_after,
        },
    )
    assert statuses.count(200) == len(statuses), statuses
    assert pooled_after >= 1
