"""Browser journeys: the shop and the local Stripe service on live 127.0.0.1 ports, driven by Chromium.

One shop server (werkzeug, in a thread of this process) and one `python -m stripe_emulator` process
serve the whole session; before every test the shop's SQLite file is replaced by a freshly migrated
and seeded copy and the emulator is reset, so each journey starts from the same clean shop.

These tests exercise the user interface, not the database: they always run the shop on its own
SQLite file, so the PostgreSQL pass of scripts/test.sh (TEST_DATABASE_URL set) does not collect them
again — it would repeat exactly the same browser runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from config import TestingConfig
from shopapp import create_app, devmail
from shopapp.extensions import db
from shopapp.models import Order, Product
from shopapp.services import accounts
from tests.support import free_port, stripe_service_command, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEBHOOK_SECRET = "whsec_browser_tests"
PASSWORD = "correct horse battery"
STAFF_EMAIL = "staff@example.com"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
# Long enough that a delayed payment stays "processing" until the test completes it through the emulator's control.
ASYNC_DELAY_SECONDS = 600
SERIOUS = ("serious", "critical")
# The name a shopper hears for the focused element: aria-label, its <label>, or its text.
FOCUSED_NAME = """(() => {
  const el = document.activeElement;
  if (!el) { return null; }
  if (el.getAttribute("aria-label")) { return el.getAttribute("aria-label"); }
  if (el.labels && el.labels.length) { return el.labels[0].textContent.trim(); }
  return (el.value && el.tagName === "INPUT" && el.type === "submit") ? el.value : el.textContent.trim();
})()"""

if not TestingConfig.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
    # See the module docstring: the PostgreSQL pass would only repeat the same browser runs.
    collect_ignore_glob = ["test_*.py"]


def _post_json(url: str, data: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(data or {}).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class StripeService:
    """The local Stripe service as a live process, with its HTTP test controls."""

    def __init__(self, shop_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            # Stripe Tax's test mode registered in California (issue 23); no effect unless a session asks for tax.
            stripe_service_command(
                self.port,
                shop_port,
                WEBHOOK_SECRET,
                "--async-delay",
                str(ASYNC_DELAY_SECONDS),
                "--tax-registration",
                "US-CA:7.25",
            ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it prints its URL (or exits)
        assert "listening on" in line, line

    def control(self, path: str, data: dict[str, Any] | None = None) -> Any:
        """POST to one of the emulator's /_emulator controls."""
        return _post_json(f"{self.url}/_emulator/{path}", data)

    def sessions(self) -> dict[str, dict[str, Any]]:
        """Every Checkout Session the service holds, by id."""
        return dict(_get_json(f"{self.url}/_emulator/sessions"))

    def events(self, type_: str) -> list[dict[str, Any]]:
        """Events of one type the service has created."""
        return list(_get_json(f"{self.url}/_emulator/events?type={type_}")["data"])

    def stop(self) -> None:
        """End the process started above."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


class _Dispatch:
    """The server binds before the app exists (the app's config needs the port); requests go to `app`."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@dataclass
class Shop:
    """The live shop: its URL, app (for reading rows), database files and the Stripe service."""

    url: str
    app: Flask
    db_file: Path
    template_db: Path
    stripe: StripeService
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)
    # The shop's SMTP server (shopapp.devmail, as scripts/run.sh runs it) keeps every message here.
    mail_dir: Path | None = None

    def reset(self) -> None:
        """Swap in a fresh copy of the migrated, seeded database and empty the Stripe service."""
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        shutil.copyfile(self.template_db, self.db_file)
        # The brand a previous journey saved must not outlive its database (services.brand caches it).
        self.app.extensions.pop("shop_brand_cache", None)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db_file}{suffix}").unlink(missing_ok=True)
        self.stripe.control("reset")

    def orders(self, email: str) -> list[Order]:
        """The orders of one shopper, read fresh from the database (items loaded)."""
        with self.app.app_context():
            user = accounts.find_user_by_email(email)
            if user is None:
                return []
            rows = db.session.scalars(select(Order).where(Order.user_id == user.id).order_by(Order.id)).all()
            for order in rows:
                _ = list(order.items)
            db.session.expunge_all()
            return list(rows)

    def create_user(self, email: str) -> None:
        """A shopper account, made directly (journeys that are not about signing up log in with it)."""
        with self.app.app_context():
            accounts.create_user(email, PASSWORD)
            db.session.remove()

    def product(self, name: str) -> Product:
        """One product, read fresh."""
        with self.app.app_context():
            product = db.session.scalar(select(Product).where(Product.name == name))
            assert product is not None
            db.session.expunge(product)
            return product

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
        return wait_until(condition, what, timeout)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """An empty screenshot folder for this run (test-artifacts/ is git-ignored)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop and the local Stripe service on free ports, sharing a webhook secret."""
    work = tmp_path_factory.mktemp("browser-shop")
    template_db, db_file = work / "template.db", work / "shop.db"
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    port = server.server_port
    # Serve from the start (requests only come once the app is set), so shutdown() below never waits forever.
    thread = threading.Thread(target=server.serve_forever, name="shop-server", daemon=True)
    thread.start()
    stripe = StripeService(port)
    mail_dir, mail_port = work / "mail", free_port()
    smtp = devmail.start("127.0.0.1", mail_port, mail_dir)
    try:
        # Build the template database with the real commands: every migration, the demo products, one staff
        # account. In a subprocess, because Alembic's logging set-up would silence this process's loggers.
        # The seed draws the demo pictures into the same upload folder the live app serves them from.
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{template_db}",
            "SHOP_CONFIG": "development",
            "UPLOAD_FOLDER": str(work / "uploads"),
        }
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        for command in (["db", "upgrade"], ["seed"], ["create-staff", STAFF_EMAIL, "--password", PASSWORD]):
            subprocess.run([*flask, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
        shutil.copyfile(template_db, db_file)
        dispatch.app = create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{db_file}",
            SERVER_NAME=None,
            STRIPE_API_BASE=stripe.url,
            STRIPE_SECRET_KEY="sk_test_browser",
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            UPLOAD_FOLDER=str(work / "uploads"),
            # Real forms in a real browser: CSRF protection on, as in production.
            WTF_CSRF_ENABLED=True,
            # An admin view error becomes a logged 500 the journey sees, not a quiet "Failed to save" flash.
            FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION=True,
            MAIL_PORT=mail_port,
            MAIL_DEV_DIR=str(mail_dir),
            SHOP_BASE_URL=f"http://127.0.0.1:{port}",
        )
        yield Shop(f"http://127.0.0.1:{port}", dispatch.app, db_file, template_db, stripe, server, thread, mail_dir)
    finally:
        server.shutdown()
        server.server_close()
        stripe.stop()
        smtp.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (no browser download is possible here)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@dataclass
class AxeReport:
    """axe-core results per page visited in this session, for the report at the end."""

    pages: dict[str, dict[str, int]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)


_AXE = Axe()
_REPORT = AxeReport()


class Journey:
    """One browser tab plus the checks every page gets: axe (0 serious/critical) and no CSP violations."""

    def __init__(self, shop: Shop, browser: Browser, name: str) -> None:
        self.shop = shop
        self.browser = browser
        self.name = name
        self._shots = 0
        self.use_context()

    def use_context(self, **options: Any) -> None:
        """Start over in a new browser context (e.g. java_script_enabled=False)."""
        if getattr(self, "context", None) is not None:
            self.context.close()
        self.context: BrowserContext = self.browser.new_context(viewport=DESKTOP, **options)
        self.context.set_default_timeout(10_000)
        self.page: Page = self.context.new_page()
        self.csp_errors: list[str] = []
        self.page.on("console", self._console)

    def close(self) -> None:
        """Close the browser context."""
        self.context.close()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_errors.append(message.text)

    def goto(self, path: str) -> Any:
        """Open a shop path (or an absolute URL)."""
        return self.page.goto(path if path.startswith("http") else self.shop.url + path)

    def check(self, label: str) -> dict[str, int]:
        """Run axe-core on the current page; fail on any serious or critical violation or CSP report."""
        results = _AXE.run(self.page)
        violations = results.response["violations"]
        counts: dict[str, int] = {}
        for violation in violations:
            impact = violation.get("impact") or "unknown"
            counts[impact] = counts.get(impact, 0) + len(violation["nodes"])
            _REPORT.rules.setdefault(violation["id"], impact)
        parts = urlsplit(self.page.url)
        where = "stripe" if parts.port == self.shop.stripe.port else "shop"
        path = f"{where} {re.sub(r'cs_test_[A-Za-z0-9]+', '{session}', parts.path)}"
        path = re.sub(r"/reset/[^/]+", "/reset/{token}", path)  # a reset link's token is a secret
        previous = _REPORT.pages.get(path, {})
        # Keep the worst result seen for a path (the same page is visited in several states).
        _REPORT.pages[path] = {k: max(counts.get(k, 0), previous.get(k, 0)) for k in {*counts, *previous}}
        bad = [
            f"{v['id']} [{v['impact']}]: {v['help']} -> {[n['target'] for n in v['nodes']][:5]}"
            for v in violations
            if v.get("impact") in SERIOUS
        ]
        assert not bad, f"axe on {label} ({self.page.url}):\n" + "\n".join(bad)
        assert not self.csp_errors, f"CSP violations on {label}: {self.csp_errors}"
        return counts

    def snap(self, label: str) -> None:
        """Screenshot the page at desktop width and at 375 px, then return to the desktop size."""
        self._shots += 1
        stem = f"{self.name}-{self._shots:02d}-{label}"
        for size_name, size in (("desktop", DESKTOP), ("375px", PHONE)):
            # A viewport as tall as the page, rather than full_page=True: sticky parts (the buy bar) then sit
            # where they belong instead of being painted over the middle of a stitched image.
            self.page.set_viewport_size(size)
            height = self.page.evaluate("document.documentElement.scrollHeight")
            self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, 6000))})
            self.page.screenshot(path=str(SCREENSHOTS / f"{stem}-{size_name}.png"))
        self.page.set_viewport_size(DESKTOP)

    def visit(self, label: str) -> None:
        """The per-page routine: accessibility check, then screenshots."""
        self.check(label)
        self.snap(label)

    def tab_to(self, name: str, limit: int = 40) -> None:
        """Press Tab until the focused element's accessible name or label is `name` (bounded)."""
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            if self.page.evaluate(FOCUSED_NAME) == name:
                return
        raise AssertionError(f"{name!r} is not reachable with Tab within {limit} presses")

    def assert_focus_visible(self) -> None:
        """The focused element draws a focus indicator (an outline or a box shadow)."""
        style = self.page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return {outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow}; })()"
        )
        visible = (style["outline"] != "none" and style["width"] != "0px") or style["shadow"] != "none"
        assert visible, f"no visible focus indicator: {style}"

    # Shopper actions, through the real pages.

    def sign_up(self, email: str) -> None:
        """Create an account through the sign-up form."""
        self.goto("/account/signup")
        self.visit("signup")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        self.page.get_by_label("Repeat password").fill(PASSWORD)
        self.page.get_by_role("button", name="Create account").click()
        self.page.wait_for_url(self.shop.url + "/")

    def log_in(self, email: str) -> None:
        """Log in through the log-in form."""
        self.goto("/account/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_load_state()

    def log_out(self) -> None:
        """Log out from the account menu in the header."""
        self.page.locator(".account-menu summary").click()
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_load_state()

    def choose(self, **quantities: int) -> None:
        """Type quantities into the product cards: choose(A=2, C=1)."""
        for letter, quantity in quantities.items():
            self.page.get_by_role("spinbutton", name=f"Quantity of Product {letter}").fill(str(quantity))

    def pay_with(self, card: str, method: str | None = None) -> None:
        """Fill the hosted card page of the local Stripe service and submit it."""
        if method:
            # Test-only methods sit behind the page's "Test options" disclosure, as on Stripe's test pages.
            options = self.page.locator("details.test-options")
            if options.get_attribute("open") is None:
                self.page.get_by_text("Test options").click()
            self.page.get_by_label(method).check()
        else:  # the card fields are hidden while a bank debit is chosen
            self.page.get_by_label("Card number").fill(card)
            self.page.get_by_label("Expiry (MM / YY)").fill("1234")  # typed without the slash, as shoppers do
            self.page.get_by_label("CVC").fill("123")
        # By id: the page speaks the session's locale ("Bezahlen" in German, "Complete order" when nothing is due).
        self.page.locator("#pay-button").click()


@pytest.fixture
def journey(shop: Shop, browser: Browser, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Journey]:
    """A fresh shop database, an empty Stripe service, and a new browser context."""
    shop.reset()
    name = request.node.originalname.removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "javascript" in callspec.params:
        name += "-js" if callspec.params["javascript"] else "-no-js"
    current = Journey(shop, browser, name)
    yield current
    current.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the axe-core counts by impact for every page the journeys checked."""
    if not _REPORT.pages:
        return
    terminalreporter.section("axe-core violations by impact (per page checked)")
    for page, counts in sorted(_REPORT.pages.items()):
        summary = ", ".join(f"{impact}: {n}" for impact, n in sorted(counts.items())) or "none"
        terminalreporter.write_line(f"{page}: {summary}")
    if _REPORT.rules:
        terminalreporter.write_line("rules seen: " + ", ".join(f"{k} ({v})" for k, v in sorted(_REPORT.rules.items())))
