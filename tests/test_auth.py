"""Sign-up, log-in and log-out through the real forms."""

from __future__ import annotations

import pytest
from flask import session
from sqlalchemy import func, select

from shopapp.models import User
from tests.conftest import PASSWORD, fresh


def users() -> int:
    return fresh().scalar(select(func.count()).select_from(User))


def signup(client, email="new@example.com", password=PASSWORD, confirm=None, **kwargs):
    data = {"email": email, "password": password, "confirm": confirm if confirm is not None else password}
    return client.post("/account/signup", data=data, **kwargs)


def test_signup_creates_account_logs_in_and_normalises_email(client):
    response = signup(client, email="  New.Person@Example.COM ")
    assert response.status_code == 302
    assert fresh().scalar(select(User.email)) == "new.person@example.com"
    page = client.get("/").get_data(as_text=True)
    assert "new.person@example.com" in page and "My orders" in page


def test_signup_password_is_hashed_with_argon2id(client):
    signup(client)
    assert fresh().scalar(select(User.password_hash)).startswith("$argon2id$")


@pytest.mark.parametrize("email", ["dup@example.com", "DUP@example.com", " dup@EXAMPLE.com"])
def test_duplicate_email_is_refused_case_insensitively(client, make_user, email):
    make_user("dup@example.com")
    response = signup(client, email=email)
    assert response.status_code == 409
    assert "An account with this email already exists." in response.get_data(as_text=True)
    assert users() == 1


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", None, "Please choose a password of at least 8 characters."),
        ("x" * 257, None, "please keep it to 256 characters"),
        ("long enough pw", "different pw!", "Passwords must match."),
        ("", None, "Please choose a password."),
    ],
)
def test_bad_passwords_are_refused(client, password, confirm, message):
    response = signup(client, password=password, confirm=confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert users() == 0


def test_long_passwords_up_to_the_limit_work(client, auth):
    long_password = ("harbour lights over quiet water " * 8)[:128]  # not one repeated character: that is refused
    assert signup(client, email="long@example.com", password=long_password).status_code == 302
    client.post("/account/logout")
    assert auth.login("long@example.com", long_password).status_code == 302


@pytest.mark.parametrize("email", ["not-an-email", "", "a@", "@b.com"])
def test_bad_emails_are_refused(client, email):
    assert signup(client, email=email).status_code == 400
    assert users() == 0


def test_login_and_logout(client, make_user, auth):
    make_user("ann@example.com")
    response = auth.login("ann@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "ann@example.com" in client.get("/").get_data(as_text=True)
    assert client.post("/account/logout").status_code == 302
    assert "ann@example.com" not in client.get("/").get_data(as_text=True)


def test_wrong_password_and_unknown_email_get_the_same_message(client, make_user, auth):
    make_user("ann@example.com")
    wrong = auth.login("ann@example.com", "wrong password!")
    unknown = auth.login("nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    for response in (wrong, unknown):
        assert "Invalid email or password." in response.get_data(as_text=True)
    assert "ann@example.com" not in client.get("/").get_data(as_text=True)


def test_login_email_is_case_insensitive(client, make_user, auth):
    make_user("ann@example.com")
    assert auth.login("ANN@Example.com").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/x",
        "/\\evil.example.com",
        "http:/evil.example.com",
        "javascript:alert(1)",
        "evil.example.com",
    ],
)
def test_next_never_leaves_the_site(client, make_user, target):
    make_user("ann@example.com")
    response = client.post(
        "/account/login", query_string={"next": target}, data={"email": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_within_the_site_is_followed(client, make_user):
    make_user("ann@example.com")
    response = client.post(
        "/account/login", query_string={"next": "/?page=2"}, data={"email": "ann@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/?page=2"


def test_session_is_renewed_at_login(client, make_user, auth):
    make_user("ann@example.com")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    auth.login("ann@example.com")
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id")


def test_logout_invalidates_the_old_cookie(app, client, make_user, auth):
    make_user("ann@example.com")
    auth.login("ann@example.com")
    stolen = client.get_cookie("session", domain="shop.test").value
    client.post("/account/logout")
    replay = app.test_client()
    replay.set_cookie("session", stolen, domain="shop.test")
    assert "ann@example.com" not in replay.get("/").get_data(as_text=True)


def test_logout_is_post_only(client, shopper):
    assert client.get("/account/logout").status_code == 405
    assert "shopper@example.com" in client.get("/").get_data(as_text=True)


def test_login_required_pages_redirect_to_login(client):
    response = client.post("/checkout", data={})
    assert response.status_code == 302 and "/account/login" in response.headers["Location"]


def test_user_loader_uses_rotating_token_not_id(app, make_user):
    user = make_user("ann@example.com")
    with app.test_request_context():
        assert session.get("_user_id") is None
    assert user.get_id() == user.session_token and user.get_id() != str(user.id)


@pytest.mark.parametrize(
    ("lookalike", "message"),
    [
        ("\u0430nn@example.com", "mixes letters of different alphabets"),  # Cyrillic a (U+0430)
        ("ann@ex\u0430mple.com", "mixes letters of different alphabets"),
        ("\uff41nn@example.com", "full-width"),  # full-width a
        ("\uff41\uff4e\uff4e@example.com", "full-width"),
    ],
)
def test_a_lookalike_of_an_address_makes_no_second_account(client, make_user, lookalike, message):
    """Issue 26, finding 7: Cyrillic or full-width letters made a second account for "the same" address."""
    make_user("ann@example.com")
    response = signup(client, email=lookalike)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert users() == 1


@pytest.mark.parametrize("email", ["zoë@example.com", "иван@пример.рф", "josé.garcía@example.com"])
def test_addresses_written_in_one_script_are_welcome(client, email):
    assert signup(client, email=email).status_code == 302
    assert users() == 1
