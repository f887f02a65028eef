"""One account per address (normalised email), concurrent sign-ups, password rules, the order page."""

from __future__ import annotations

import re
import threading
import unicodedata

import pytest
from sqlalchemy import create_engine, event, select, text

from shopapp import create_app
from shopapp.extensions import db
from shopapp.models import User
from shopapp.services import accounts
from tests.conftest import PASSWORD, fresh

NFC = unicodedata.normalize("NFC", "zoë@example.com")
NFD = unicodedata.normalize("NFD", "zoë@example.com")


def signup(client, email, password="tulip-anchor-violet", confirm=None):
    return client.post("/account/signup", data={"email": email, "password": password, "confirm": confirm or password})


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Zoë@Example.COM", NFC),
        (NFD.upper(), NFC),
        ("  zoë@EXAMPLE.com ", NFC),
        ("someone@xn--exmple-cua.com", "someone@exämple.com"),
        ("Straße@example.com", "straße@example.com"),  # lower(), not casefold(): "ss" would be another mailbox
    ],
)
def test_normalised_form(app, typed, stored):
    assert accounts.normalize_email(typed) == stored


def test_unicode_and_case_variants_are_one_account(app, client):
    assert NFC != NFD
    assert signup(client, NFC).status_code == 302
    second = app.test_client()
    for variant in (NFD, "ZOË@example.com", NFD.replace("example", "EXAMPLE")):
        taken = signup(second, variant)
        assert taken.status_code == 409
        assert "An account with this email already exists" in taken.get_data(as_text=True)
    assert [u.email for u in fresh().scalars(select(User))] == [NFC]
    for variant in (NFD, "ZOË@Example.com"):
        login = app.test_client().post("/account/login", data={"email": variant, "password": "tulip-anchor-violet"})
        assert login.status_code == 302, variant


def test_simultaneous_signups_make_one_account_and_a_clear_409(app):
    browsers = [app.test_client() for _ in range(6)]
    barrier = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def run(browser):
        barrier.wait(timeout=30)
        statuses.append(signup(browser, "race@example.com").status_code)

    threads = [threading.Thread(target=run, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302] + [409] * 5, statuses
    assert fresh().scalar(select(db.func.count()).select_from(User).where(User.email == "race@example.com")) == 1


def test_lost_race_at_the_unique_constraint_is_a_409_not_a_500(app, client):
    """PostgreSQL (READ COMMITTED): both sign-ups' "is the address free?" checks can pass, and the later INSERT
    meets the unique constraint. Made deterministic: another connection commits the same address just before
    the service's INSERT runs. (SQLite cannot get here: the write lock is taken at BEGIN, before the check.)"""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises sign-ups at BEGIN IMMEDIATE; the constraint race exists on PostgreSQL")
    rival_insert = text(
        "INSERT INTO users (email, password_hash, is_staff, session_token, created_at) "
        "VALUES ('late@example.com', 'x', false, 'tok-late', CURRENT_TIMESTAMP)"
    )
    fired: list[bool] = []

    def rival_commits_first(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO USERS") and not fired:
            fired.append(True)
            with db.engine.connect() as other:  # its own connection and transaction
                other.execute(rival_insert)
                other.commit()

    event.listen(db.engine, "before_cursor_execute", rival_commits_first)
    try:
        response = signup(client, "LATE@example.com")
    finally:
        event.remove(db.engine, "before_cursor_execute", rival_commits_first)
    assert fired and response.status_code == 409
    assert "An account with this email already exists" in response.get_data(as_text=True)
    assert fresh().scalar(select(db.func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8 characters"),
        ("password", "most common"),
        ("12345678", "most common"),
        ("Password1", "most common"),
        ("        ", "only of spaces or invisible"),
        ("\u200b" * 10, "only of spaces or invisible"),
        ("\u00a0\u2003\u3000" * 3, "only of spaces or invisible"),
        ("aaaaaaaaaaaa", "easy to guess"),
        ("x" * 257, "keep it to 256 characters"),
    ],
)
def test_password_rules_worded_beside_the_field(client, password, message):
    page = signup(client, "rules@example.com", password)
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert re.search(r'<ul class="field-errors" id="password-errors"><li>[^<]*' + re.escape(message), html), html[:3000]
    assert "Field must be between" not in html
    assert fresh().scalar(select(User.id)) is None


def test_long_passphrases_are_accepted(client):
    passphrase = "my very long and rather personal passphrase " * 3  # 132 characters
    assert len(passphrase) >= 128
    assert signup(client, "long@example.com", passphrase).status_code == 302


def test_order_page_is_the_owners_only(app, client, paid_order, make_user):
    order = paid_order(A=2, C=1)
    page = client.get(f"/orders/{order.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Order #{order.id}" in html and "Product A" in html and "$79.97" in html and "paid" in html.lower()
    assert "data-print" in html
    home = client.get("/orders").get_data(as_text=True)
    assert f'href="/orders/{order.id}"' in home and ">My orders<" in home
    make_user("other@example.com")
    other = app.test_client()
    other.post("/account/login", data={"email": "other@example.com", "password": PASSWORD})
    assert other.get(f"/orders/{order.id}").status_code == 404
    assert other.get("/orders/999999").status_code == 404
    assert app.test_client().get(f"/orders/{order.id}").status_code == 302  # to the log-in page


def test_migration_normalises_emails_and_stops_on_a_clash(tmp_path, capfd):
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'clash.db'}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    engine = create_engine(url)
    with app.app_context():
        upgrade(revision="0003_stock")
    insert = text(
        "INSERT INTO users (email, password_hash, is_staff, session_token, created_at) "
        "VALUES (:email, 'x', false, :token, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as conn:
        conn.execute(insert, {"email": " Ann@Example.COM", "token": "t1"})
        conn.execute(insert, {"email": NFC, "token": "t2"})
        conn.execute(insert, {"email": NFD, "token": "t3"})
    with app.app_context(), pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits 1
        upgrade(revision="0005_accounts_mail")
    assert "user 2 ('zo\\xeb@example.com'), user 3 ('zoe\\u0308@example.com')" in capfd.readouterr().err
    with engine.begin() as conn:  # nothing changed
        assert conn.execute(text("SELECT email FROM users ORDER BY id")).scalars().all() == [
            " Ann@Example.COM",
            NFC,
            NFD,
        ]
        conn.execute(text("UPDATE users SET email = 'zoe.other@example.com' WHERE id = 3"))
    with app.app_context():
        upgrade(revision="0005_accounts_mail")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT email FROM users ORDER BY id")).scalars().all() == [
            "ann@example.com",
            NFC,
            "zoe.other@example.com",
        ]
    engine.dispose()
