"""database.PlainRead: the one-row reads on hot paths (the user by session token on every logged-in request,
the event's outcome on every webhook redelivery) sent to the driver without the ORM Session. They must give
what the Session would (same values, same Python types), fail as SQLAlchemy errors (so an outage is a 503),
give their connection back, and stay visible to the statement counters (query budgets, work counts)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import bindparam, exc, select, text

from shopapp.database import PlainRead, is_unavailable, plain_read_sent
from shopapp.extensions import db as _db
from shopapp.models import EventOutcome, PaymentEvent, User
from shopapp.models.base import utcnow
from shopapp.services.tx import write_transaction

_users = User.__table__.c
_USER = select(_users.id, _users.email, _users.is_staff, _users.totp_secret.is_not(None)).where(
    _users.email == bindparam("email")
)


def test_gives_the_values_and_types_the_session_gives(app, make_user):
    staff = make_user("staff@example.com", staff=True)
    make_user("shopper@example.com")
    read = PlainRead(_USER)
    for email in ("staff@example.com", "shopper@example.com"):
        expected = tuple(_db.session.execute(_USER, {"email": email}).one())
        got = read.first(email=email)
        assert got == expected
        assert [type(value) for value in got] == [type(value) for value in expected]  # bool, not 0/1 on SQLite
    assert read.first(email="staff@example.com") == (staff.id, "staff@example.com", True, False)
    assert read.first(email="nobody@example.com") is None


def test_converts_enum_columns_as_the_session_does(app):
    with write_transaction() as session:
        session.add(
            PaymentEvent(
                stripe_event_id="evt_plain_1",
                type="x",
                payload="{}",
                received_at=utcnow(),
                outcome=EventOutcome.IGNORED,
            )
        )
    row = PlainRead(select(PaymentEvent.outcome).where(PaymentEvent.stripe_event_id == bindparam("id"))).first(
        id="evt_plain_1"
    )
    assert row == (EventOutcome.IGNORED,) and isinstance(row[0], EventOutcome)


def test_every_statement_is_announced_for_the_counters(app, make_user):
    make_user("counted@example.com")
    seen: list[str] = []

    def count(sender: Any, statement: str, **extra: Any) -> None:
        seen.append(statement)

    plain_read_sent.connect(count)
    try:
        PlainRead(_USER).first(email="counted@example.com")
    finally:
        plain_read_sent.disconnect(count)
    assert len(seen) == 1 and "FROM users" in seen[0]


def test_a_database_error_is_a_sqlalchemy_error_and_the_connection_goes_back(app):
    broken_statement = select(text("no_such_column")).select_from(User.__table__).where(_users.id == bindparam("i"))
    broken = PlainRead(broken_statement)
    _db.session.remove()
    checked_out = _db.engine.pool.checkedout()
    with pytest.raises(exc.DBAPIError) as raised:
        broken.first(i=1)
    with pytest.raises(exc.DBAPIError) as through_session:
        _db.session.execute(broken_statement, {"i": 1})
    _db.session.rollback()
    # The class the Session raises (OperationalError on SQLite, ProgrammingError on PostgreSQL), so
    # is_unavailable and the error handlers judge it alike.
    assert type(raised.value) is type(through_session.value)
    assert is_unavailable(raised.value) == is_unavailable(through_session.value)
    _db.session.remove()
    assert _db.engine.pool.checkedout() == checked_out
    assert PlainRead(_USER).first(email="nobody@example.com") is None  # the pool still works


def test_an_unreachable_database_is_an_outage(app, monkeypatch):
    # The driver refusing to connect (server down): an OperationalError through SQLAlchemy, so the 503 path.
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise exc.OperationalError("connect", {}, Exception("connection refused"))

    _db.session.remove()
    _db.engine.dispose()
    monkeypatch.setattr(_db.engine, "raw_connection", refuse)
    with pytest.raises(exc.OperationalError) as raised:
        PlainRead(_USER).first(email="x@example.com")
    assert is_unavailable(raised.value)


def test_a_logged_in_page_reads_the_user_without_the_session(app, client, shopper):
    # The page's one statement is the plain read: the request's ORM Session never takes a connection.
    seen: list[str] = []

    def count(sender: Any, statement: str, **extra: Any) -> None:
        seen.append(statement)

    _db.session.remove()
    plain_read_sent.connect(count)
    try:
        response = client.get("/")
    finally:
        plain_read_sent.disconnect(count)
    assert response.status_code == 200 and shopper.email in response.get_data(as_text=True)
    assert any("session_token" in statement for statement in seen)
