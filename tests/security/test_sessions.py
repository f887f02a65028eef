"""Sessions and cookies: flags, renewal at log-in, dead cookies after log-out, password change ends other sessions."""

from __future__ import annotations

from sqlalchemy import select

from shopapp.extensions import db as _db
from shopapp.models import User
from tests.conftest import PASSWORD
from tests.logscan import remember_secret
from tests.security.conftest import login, page_token, report, snapshot

NEW_PASSWORD = "a-brand-new-passphrase-42"
remember_secret(NEW_PASSWORD)
PRIVATE = "/account/password"  # any login-required page


def cookie(client, name):
    found = client.get_cookie(name, domain="shop.test")
    return found.value if found else None


def is_logged_in(client) -> bool:
    response = client.get(PRIVATE)
    assert response.status_code in (200, 302)
    return response.status_code == 200


def replay(app, **cookies):
    """A new browser carrying only the given cookie values."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value, domain="shop.test")
    return client


def test_cookie_flags_and_renewal_at_login(make_app, make_user):
    app = make_app()
    user = make_user("renew@example.com")
    client = app.test_client()
    with client.session_transaction() as planted:
        planted["planted"] = "attacker-chosen"
    before = cookie(client, "session")
    response = login(client, user.email, remember=True)
    assert response.status_code == 302
    for header in response.headers.getlist("Set-Cookie"):
        flags = [f.strip().lower() for f in header.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags, header
    assert cookie(client, "session") != before
    with client.session_transaction() as renewed:
        assert "planted" not in renewed


def test_logout_kills_old_session_and_remember_cookies(make_world):
    world = make_world()
    app = world.app
    client = app.test_client()
    assert login(client, world.bob.email, remember=True).status_code == 302
    old_session, old_remember = cookie(client, "session"), cookie(client, "remember_token")
    assert old_session and old_remember
    # Controls: each cookie alone authenticates while the session is live.
    assert is_logged_in(replay(app, session=old_session))
    assert is_logged_in(replay(app, remember_token=old_remember))

    assert client.post("/account/logout", data={"csrf_token": page_token(client)}).status_code == 302
    assert not is_logged_in(client)
    assert not is_logged_in(replay(app, session=old_session))
    assert not is_logged_in(replay(app, remember_token=old_remember))
    assert not is_logged_in(replay(app, session=old_session, remember_token=old_remember))
    report("log-out: old session cookie, old remember-me cookie and both together -> not authenticated (3/3)")


def test_password_change_ends_other_sessions(make_world):
    world = make_world()
    app = world.app
    old_token = world.bob.session_token
    here, elsewhere = app.test_client(), app.test_client()
    assert login(here, world.bob.email, remember=True).status_code == 302
    assert login(elsewhere, world.bob.email, remember=True).status_code == 302
    elsewhere_remember = cookie(elsewhere, "remember_token")

    # Refusals first: wrong current password, mismatched confirmation, too short. Nothing changes.
    before = snapshot()
    token = page_token(here, PRIVATE)
    for data in (
        {"current_password": "wrong-password", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"},
        {"current_password": PASSWORD, "new_password": "short", "confirm": "short"},
        {"current_password": "x" * 300, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    ):
        response = here.post(PRIVATE, data={**data, "csrf_token": token})
        assert response.status_code == 400
    assert snapshot() == before
    assert is_logged_in(elsewhere)

    response = here.post(
        PRIVATE,
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert is_logged_in(here)  # this browser continues, with a fresh session and remember-me cookie
    assert is_logged_in(replay(app, remember_token=cookie(here, "remember_token")))
    assert not is_logged_in(elsewhere)
    assert not is_logged_in(replay(app, remember_token=elsewhere_remember))

    fresh = app.test_client()
    assert login(fresh, world.bob.email, PASSWORD).status_code == 400
    assert login(fresh, world.bob.email, NEW_PASSWORD).status_code == 302
    _db.session.rollback()  # end the snapshot to see what the requests committed
    assert _db.session.scalar(select(User.session_token).where(User.id == world.bob.id)) != old_token
    report(
        "password change: 4 bad attempts -> 400, 0 rows changed; after the change the other browser and its "
        "remember-me cookie are logged out, this browser stays in; old password refused, new accepted"
    )
