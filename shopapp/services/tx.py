"""Transaction boundaries owned by the services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from shopapp.database import WRITE
from shopapp.extensions import db


@contextmanager
def write_transaction() -> Iterator[Session]:
    """Run the block in one write transaction: committed on success, rolled back on any error.

    A read transaction left open by the request (e.g. loading the user) is ended first, so that on
    SQLite the write transaction starts with BEGIN IMMEDIATE and holds the write lock from its first read.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options=WRITE)
    committed = False
    try:
        yield session
        session.commit()
        committed = True
    finally:
        if not committed:  # any error, including KeyboardInterrupt or a failed commit
            session.rollback()
