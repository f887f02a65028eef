"""Query counting for the budget tests: every statement the app sends, seen by SQLAlchemy's cursor event."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from shopapp.database import plain_read_sent
from shopapp.extensions import db

# Transaction control is not a query (our SQLite BEGIN goes straight to the driver, psycopg sends its own; both
# unseen here; COMMIT/ROLLBACK may show).
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|UPSERT|MERGE|CREATE|DROP|ALTER|TRUNCATE)\b", re.I)


@dataclass
class QueryLog:
    """Statements captured while `capture()` was open."""

    statements: list[str] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)  # each statement's parameters (None for plain reads)
    _on: bool = False

    @contextmanager
    def capture(self) -> Iterator[QueryLog]:
        """Record the statements run inside the block (forgetting earlier ones)."""
        self.statements.clear()
        self.parameters.clear()
        self._on = True
        try:
            yield self
        finally:
            self._on = False

    def record(self, statement: str, parameters: Any = None) -> None:
        """Called by the cursor event."""
        if self._on:
            self.statements.append(statement)
            self.parameters.append(parameters)

    @property
    def queries(self) -> list[str]:
        """Statements other than transaction control."""
        return [s for s in self.statements if not _TX_CONTROL.match(s)]

    @property
    def count(self) -> int:
        """How many queries ran."""
        return len(self.queries)

    @property
    def writes(self) -> list[str]:
        """Statements that change data or schema."""
        return [s for s in self.statements if _WRITE.match(s)]

    def __str__(self) -> str:
        return "\n".join(f"{n}. {' '.join(s.split())[:200]}" for n, s in enumerate(self.queries, 1))


@pytest.fixture
def queries(app: Flask) -> Iterator[QueryLog]:
    """A QueryLog fed by before_cursor_execute on the app's engine."""
    log = QueryLog()
    engine = db.engine

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        log.record(statement, parameters)

    def plain(sender: Any, statement: str, **extra: Any) -> None:
        log.record(statement)

    event.listen(engine, "before_cursor_execute", before)
    plain_read_sent.connect(plain)  # reads sent past SQLAlchemy's events (database.PlainRead)
    yield log
    plain_read_sent.disconnect(plain)
    event.remove(engine, "before_cursor_execute", before)


@pytest.fixture(autouse=True)
def _brand_already_read(app: Flask) -> None:
    """Budgets are steady-state: each process reads the shop's brand once per BRAND_CACHE_SECONDS
    (services.brand.cached_brand), not once per request, so it is read here, before anything is counted."""
    from shopapp.services import brand

    with app.test_request_context():
        brand.cached_brand()
