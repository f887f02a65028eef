"""Issue 26, finding 7: a shop clock ten minutes fast refused every webhook silently. Refused signatures are now
counted (per hour and reason) and the dashboard says so, pointing at the clock."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from shopapp.models import RejectionReason, WebhookRejection
from stripe_emulator.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, fresh

EVENT = json.dumps({"id": "evt_clock", "object": "event", "type": "checkout.session.completed", "data": {}}).encode()


def _deliver(client, signature: str) -> int:
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    return client.post("/webhook/", data=EVENT, headers=headers).status_code


def test_a_fast_clock_refuses_webhooks_and_the_dashboard_says_so(app, client, staff_client):
    assert "No refused webhook signatures." in staff_client.get("/admin/").get_data(as_text=True)
    # Stripe signs with the true time; a shop clock 10 minutes fast sees every signature as 10 minutes old.
    for _ in range(3):
        assert _deliver(client, sign(WEBHOOK_SECRET, EVENT, int(time.time()) - 600)) == 400
    assert _deliver(client, sign("whsec_wrong", EVENT)) == 400  # and one forgery
    counts = {row.reason: row.count for row in fresh().scalars(select(WebhookRejection))}
    assert counts == {RejectionReason.TIMESTAMP: 3, RejectionReason.SIGNATURE: 1}
    page = staff_client.get("/admin/").get_data(as_text=True)
    assert "4 deliveries from Stripe were refused" in page
    assert "3 timestamp outside 5 minutes" in page and "1 signature not matching" in page
    assert "Check this server&#39;s clock (NTP)" in page or "Check this server's clock (NTP)" in page
