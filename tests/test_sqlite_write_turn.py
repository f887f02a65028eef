"""SQLite writers take turns through an flock beside the database (shopapp/database.py `write_turn`, issue 25).

Without it a second writer slept in SQLite's busy handler (1, 2, 5, 10 ... ms) while the first wrote: py-spy on
the webhook benchmark found a third of a worker's time asleep in BEGIN IMMEDIATE. These tests pin what the turn
promises: a writer waits for another's turn and goes on once it is handed on; a hung holder only delays it up
to the busy timeout, after which SQLite decides as before; write_transaction hands the turn on after its commit
and after its rollback; and PostgreSQL or an in-memory database take no turn at all.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from shopapp.database import WRITE_QUEUE_SUFFIX, write_turn
from shopapp.services.tx import write_transaction

DEADLINE_SECONDS = 30.0


def _free(lock_path: Path) -> bool:
    """True if nobody holds the turn: another open file description can take the flock at once."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_second_writer_waits_for_the_turn_and_goes_on_when_it_is_handed_on(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    holding, release, entered = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with write_turn(engine, 60_000):
            holding.set()
            release.wait(DEADLINE_SECONDS)

    def second() -> None:
        assert holding.wait(DEADLINE_SECONDS)
        with write_turn(engine, 60_000):
            entered.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert holding.wait(DEADLINE_SECONDS)
    # The second writer is queued behind the first for as long as the first holds the turn.
    assert not entered.wait(0.3)
    assert not _free(tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}")
    release.set()
    assert entered.wait(DEADLINE_SECONDS)
    for thread in threads:
        thread.join(DEADLINE_SECONDS)
    assert _free(tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}")
    engine.dispose()


def test_a_hung_holder_delays_a_writer_only_up_to_the_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    lock_path = tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}"
    # Another process's writer that never hands the turn on (a separate open file description).
    hung = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(hung, fcntl.LOCK_EX)
    went_on = threading.Event()

    def writer() -> None:
        with write_turn(engine, 50):  # goes ahead without the turn; SQLite's own lock then decides
            went_on.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert went_on.wait(DEADLINE_SECONDS)
    thread.join(DEADLINE_SECONDS)
    os.close(hung)
    engine.dispose()


def test_the_turn_is_re_entrant_in_one_thread(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with write_turn(engine, 1_000):
        with write_turn(engine, 1_000):
            assert not _free(tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}")
        assert not _free(tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}")
    assert _free(tmp_path / f"shop.db{WRITE_QUEUE_SUFFIX}")
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://nobody@127.0.0.1:9/none"])
def test_no_turn_without_a_sqlite_file(url: str, tmp_path: Path) -> None:
    engine = create_engine(url)
    with write_turn(engine, 1_000):
        pass
    assert list(tmp_path.iterdir()) == []
    engine.dispose()


def test_write_transaction_hands_the_turn_on_after_commit_and_after_rollback(app: Any, db: Any) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers need no turn: row locks queue them")
    lock_path = Path(str(db.engine.url.database) + WRITE_QUEUE_SUFFIX)
    with write_transaction():
        assert not _free(lock_path)
    assert _free(lock_path)
    with pytest.raises(RuntimeError), write_transaction():
        assert not _free(lock_path)
        raise RuntimeError("rolled back")
    assert _free(lock_path)
