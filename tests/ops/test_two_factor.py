"""Two-factor log-in: enrolment, the second step, recovery codes, rate limit, staff rules (issue 24)."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from shopapp.extensions import db
from shopapp.models import RecoveryCode, User
from shopapp.services import two_factor
from tests.conftest import PASSWORD, fresh
from tests.staff.conftest import refunds_of
from tests.support import csrf_token

STEP = two_factor.STEP_SECONDS


def enrol_with_code(client) -> tuple[str, list[str], str]:
    """Enrol the logged-in account through the pages; (secret, recovery codes, the code the enrolment used)."""
    page = client.post("/account/two-factor/setup").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    used = pyotp.TOTP(secret).now()
    done = client.post("/account/two-factor/confirm", data={"code": used})
    assert done.status_code == 200
    codes = re.findall(r"<code>([0-9a-f]{6}-[0-9a-f]{6})</code>", done.get_data(as_text=True))
    return secret, codes, used


def enrol(client) -> tuple[str, list[str]]:
    """Enrol the logged-in account through the pages; (secret, recovery codes)."""
    secret, codes, _ = enrol_with_code(client)
    return secret, codes


def next_code(secret: str, steps: int = 1) -> str:
    """The code of a later time step (accepted: one step of drift), so it is fresher than the last used."""
    return pyotp.TOTP(secret).at(time.time() + steps * STEP)


def test_enrolment_stores_the_secret_and_hashed_recovery_codes(client, shopper):
    secret, codes = enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    user = fresh().scalars(db.select(User).where(User.id == shopper.id)).one()
    assert user.totp_secret == secret
    stored = fresh().scalars(db.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == shopper.id)).all()
    assert len(stored) == 10 and not set(stored) & set(codes) and all(h.startswith("$argon2id$") for h in stored)
    assert "Two-factor log-in</a>: on" in client.get("/account/").get_data(as_text=True)


def test_a_wrong_first_code_enables_nothing(client, shopper):
    client.post("/account/two-factor/setup")
    assert client.post("/account/two-factor/confirm", data={"code": "000000"}).status_code == 400
    assert fresh().scalars(db.select(User.totp_secret).where(User.id == shopper.id)).one() is None


def test_log_in_asks_for_a_code_and_each_code_works_once(client, shopper, auth):
    secret, _, used = enrol_with_code(client)
    auth.logout()
    response = auth.login(shopper.email)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor/login")
    assert client.get("/account/").status_code == 302  # not logged in yet
    assert client.post("/account/two-factor/login", data={"code": "123456"}).status_code == 400
    # The code used at enrolment is spent: its replay is refused (the code itself, not "the current one", which
    # is a new step once the clock has crossed a 30 s boundary since enrolment).
    assert client.post("/account/two-factor/login", data={"code": used}).status_code == 400
    assert client.post("/account/two-factor/login", data={"code": next_code(secret)}).status_code == 302
    assert client.get("/account/").status_code == 200


def test_a_recovery_code_logs_in_once(client, shopper, auth):
    _, codes = enrol(client)
    auth.logout()
    auth.login(shopper.email)
    assert client.post("/account/two-factor/login", data={"code": codes[0].upper()}).status_code == 302
    auth.logout()
    auth.login(shopper.email)
    assert client.post("/account/two-factor/login", data={"code": codes[0]}).status_code == 400
    db.session.remove()
    assert two_factor.recovery_codes_left(shopper.id) == 9


def test_code_attempts_are_rate_limited(app_factory, make_user):
    app = app_factory(RATELIMIT_ENABLED=True, TWO_FACTOR_RATE_LIMIT="3 per minute", LOGIN_RATE_LIMIT="100 per minute")
    user = make_user("limited@example.com")
    browser = app.test_client()
    browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    secret, _ = enrol(browser)
    browser.post("/account/logout")
    browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    answers = [browser.post("/account/two-factor/login", data={"code": "000000"}).status_code for _ in range(4)]
    assert answers == [400, 400, 400, 429]
    # Even the right code waits: a guesser cannot keep trying.
    assert browser.post("/account/two-factor/login", data={"code": next_code(secret)}).status_code == 429


@pytest.fixture
def staff_browser(app, make_user):
    user = make_user("ann@example.com", staff=True)
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return browser


def test_staff_must_enrol_where_required(app_factory, make_user):
    app = app_factory(TWO_FACTOR_REQUIRED_FOR_STAFF=True)
    user = make_user("bob@example.com", staff=True)
    browser = app.test_client()
    browser.post("/account/login", data={"email": user.email, "password": PASSWORD})
    response = browser.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor")
    enrol(browser)
    assert browser.get("/admin/").status_code == 200


def test_production_requires_staff_two_factor_by_default():
    from config import ProductionConfig, TestingConfig

    assert ProductionConfig.TWO_FACTOR_REQUIRED_FOR_STAFF is True
    assert TestingConfig.TWO_FACTOR_REQUIRED_FOR_STAFF is False


def test_a_refund_asks_for_a_fresh_code(app, staff_browser, paid_order):
    order = paid_order()
    secret, _ = enrol(staff_browser)
    with staff_browser.session_transaction() as cookie_session:
        cookie_session["tf_verified_at"] = time.time() - 3600  # the last code is an hour old
    token = csrf_token(staff_browser.get("/").get_data(as_text=True))
    # confirm=yes: the refund confirmation step (issue 22) answered; the fresh-code check comes before it.
    form = {"amount": "10.00", "reason": "Customer asked", "sequence": "1", "csrf_token": token, "confirm": "yes"}
    asked = staff_browser.post(
        f"/admin/orders/{order.id}/refund/",
        data=form,
        headers={"Referer": f"http://shop.test/admin/orders/details/?id={order.id}"},
    )
    assert asked.status_code == 302 and "/account/two-factor/again" in asked.headers["Location"]
    assert refunds_of(order.id) == []  # nothing was sent to Stripe
    confirmed = staff_browser.post(asked.headers["Location"], data={"code": next_code(secret)})
    assert confirmed.status_code == 302 and f"/admin/orders/details/?id={order.id}" in confirmed.headers["Location"]
    done = staff_browser.post(f"/admin/orders/{order.id}/refund/", data=form)
    assert done.status_code == 303
    assert [r.amount_cents for r in refunds_of(order.id)] == [1000]
