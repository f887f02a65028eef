"""Failed log-ins are limited per account too, so spreading guesses over many addresses does not help, while
the owner's own browsers (which logged in before) are never locked out by a stranger (issue 17, finding 8)."""

from __future__ import annotations

from tests.conftest import PASSWORD
from tests.security.conftest import report

ACCOUNT_LIMIT = 3


def _browser(app, address: str):
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _log_in(browser, email: str, password: str) -> int:
    return browser.post("/account/login", data={"email": email, "password": password}).status_code


def test_guesses_spread_over_many_addresses_hit_the_account_limit(app_factory, make_user):
    app = app_factory(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="5 per minute", LOGIN_ACCOUNT_RATE_LIMIT=f"{ACCOUNT_LIMIT} per hour"
    )
    make_user("ann@example.com")
    make_user("bob@example.com")
    owners_laptop = _browser(app, "198.51.100.1")
    assert _log_in(owners_laptop, "ann@example.com", PASSWORD) == 302  # she has used this browser before
    owners_laptop.post("/account/logout")

    # Twenty addresses, one wrong guess each: each address is far under its own limit of 5.
    statuses = [_log_in(_browser(app, f"203.0.113.{i}"), "ann@example.com", "wrong guess!") for i in range(20)]
    assert statuses == [400] * ACCOUNT_LIMIT + [429] * (20 - ACCOUNT_LIMIT)
    # The right password from a new address is refused too while the account is limited: the trade-off.
    stranger_with_password = _browser(app, "203.0.113.99")
    assert _log_in(stranger_with_password, "ann@example.com", PASSWORD) == 429

    # The owner's known browser is exempt from the per-account count and logs in at once.
    assert _log_in(owners_laptop, "ann@example.com", PASSWORD) == 302
    # Other accounts are untouched, and successful log-ins never count against an account.
    for i in range(ACCOUNT_LIMIT + 2):
        browser = _browser(app, f"192.0.2.{i}")
        assert _log_in(browser, "bob@example.com", PASSWORD) == 302
    report(
        f"per-account log-in limit: 20 addresses x 1 guess -> {statuses.count(400)} tried, {statuses.count(429)} "
        "refused (429); owner's known browser logs in; new browser waits (documented trade-off)"
    )


def test_a_forged_or_foreign_known_device_cookie_does_not_exempt(app_factory, make_user):
    app = app_factory(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="50 per minute", LOGIN_ACCOUNT_RATE_LIMIT=f"{ACCOUNT_LIMIT} per hour"
    )
    make_user("ann@example.com")
    make_user("eve@example.com")
    eve = _browser(app, "203.0.113.50")
    assert _log_in(eve, "eve@example.com", PASSWORD) == 302  # eve's cookie names eve's account only
    eve.post("/account/logout")
    statuses = [_log_in(eve, "ann@example.com", "wrong guess!") for _ in range(ACCOUNT_LIMIT + 2)]
    assert statuses == [400] * ACCOUNT_LIMIT + [429, 429]
    forger = _browser(app, "203.0.113.51")
    forger.set_cookie("known_device", "W10.forged.signature", domain="shop.test", path="/account/")
    assert _log_in(forger, "ann@example.com", "wrong guess!") == 429


def test_a_password_change_ends_the_known_device_exemption(app_factory, make_user):
    """Issue 26, finding 7: a known-device cookie earned with the old password (a stolen laptop, a copied
    cookie) kept exempting its holder after the owner changed the password: 27 of 27 guesses got through."""
    app = app_factory(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT=f"{ACCOUNT_LIMIT} per hour"
    )
    make_user("ann@example.com")
    old_laptop = _browser(app, "198.51.100.1")
    assert _log_in(old_laptop, "ann@example.com", PASSWORD) == 302
    cookie = old_laptop.get_cookie("known_device", domain="shop.test", path="/account/")
    assert cookie is not None
    # Exempt while the password is unchanged: more guesses than the account's limit all get checked.
    thief = _browser(app, "203.0.113.7")
    thief.set_cookie("known_device", cookie.value, domain="shop.test", path="/account/")
    assert [_log_in(thief, "ann@example.com", "wrong guess!") for _ in range(ACCOUNT_LIMIT + 1)] == [400] * (
        ACCOUNT_LIMIT + 1
    )

    # The owner changes the password on her new phone ...
    phone = _browser(app, "198.51.100.2")
    assert _log_in(phone, "ann@example.com", PASSWORD) == 302
    new_password = "lantern-orchid-basalt"
    changed = phone.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new_password, "confirm": new_password},
    )
    assert changed.status_code == 302, changed.get_data(as_text=True)[:2000]
    # ... and the old cookie exempts nobody any more: the thief's guesses are counted (the budget was given
    # back by her successful log-in, so ACCOUNT_LIMIT of them are checked, then 429).
    statuses = [_log_in(thief, "ann@example.com", "wrong guess!") for _ in range(ACCOUNT_LIMIT + 3)]
    assert statuses == [400] * ACCOUNT_LIMIT + [429] * 3
    # The phone that made the change earned a cookie bound to the new password: it is exempt.
    assert _log_in(phone, "ann@example.com", new_password) in (302, 303)
    report(f"known-device cookie after a password change: {statuses.count(400)} guesses checked, then 429")
