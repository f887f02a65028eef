"""Fixtures for the security proofs: an app built with chosen settings, a populated shop, URL filling, snapshots."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule

from shopapp.extensions import db as _db
from shopapp.models import Order, Product, User
from shopapp.services import accounts, catalog
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, session_id_from
from tests.support import deliver_webhooks_to

WEBHOOK_ENDPOINTS = {"payments.webhook", "payments.webhook_no_slash"}
_CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


def report(line: str) -> None:
    """Print one figure of a proof (visible with pytest -s; scripts/security_report.sh collects them)."""
    print(f"\n[security] {line}")


# Operational counters a refused request is meant to bump (refused webhook signatures, shown on the dashboard):
# not the shop's state, so "nothing changed" leaves them out.
COUNTER_TABLES = frozenset({"webhook_rejections"})


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the counters, ordered: equal snapshots mean nothing changed."""
    _db.session.rollback()
    _db.session.expire_all()
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with _db.engine.connect() as conn:
        for table in _db.metadata.sorted_tables:
            if table.name in COUNTER_TABLES:
                continue
            rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables


def row_count() -> int:
    """Total rows across every table."""
    return sum(len(rows) for rows in snapshot().values())


def csrf_token_from(html: str) -> str:
    """The CSRF token embedded in a rendered form ("" when the app runs with CSRF off)."""
    match = _CSRF_INPUT.search(html)
    return match.group(1) if match else ""


def login(client: FlaskClient, email: str, password: str = PASSWORD, remember: bool = False) -> Any:
    """Log in through the real form, CSRF token included (works with CSRF on or off)."""
    token = csrf_token_from(client.get("/account/login").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    return client.post("/account/login", data=data)


def page_token(client: FlaskClient, path: str = "/") -> str:
    """A valid CSRF token for this client's session."""
    return csrf_token_from(client.get(path).get_data(as_text=True))


@dataclass
class World:
    """A small populated shop: two shoppers with orders, and a staff member."""

    app: Flask
    alice: User
    bob: User
    staff: User
    products: dict[str, Product]
    alice_paid_order: int = 0
    alice_paid_session: str = ""
    alice_pending_order: int = 0
    alice_pending_session: str = ""
    clients: dict[str, FlaskClient] = field(default_factory=dict)

    def client_for(self, who: str) -> FlaskClient:
        """A logged-in client for "alice", "bob", "staff", or an anonymous one for "anon"."""
        if who not in self.clients:
            client = self.app.test_client()
            if who != "anon":
                response = login(client, getattr(self, who).email)
                assert response.status_code == 302, response.get_data(as_text=True)[:300]
            self.clients[who] = client
        return self.clients[who]


@pytest.fixture
def make_app(app_factory: Callable[..., Flask], emulator: Emulator) -> Callable[..., Flask]:
    """An app with setting overrides whose emulator webhooks go to its own test client."""

    def make(**overrides: Any) -> Flask:
        application = app_factory(**overrides)
        deliver_webhooks_to(application, emulator)
        return application

    return make


@pytest.fixture
def make_world(make_app: Callable[..., Flask], emulator: Emulator) -> Callable[..., World]:
    """Build the populated shop on an app with the given overrides."""

    def build(**overrides: Any) -> World:
        app = make_app(**overrides)
        catalog.seed_demo_products()
        products = {p.name: p for p in catalog.list_active_products()}
        world = World(
            app=app,
            alice=accounts.create_user("alice@example.com", PASSWORD),
            bob=accounts.create_user("bob@example.com", PASSWORD),
            staff=accounts.create_user("staff@example.com", PASSWORD, is_staff=True),
            products=products,
        )
        alice = world.client_for("alice")
        a, c = products["Product A"].id, products["Product C"].id
        token = page_token(alice)
        paid = session_id_from(alice.post("/checkout", data={f"qty-{a}": "1", "csrf_token": token}))
        emulator.pay(paid)
        emulator.deliver_pending()
        pending = session_id_from(alice.post("/checkout", data={f"qty-{c}": "2", "csrf_token": token}))
        world.alice_paid_session, world.alice_pending_session = paid, pending
        world.alice_paid_order = _order_id(paid)
        world.alice_pending_order = _order_id(pending)
        return world

    return build


def _order_id(session_id: str) -> int:
    _db.session.rollback()  # end the test's snapshot: requests commit on their own connections
    order_id = _db.session.scalar(select(Order.id).where(Order.stripe_session_id == session_id))
    assert order_id is not None
    return order_id


def fill_rule(rule: Rule, world: World) -> str:
    """A concrete URL for a rule, aimed at alice's data where the rule takes an id."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        if name == "order_id":
            values[name] = world.alice_pending_order
        elif name == "filename":
            values[name] = "shop.css" if rule.endpoint == "static" else "admin/css/bootstrap4/admin.css"
        elif name == "export_type":
            values[name] = "csv"
        elif name == "id":  # admin pages keyed by a record id in the path (e.g. a product's stock page)
            values[name] = 1
        elif name == "token":  # a password reset link's token (an invalid one: the page answers 404)
            values[name] = "not-a-valid-reset-token"
        elif name == "kind":  # the staff exports (/admin/exports/<kind>.csv)
            values[name] = "orders"
        elif name == "name":  # a product picture by its content-hashed name
            values[name] = "0" * 64 + ".jpg"
        elif name == "slug":  # a footer page (Contact, Terms, Privacy, Returns)
            values[name] = "terms"
        elif name == "product_id":  # a product's own page
            values[name] = 1
        elif name == "language":  # the footer's language switch
            values[name] = "de"
        elif name == "section":  # a list on Admin > Discounts and shipping (coupons, codes, rates)
            values[name] = "rates"
        elif name in ("dispute_id", "code_id", "rate_id", "row_id"):
            # A dispute's evidence page (issue 21; none exists here: 404 for staff); a promotion code or shipping
            # rate (Admin > Discounts and shipping, issue 23); a coupon, code or rate to delete (newcomer's fault 7).
            values[name] = 1
        else:
            raise AssertionError(f"no sample value for <{name}> in {rule.rule}")
    path = rule.build(values, append_unknown=False)
    assert path is not None
    path = path[1] if isinstance(path, tuple) else path
    if rule.endpoint.endswith(("edit_view", "details_view")):
        record = world.alice_pending_order if rule.endpoint.startswith("orders.") else 1
        path += f"?id={record}"
    elif rule.endpoint == "payments.success":
        path += f"?session_id={world.alice_paid_session}"
    return path


def routes(app: Flask, method: str) -> list[Rule]:
    """Every rule of the app accepting `method`, in a stable order."""
    return sorted((r for r in app.url_map.iter_rules() if method in (r.methods or ())), key=lambda r: r.rule)
