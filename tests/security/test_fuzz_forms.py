"""Property-based fuzzing of every form: no 5xx, and input that is refused changes no row."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.conftest import PASSWORD
from tests.logscan import remember_secret
from tests.security.conftest import login, report, snapshot
from tests.security.fuzzing import FUZZ, Tally, fields

CANARY = "Canary-Passw0rd-for-the-log-scan"
remember_secret(CANARY)

# target -> (who posts, path, field names, what counts as accepted)
FORMS = {
    "sign-up": ("anon", "/account/signup", ["email", "password", "confirm", "csrf_token", "submit"]),
    "log-in": ("anon", "/account/login", ["email", "password", "remember", "csrf_token", "next"]),
    "password change": ("bob", "/account/password", ["current_password", "new_password", "confirm", "csrf_token"]),
    "checkout": ("bob", "/checkout", ["qty-1", "qty-2", "qty-3", "qty-999", "csrf_token", "price", "currency"]),
    "cancel order": ("bob", "/orders/{order}/cancel", ["csrf_token", "order_id", "submit"]),
    "log-out": ("bob", "/account/logout", ["csrf_token", "submit"]),
    "admin product": (
        "staff",
        "/admin/products/new/",
        ["name", "description", "price", "currency", "active", "display_order", "stock", "csrf_token"],
    ),
    "admin user edit": ("staff", "/admin/users/edit/?id=2", ["is_staff", "email", "password_hash", "csrf_token"]),
}


def fuzz_form(world, target: str) -> Tally:
    who, path, names = FORMS[target]
    tally = Tally(target)
    orders = [world.alice_pending_order, world.alice_paid_order, 0, 2**63, 999_999]
    session = {"client": None}

    def logged_in_client():
        # One browser per target; log in again only after an input logged it out (log-out, password change).
        client = session["client"]
        if client is None:
            client = session["client"] = world.app.test_client()
            if who != "anon":
                assert login(client, getattr(world, who).email, world.passwords[who]).status_code == 302
        return client

    @FUZZ
    @given(data=fields(names), order_index=st.integers(0, len(orders) - 1))
    @example(
        data=[
            ("email", "bob@example.com"),
            ("password", CANARY),
            ("confirm", CANARY),
            ("current_password", CANARY),
            ("new_password", CANARY),
        ],
        order_index=0,
    )
    @example(data=[("email", "a\x00b@example.com"), ("password", "x\x00" * 5), ("qty-1", "1\x00")], order_index=1)
    def run(data, order_index):
        client = logged_in_client() if who != "anon" else world.app.test_client()
        before = snapshot()
        response = client.post(path.format(order=orders[order_index]), data=MultiDict(data))
        changed = snapshot() != before
        accepted = response.status_code in (302, 303)
        if accepted and target in ("password change", "log-out"):
            session["client"] = None
            new = [v for k, v in data if k == "new_password"]
            if target == "password change" and new:
                world.passwords[who] = new[-1]
        tally.add(response.status_code, changed, accepted)
        assert response.status_code < 500, (target, data, response.status_code)
        assert accepted or not changed, (target, data, response.status_code)

    run()
    return tally


def test_fuzz_every_form(make_world):
    world = make_world()
    world.passwords = {"bob": PASSWORD, "staff": PASSWORD}  # type: ignore[attr-defined]
    tallies = [fuzz_form(world, target) for target in FORMS]
    for tally in tallies:
        report(tally.line())
    assert sum(t.server_errors for t in tallies) == 0
    assert sum(t.rejected_changes for t in tallies) == 0
    report(
        f"fuzz forms total: {sum(t.tried for t in tallies)} inputs over {len(tallies)} forms, 0 responses 5xx, "
        "0 rows changed by rejected input"
    )
