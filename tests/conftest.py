"""Shared fixtures: app, client, runner, db, auth helper, factories, and the local Stripe service.

Every payment test talks to the real stripe SDK, which an in-process transport routes to the
local Stripe service (stripe_emulator); its signed webhooks are delivered to this app's test client.
Set TEST_DATABASE_URL to run the same suite on PostgreSQL.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from config import TestingConfig
from shopapp import create_app
from shopapp.database import close_change_feeds
from shopapp.extensions import db as _db
from shopapp.extensions import limiter
from shopapp.models import Order, OrderStatus, Product, User
from shopapp.services import accounts, catalog
from stripe_emulator import Emulator, EmulatorHTTPClient
from tests.support import deliver_webhooks_to, writes_only_in_write_transaction

WEBHOOK_SECRET = TestingConfig.STRIPE_WEBHOOK_SECRET
PASSWORD = "correct horse battery"
_schema_ready: set[str] = set()


class IsolatedClient(FlaskClient):
    """A test client whose requests run in their own app context, as in a real server.

    The test keeps an app context pushed for direct database access; without this, Flask would reuse
    it for every request, so `g` (the logged-in user, the CSRF token) and the database session would
    leak from one client's request into another's.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


def _reset_schema(app: Flask) -> None:
    """Fresh tables per test: create_all on SQLite memory; truncate on a shared PostgreSQL database."""
    engine = _db.engine
    if engine.dialect.name == "postgresql":
        url = str(engine.url)
        if url not in _schema_ready:
            _db.drop_all()
            _db.create_all()
            _schema_ready.add(url)
        tables = ", ".join(t.name for t in reversed(_db.metadata.sorted_tables))
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        _db.drop_all()
        _db.create_all()


@pytest.fixture(autouse=True)
def _writes_only_in_write_transaction() -> Iterator[None]:
    """Every test: a request that writes outside write_transaction fails loudly (tests/support.py)."""
    with writes_only_in_write_transaction():
        yield


@pytest.fixture(autouse=True)
def _close_change_feeds() -> Iterator[None]:
    """Every test: close the PostgreSQL products feeds' listening connections its apps opened (one per app;
    hundreds of apps would exhaust max_connections)."""
    yield
    close_change_feeds()


@pytest.fixture(autouse=True)
def _fresh_limiter_state() -> None:
    """Flask-Limiter's one global Limiter keeps two flags across apps (each process of the shop builds one app;
    the tests build hundreds): "in-memory fallback enabled" only ever turns on, and "storage dead" stays set
    after a test stopped its Redis. Reset both so each test's app gets what its own config says."""
    limiter._in_memory_fallback_enabled = False
    limiter._storage_dead = False


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The local Stripe service, in process, delivering webhooks synchronously when asked."""
    emu = Emulator(webhook_url="http://shop.test/webhook/", webhook_secret=WEBHOOK_SECRET, async_delay=None)
    yield emu
    emu.close()


@pytest.fixture
def app_factory(emulator: Emulator, tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Build a testing app wired to the emulator, with per-test overrides.

    The database is TEST_DATABASE_URL (PostgreSQL in CI's second pass) or a fresh SQLite file, so that
    requests and the test use separate connections, as separate processes would.
    """
    made: list[Any] = []

    def make(**overrides: Any) -> Flask:
        settings = {
            "STRIPE_HTTP_CLIENT": EmulatorHTTPClient(emulator),
            "SQLALCHEMY_DATABASE_URI": TestingConfig.TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shop.db'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            **overrides,
        }
        app = create_app("testing", **settings)
        app.test_client_class = IsolatedClient
        ctx = app.app_context()
        ctx.push()
        made.append(ctx)
        _reset_schema(app)
        return app

    yield make
    for ctx in reversed(made):
        _db.session.remove()
        # Close this app's pooled connections now, not whenever the app is garbage collected:
        # on PostgreSQL a few hundred tests would otherwise exhaust max_connections.
        _db.engine.dispose()
        ctx.pop()


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator) -> Flask:
    """A testing app whose webhooks from the emulator go to its own test client."""
    application = app_factory()
    deliver_webhooks_to(application, emulator)
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """The flask CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def db(app: Flask) -> Any:
    """The Flask-SQLAlchemy handle (tables are fresh for each test)."""
    return _db


@pytest.fixture
def products(app: Flask) -> dict[str, Product]:
    """The three demo products, by name."""
    catalog.seed_demo_products()
    return {p.name: p for p in catalog.list_active_products()}


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Create users: make_user("a@example.com", staff=False)."""
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, *, staff: bool = False, password: str = PASSWORD) -> User:
        return accounts.create_user(email or f"shopper{next(counter)}@example.com", password, is_staff=staff)

    return make


class AuthActions:
    """Log a client in and out through the real forms."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, email: str, password: str = PASSWORD) -> Any:
        return self._client.post("/account/login", data={"email": email, "password": password})

    def logout(self) -> Any:
        return self._client.post("/account/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Auth helper bound to `client`."""
    return AuthActions(client)


@pytest.fixture
def shopper(make_user: Callable[..., User], auth: AuthActions) -> User:
    """A logged-in shopper on `client`."""
    user = make_user("shopper@example.com")
    auth.login(user.email)
    return user


@pytest.fixture
def buy(client: FlaskClient, products: dict[str, Product]) -> Callable[..., Any]:
    """Submit the Buy form: buy(A=2, C=1) -> response."""

    def submit(client_: FlaskClient | None = None, *, follow: bool = False, **quantities: int) -> Any:
        # follow=True: a refused Buy's 303 back to the shop page is followed (see tests.support.refused_checkout).
        data = {f"qty-{products[f'Product {k}'].id}": str(v) for k, v in quantities.items()}
        return (client_ or client).post("/checkout", data=data, follow_redirects=follow)

    return submit


def session_id_from(response: Any) -> str:
    """The Checkout Session id in a 303 to the hosted page."""
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    match = re.search(r"(cs_test_[A-Za-z0-9]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def fresh() -> Any:
    """The test's database session with its snapshot ended, so it sees what requests committed."""
    _db.session.rollback()
    return _db.session


def order_for_session(session_id: str) -> Order:
    """The order row for a session, read fresh."""
    fresh()
    order = _db.session.scalar(_db.select(Order).where(Order.stripe_session_id == session_id))
    assert order is not None
    return order


@pytest.fixture
def signed_post(client: FlaskClient, emulator: Emulator) -> Callable[..., Any]:
    """POST a body to the webhook signed with the test secret (or a given header)."""

    def post(body: bytes, header: str | None = None, path: str = "/webhook/") -> Any:
        signature = header if header is not None else emulator.sign(body)
        return client.post(path, data=body, headers={"Stripe-Signature": signature, "Content-Type": "application/json"})

    return post


# Whole-run log scan for secrets and card-like numbers (fails the run on a hit); see tests/logscan.py.
from tests.logscan import log_scan, pytest_terminal_summary  # noqa: E402, F401


@pytest.fixture
def stripe_dashboard(emulator: Emulator) -> stripe.StripeClient:
    """The Stripe account seen from outside the shop (like Stripe's dashboard), via the real SDK."""
    return stripe.StripeClient(
        "sk_test_dashboard",
        http_client=EmulatorHTTPClient(emulator),
        base_addresses={"api": "http://127.0.0.1:12111"},
        max_network_retries=0,
    )


@pytest.fixture
def paid_order(client: FlaskClient, shopper: User, buy: Callable[..., Any], emulator: Emulator) -> Callable[..., Order]:
    """A PAID order (2 x A + 1 x C = 79.97 by default), paid at the local service with its webhook delivered."""

    def make(**quantities: int) -> Order:
        session_id = session_id_from(buy(**(quantities or {"A": 2, "C": 1})))
        assert emulator.pay(session_id).status == 303
        emulator.deliver_pending()
        order = order_for_session(session_id)
        assert order.status == OrderStatus.PAID
        return order

    return make
