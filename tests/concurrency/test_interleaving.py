"""Scenario 5: a deterministic interleaving of two finalizers in two processes.

Process A is paused by the test seam `checkout.before_compare_and_set`, i.e. after it has read the order
and checked Stripe's data but before its compare-and-set. Then process B finalizes the same paid session.

- PostgreSQL: B runs to completion while A is paused (A holds no lock yet), commits PAID; A resumes and
  its `UPDATE ... WHERE status = 'pending'` matches 0 rows, so A is a no-op.
- SQLite: A's write transaction began with BEGIN IMMEDIATE, so A already holds the database's write lock
  while paused. The test proves that (another BEGIN IMMEDIATE fails at once), starts B, then releases A:
  B can only begin after A committed, and sees PAID.
Either way: exactly one transition.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Event
from queue import Empty
from typing import Any

from sqlalchemy.engine import make_url

from shopapp import create_app
from shopapp.services import checkout
from tests.concurrency.conftest import Setup
from tests.concurrency.harness import STRIPE_KEY, WEBHOOK_SECRET, Stack, record

CTX = multiprocessing.get_context("fork")
WAIT = 60.0


def _finalizer(
    name: str,
    database_url: str,
    snapshot: dict[str, Any],
    pause: bool,
    started: Event,
    paused: Event,
    go: Event,
    results: Any,
) -> None:
    """One process finalizing the session through the shop's own finalize_checkout."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_url,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_HTTP_CLIENT=None,
    )
    if pause:

        def hold_between_check_and_commit(order_id: int) -> None:
            paused.set()
            if not go.wait(WAIT):
                raise RuntimeError("never released")

        checkout.before_compare_and_set = hold_between_check_and_commit
    with app.app_context():
        started.set()
        outcome = checkout.finalize_checkout(snapshot, actor=f"finalizer {name}")
    results.put((name, outcome.value))


def _start(name: str, url: str, snapshot: dict[str, Any], pause: bool, results: Any) -> tuple[Any, Event, Event, Event]:
    started, paused, go = CTX.Event(), CTX.Event(), CTX.Event()
    proc = CTX.Process(target=_finalizer, args=(name, url, snapshot, pause, started, paused, go, results))
    proc.start()
    return proc, started, paused, go


def _collect(results: Any, count: int) -> dict[str, str]:
    collected: dict[str, str] = {}
    try:
        for _ in range(count):
            name, outcome = results.get(timeout=WAIT)
            collected[name] = outcome
    except Empty:
        raise AssertionError(f"finalizers did not report in time: {collected}") from None
    return collected


def test_scenario_5_finalizer_paused_between_check_and_commit(
    stack: Stack, setup: Setup, held: None, kind: str
) -> None:
    """A pauses between its checks and its compare-and-set while B finalizes -> exactly one transition."""
    ((user_id, _),) = setup.users(1, "s5")
    order_id, session_id = setup.checkout(user_id, {setup.product(): 1})
    stack.stripe_post(f"sessions/{session_id}/pay")
    snapshot = stack.stripe_get("sessions")[session_id]
    assert snapshot["payment_status"] == "paid"
    results = CTX.Queue()

    proc_a, _, a_paused, a_go = _start("A", stack.database_url, snapshot, True, results)
    assert a_paused.wait(WAIT), "A never reached its compare-and-set"
    lock_held_by_a = None
    if stack.kind == "sqlite":
        probe = sqlite3.connect(make_url(stack.database_url).database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            lock_held_by_a = False
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            lock_held_by_a = "locked" in str(error)
        finally:
            probe.close()
        proc_b, b_started, _, _ = _start("B", stack.database_url, snapshot, False, results)
        assert b_started.wait(WAIT)
        a_go.set()
        outcomes = _collect(results, 2)
    else:
        proc_b, _, _, _ = _start("B", stack.database_url, snapshot, False, results)
        first = _collect(results, 1)  # B finishes while A is still paused
        a_go.set()
        outcomes = {**first, **_collect(results, 1)}
    for proc in (proc_a, proc_b):
        proc.join(WAIT)
        assert proc.exitcode == 0

    figures = {
        "A": outcomes["A"],
        "B": outcomes["B"],
        "transitions": stack.paid_transitions(order_id),
        "status": stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id),
    }
    if lock_held_by_a is not None:
        figures["write_lock_held_by_paused_A"] = lock_held_by_a
    record(5, kind, figures)
    assert (figures["transitions"], figures["status"]) == (1, "paid")
    if stack.kind == "sqlite":
        assert lock_held_by_a is True
        assert outcomes == {"A": "paid", "B": "no-op"}
    else:
        assert outcomes == {"A": "no-op", "B": "paid"}
