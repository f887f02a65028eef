"""CSRF walk: every POST route except the webhook refuses a missing and a foreign token with 400, changing nothing."""

from __future__ import annotations

from tests.security.conftest import WEBHOOK_ENDPOINTS, fill_rule, page_token, report, routes, snapshot


def test_every_post_route_refuses_missing_and_foreign_tokens(make_world):
    world = make_world(WTF_CSRF_ENABLED=True)
    staff = world.client_for("staff")  # staff reaches every route, admin included
    # A genuine token, but minted for another browser session: it must not work in this one.
    foreign = page_token(world.client_for("bob"))
    post_rules = [r for r in routes(world.app, "POST") if r.endpoint not in WEBHOOK_ENDPOINTS]
    assert len(post_rules) >= 25  # shop, auth and every admin view
    before = snapshot()
    refused, tried = 0, 0
    for rule in post_rules:
        url = fill_rule(rule, world)
        for label, data in (("missing", {}), ("foreign", {"csrf_token": foreign})):
            data = {**data, "name": "x", "is_staff": "y", "qty-1": "1", "email": "bob@example.com", "password": "x"}
            response = staff.post(url, data=data)
            tried += 1
            assert response.status_code == 400, (label, rule.rule, response.status_code)
            assert "form expired" in response.get_data(as_text=True)
            refused += 1
    assert snapshot() == before
    # Control: the same client with its own token gets past CSRF (the walk is not refusing everything).
    ok = staff.post("/account/logout", data={"csrf_token": page_token(staff)})
    assert ok.status_code == 302
    report(
        f"CSRF walk: {len(post_rules)} POST routes (webhook excluded) x 2 (missing, foreign token) = {tried} requests, "
        f"{refused} refused with 400, 0 rows changed"
    )
