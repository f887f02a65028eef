"""Access walk: other shoppers' orders and success pages, every admin URL for non-staff → 403/404, no change."""

from __future__ import annotations

from tests.security.conftest import fill_rule, report, snapshot


def test_wrong_shopper_and_non_staff_are_refused(make_world, emulator):
    world = make_world()
    bob = world.client_for("bob")
    calls_before = dict(emulator.call_counts)
    before = snapshot()
    results: list[tuple[str, str, int]] = []

    for order_id in (world.alice_paid_order, world.alice_pending_order, 999_999):
        results.append(("POST", f"/orders/{order_id}/cancel", bob.post(f"/orders/{order_id}/cancel").status_code))
    for session_id in (world.alice_paid_session, world.alice_pending_session, "cs_test_unknown"):
        url = f"/success/?session_id={session_id}"
        results.append(("GET", url, bob.get(url).status_code))
    # Bob's own shop page does not list alice's orders.
    page = bob.get("/").get_data(as_text=True)
    assert f"Order #{world.alice_paid_order}" not in page and f"Order #{world.alice_pending_order}" not in page

    admin_rules = [
        r for r in world.app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint != "admin.static"
    ]
    for rule in sorted(admin_rules, key=lambda r: r.rule):
        url = fill_rule(rule, world)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            data = {
                "id": str(world.alice_pending_order),
                "is_staff": "y",
                "name": "Pwned",
                "price": "0.01",
                "list_form_pk": str(world.alice_pending_order),
                "action": "delete",
                "rowid": "1",
            }
            response = bob.open(url, method=method, data=data if method == "POST" else None)
            results.append((method, url, response.status_code))

    wrong = [r for r in results if r[2] not in (403, 404)]
    assert not wrong, wrong
    assert snapshot() == before
    # Refusals are decided from our database: no Stripe call was made on bob's behalf.
    assert dict(emulator.call_counts) == calls_before

    # Anonymous visitors are sent to log in; staff do get in (the walk is not refusing everyone).
    anon = world.client_for("anon")
    assert anon.get("/admin/orders/").status_code == 302
    assert anon.post(f"/orders/{world.alice_pending_order}/cancel").status_code == 302
    staff = world.client_for("staff")
    assert staff.get(f"/admin/orders/details/?id={world.alice_pending_order}").status_code == 200
    alice = world.client_for("alice")
    assert alice.get(f"/success/?session_id={world.alice_paid_session}").status_code == 200

    statuses = {code: sum(1 for r in results if r[2] == code) for code in sorted({r[2] for r in results})}
    report(
        f"access walk: {len(results)} requests by the wrong shopper or a non-staff user "
        f"({len(admin_rules)} admin URLs, 3 orders, 3 success pages) -> {statuses}, 0 rows changed, 0 Stripe calls"
    )
