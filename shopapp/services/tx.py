"""Transaction boundaries owned by the services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.orm import Session

from shopapp.database import WRITE, write_turn
from shopapp.extensions import db


@contextmanager
def write_transaction() -> Iterator[Session]:
    """Run the block in one write transaction: committed on success, rolled back on any error.

    A read transaction left open by the request (e.g. loading the user) is ended first, so that on
    SQLite the write transaction starts with BEGIN IMMEDIATE and holds the write lock from its first read.
    On a SQLite file, writers queue for their turn first (database.write_turn), so that a second writer
    starts as soon as the first commits instead of sleeping in SQLite's busy handler.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    with write_turn(session.get_bind(), current_app.config["SQLITE_BUSY_TIMEOUT_MS"]):
        session.connection(execution_options=WRITE)
        committed = False
        try:
            yield session
            session.commit()
            committed = True
        finally:
            if not committed:  # any error, including KeyboardInterrupt or a failed commit
                session.rollback()
