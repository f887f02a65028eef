"""The log scan can see what it looks for, and the app's redaction removes it before any handler sees it."""

from __future__ import annotations

import logging

from tests.conftest import PASSWORD
from tests.logscan import scan_lines


def test_scanner_finds_planted_secrets_and_redaction_removes_them(app, caplog):
    planted = [
        "card 4242 4242 4242 4242",
        "card 4000000000000002",
        "key sk_test_abcdef123",
        "secret whsec_testing",
        f"password {PASSWORD}",
        "Cookie: session=.eJwljklLA0EQhf_KUOcgvS9z86JHb3EjhOrqqplINDI9I0LIf7fB01.awjIYA.Kfz9BAHY5L6_-NJUuD14mgIRTCk",
    ]
    assert len(scan_lines(planted)) == len(planted)
    assert scan_lines(["Order 12 PAID at 1795738236", "Event evt_abc (charge.succeeded): ignored"]) == []
    with caplog.at_level(logging.INFO, logger="shopapp"):
        for line in [*planted[:4], planted[5]]:
            logging.getLogger("shopapp.test").warning("leak: %s", line)
    texts = [record.getMessage() for record in caplog.records]
    assert len(texts) == 5 and scan_lines(texts) == [], texts
