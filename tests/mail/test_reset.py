"""Password reset: same answer for every address, a signed one-hour link that works once, rate limits."""

from __future__ import annotations

import re
import time

import itsdangerous.timed

from shopapp.services import outbox
from tests.conftest import PASSWORD
from tests.logscan import remember_secret
from tests.mail.conftest import links_in

NEW_PASSWORD = "lantern-orchard-quietly"


def ask_reset(client, email):
    return client.post("/account/forgot", data={"email": email}, follow_redirects=True)


def reset_link(mailbox, address):
    outbox.send_pending()
    mails = [m for m in mailbox.to(address) if "Reset your" in m.subject]
    assert mails, "no reset email"
    [path] = [p for p in links_in(mails[-1].text()) if p.startswith("/account/reset/")]
    remember_secret(path.rsplit("/", 1)[1])  # the whole-run log scan fails if the token is ever logged
    return path


def test_forgot_password_link_on_the_login_page(client):
    page = client.get("/account/login").get_data(as_text=True)
    assert 'href="/account/forgot"' in page and "Forgot password?" in page


def test_same_answer_for_known_and_unknown_addresses(client, make_user, mailbox):
    make_user("known@example.com")
    known = ask_reset(client, "known@example.com")
    unknown = ask_reset(client, "nobody@example.com")
    strip = lambda r: r.get_data(as_text=True).replace("known@example.com", "X").replace("nobody@example.com", "X")  # noqa: E731
    assert known.status_code == unknown.status_code == 200
    assert strip(known) == strip(unknown)
    assert "a link to choose a new password is on its way" in strip(known)
    outbox.send_pending()
    assert [m.subject for m in mailbox.to("known@example.com") if "Reset" in m.subject] == [
        "Reset your Tidy Shop password"
    ]
    # The unknown address gets the same work (a row, a message): no link, only "there is no account".
    [notice] = mailbox.wait_for(1, "the no-account notice", "nobody@example.com")
    assert notice.subject == "About resetting a Tidy Shop password"
    assert "no account uses this address" in notice.text() and "/account/reset/" not in notice.text()


def test_reset_sets_password_logs_in_and_ends_other_sessions_and_works_once(app, client, make_user, mailbox):
    make_user("forgetful@example.com")
    other_device = app.test_client()
    assert (
        other_device.post("/account/login", data={"email": "forgetful@example.com", "password": PASSWORD}).status_code
        == 302
    )
    ask_reset(client, "Forgetful@Example.com")  # any spelling of the address
    path = reset_link(mailbox, "forgetful@example.com")
    assert client.get(path).status_code == 200
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert "forgetful@example.com" in client.get("/").get_data(as_text=True)  # logged in
    # The other device's session ended.
    assert "forgetful@example.com" not in other_device.get("/").get_data(as_text=True)
    # Used once: the same link is refused, with a way to ask for a new one.
    again = client.post(path, data={"password": "another-fine-passphrase", "confirm": "another-fine-passphrase"})
    assert again.status_code == 404 and "expired or was already used" in again.get_data(as_text=True)
    # Old password no longer works, the new one does.
    fresh_browser = app.test_client()
    assert (
        fresh_browser.post("/account/login", data={"email": "forgetful@example.com", "password": PASSWORD}).status_code
        == 400
    )
    assert (
        fresh_browser.post(
            "/account/login", data={"email": "forgetful@example.com", "password": NEW_PASSWORD}
        ).status_code
        == 302
    )
    # And a "password changed" notice went out.
    outbox.send_pending()
    assert any("password was changed" in m.subject for m in mailbox.to("forgetful@example.com"))


def test_link_stops_working_after_a_password_change(app, client, make_user, auth, mailbox):
    make_user("changer@example.com")
    ask_reset(client, "changer@example.com")
    path = reset_link(mailbox, "changer@example.com")
    auth.login("changer@example.com")
    changed = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    stale = app.test_client().get(path)
    assert stale.status_code == 404 and "expired or was already used" in stale.get_data(as_text=True)


def test_link_expires_after_an_hour(app, client, make_user, mailbox, monkeypatch):
    make_user("late@example.com")
    real_time = time.time
    # The link is signed when the email is sent: ask and send "61 minutes ago" (itsdangerous reads time.time()).
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 3660)
    ask_reset(client, "late@example.com")
    path = reset_link(mailbox, "late@example.com")
    monkeypatch.setattr(itsdangerous.timed.time, "time", real_time)
    expired = client.get(path)
    assert expired.status_code == 404 and "expired or was already used" in expired.get_data(as_text=True)


def test_tampered_link_is_refused(client, make_user, mailbox):
    make_user("tamper@example.com")
    ask_reset(client, "tamper@example.com")
    path = reset_link(mailbox, "tamper@example.com")
    assert client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 404


def test_reset_rejects_weak_new_password_beside_the_field(client, make_user, mailbox):
    make_user("weak@example.com")
    ask_reset(client, "weak@example.com")
    path = reset_link(mailbox, "weak@example.com")
    page = client.post(path, data={"password": "12345678", "confirm": "12345678"})
    assert page.status_code == 400
    assert re.search(r'id="password-errors".*most common', page.get_data(as_text=True), re.S)


def test_reset_requests_are_limited_per_address_with_the_form_kept(app_factory, mailbox):
    app = app_factory(
        RATELIMIT_ENABLED=True,
        RESET_PER_EMAIL_RATE_LIMIT="2 per hour",
        RESET_RATE_LIMIT="50 per hour",
        MAIL_PORT=mailbox.port,
    )
    statuses = []
    for n in range(3):
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = f"203.0.113.{n + 1}"  # other client addresses: per-email limit
        statuses.append(browser.post("/account/forgot", data={"email": "Target@Example.com"}))
    assert [r.status_code for r in statuses] == [302, 302, 429]
    limited = statuses[-1]
    page = limited.get_data(as_text=True)
    assert "Too many attempts" in page and "Please try again in" in page
    assert 'value="Target@Example.com"' in page  # the form keeps what was typed
    assert int(limited.headers["Retry-After"]) > 0


def test_reset_token_is_redacted_in_logs():
    from shopapp.logs import redact

    assert redact("GET /account/reset/eyJ1IjoxfQ.aSs1Zg.AbCdEfGhIjKlMnOp HTTP/1.1") == "GET /account/reset/*** HTTP/1.1"
