"""Forgot password, in Chromium: the link arrives in the development mailbox, sets a new password, logs in."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from shopapp.devmail import read_folder
from tests.browser.conftest import Journey
from tests.support import sender_for

NEW_PASSWORD = "willow-compass-harbour"


def test_forgot_password_mail_new_password_logged_in(journey: Journey) -> None:
    page, shop = journey.page, journey.shop
    assert shop.mail_dir is not None
    shop.create_user("forgetful@example.com")
    journey.goto("/account/login")
    page.get_by_role("link", name="Forgot password?").click()
    page.wait_for_url(re.compile(r"/account/forgot$"))
    journey.visit("forgot-password")
    page.get_by_label("Email").fill("Forgetful@Example.com")
    page.get_by_role("button", name="Send me a reset link").click()
    expect(page.get_by_role("status")).to_contain_text("a link to choose a new password is on its way")
    journey.visit("reset-requested")

    send_mail = sender_for(shop.app)  # the sender process's work (`flask mail worker`), run explicitly

    def reset_mail() -> str | None:
        send_mail()
        mails = [m for m in read_folder(shop.mail_dir) if "forgetful@example.com" in m.to and "Reset" in m.subject]
        return mails[-1].text() if mails else None

    text = shop.wait_for(reset_mail, "the reset email in the development mailbox")
    link = re.search(r"http://127\.0\.0\.1:\d+/account/reset/\S+", text)
    assert link, text
    journey.goto(link.group(0))
    journey.visit("choose-new-password")
    page.get_by_label("New password", exact=True).fill("12345678")
    page.get_by_label("Repeat new password").fill("12345678")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#password-errors")).to_contain_text("most common")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    page.wait_for_url(shop.url + "/")
    expect(page.get_by_role("status")).to_contain_text("Your new password is set and you are logged in")
    expect(page.locator(".who")).to_have_text("forgetful@example.com")
    journey.visit("logged-in-after-reset")
    # The link worked once.
    journey.goto(link.group(0))
    expect(page.get_by_role("alert")).to_contain_text("expired or was already used")
