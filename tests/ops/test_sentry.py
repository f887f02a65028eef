"""Errors reach Sentry scrubbed: no card number, token, password or session cookie leaves (issue 24)."""

from __future__ import annotations

import json

import sentry_sdk

from tests.ops.fake_sentry import fake_sentry
from tests.support import wait_until

CARD = "4242 4242 4242 4242"
SECRET_KEY = "sk_live_51TopSecretValue"
PASSWORD = "correct horse battery staple"
RESET_TOKEN = "eyJ1aWQiOjF9.ZmFrZXRva2Vu.c2lnbmF0dXJl"
SESSION = "session-cookie-value-abc123"


def test_an_error_reaches_the_fake_sentry_without_secrets(app_factory, capsys):
    with fake_sentry() as sentry:
        app = app_factory(SENTRY_DSN=sentry.dsn, PROPAGATE_EXCEPTIONS=False)

        def boom() -> str:
            password = PASSWORD  # a local variable Sentry would show
            stripe_key = SECRET_KEY
            raise ValueError(f"charge failed for card {CARD} with {stripe_key} ({len(password)})")

        app.add_url_rule("/boom", "boom", boom, methods=["POST"])
        try:
            response = app.test_client().post(
                f"/boom?next=/account/reset/{RESET_TOKEN}",
                data={"password": PASSWORD, "card": CARD, "note": f"pay with {CARD}"},
                headers={
                    "Cookie": f"session={SESSION}; remember_token={SESSION}",
                    "Authorization": f"Bearer {SECRET_KEY}",
                },
            )
            assert response.status_code == 500
            sentry_sdk.flush(timeout=10)
            wait_until(
                lambda: any("ValueError" in b for b in sentry.bodies), "the error at the fake Sentry", timeout=20
            )
        finally:
            sentry_sdk.get_client().close()
            # No DSN and no integrations: reporting off for the rest of the run, and no Flask hooks left that read
            # the logged-in user on later requests (the query budgets count that read).
            sentry_sdk.init(default_integrations=False)
    sent = "\n".join(sentry.bodies)
    assert all(path == "/api/1/envelope/" for path in sentry.paths)
    digits = "".join(ch for ch in json.dumps(sent) if ch.isdigit())
    for secret in (SECRET_KEY, PASSWORD, RESET_TOKEN, SESSION):
        assert secret not in sent, (secret, [sent[max(0, i - 300) : i + 50] for i in [sent.find(secret)]])
    assert "4242424242424242" not in digits and CARD not in sent
    assert "[card-redacted]" in sent
    with capsys.disabled():
        event = next(json.loads(line) for line in sent.splitlines() if '"exception"' in line)
        print("\nSentry event as received (exception and request):")
        print(json.dumps({"exception": event["exception"]["values"][0]["value"], "request": event.get("request")}))
