"""Two-factor log-in in Chromium (issue 24): a staff member enrols from the account page, then logs in with a
code; every page passes axe and the CSP, with screenshots at desktop and 375 px."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, STAFF_EMAIL, Journey


def test_staff_enrol_and_log_in_with_a_code(journey: Journey) -> None:
    page = journey.page
    journey.goto("/admin/")
    page.wait_for_url(re.compile(r"/account/login"))
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))

    journey.goto("/")
    page.locator(".account-menu summary").click()  # the shop's header: the account menu
    page.get_by_role("link", name="Account").click()
    page.wait_for_url(re.compile(r"/account/$"))
    journey.visit("account")
    page.get_by_role("link", name="Two-factor log-in").click()
    journey.visit("two-factor-off")
    page.get_by_role("button", name="Set up two-factor log-in").click()
    expect(page.get_by_role("img", name="QR code of your two-factor secret")).to_be_visible()
    journey.visit("two-factor-enrol")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Two-factor log-in is on")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    journey.visit("two-factor-recovery-codes")

    journey.log_out()
    journey.goto("/admin/")
    page.wait_for_url(re.compile(r"/account/login"))
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/two-factor/login$"))
    journey.visit("two-factor-login")
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".field-errors")).to_contain_text("That code is not right")
    # The enrolment's code is spent; the next time step's is fresh (one step of clock drift is accepted).
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/admin/$"))
