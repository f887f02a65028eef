"""Real processes for the concurrency proofs: the shop under gunicorn, the local Stripe service, a database.

Nothing here is a test double: gunicorn runs `wsgi:app` with SHOP_CONFIG=staging (production, test-mode Stripe)
and 4 sync workers,
the Stripe service is `python -m stripe_emulator` on its own port delivering signed webhooks to gunicorn,
and the database is a SQLite file or a fresh PostgreSQL database migrated with `flask db upgrade`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from stripe_emulator.webhooks import sign
from tests.support import free_port, stripe_service_command, wait_until

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_concurrency_proofs"
STRIPE_KEY = "sk_test_concurrency_proofs"
PASSWORD = "correct horse battery"
WORKERS = 4
T = TypeVar("T")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ databases


def database_kind() -> str:
    """'postgresql' when TEST_DATABASE_URL names one (scripts/test.sh's second run), else 'sqlite'."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def admin_url() -> str:
    """The maintenance database of the PostgreSQL cluster under test (PG_ADMIN_URL, else derived)."""
    explicit = os.environ.get("PG_ADMIN_URL")
    if explicit:
        return explicit
    return make_url(os.environ["TEST_DATABASE_URL"]).set(database="postgres").render_as_string(hide_password=False)


@contextmanager
def fresh_database(tmp_dir: Path, name: str, pg_admin: str | None = None) -> Iterator[str]:
    """A brand-new empty database (SQLite file, or CREATE DATABASE on PostgreSQL); dropped afterwards."""
    if pg_admin is None and database_kind() == "sqlite":
        yield f"sqlite:///{tmp_dir / (name + '.db')}"
        return
    admin = create_engine(pg_admin or admin_url(), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    db_name = f"{name}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    try:
        yield make_url(pg_admin or admin_url()).set(database=db_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def shop_environment(database_url: str, stripe_base: str, **extra: str) -> dict[str, str]:
    """Production settings for the shop processes, all through the environment (config.py reads them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_DATABASE_URL", "PG_ADMIN_URL"))}
    env.update(
        SHOP_CONFIG="staging",  # production code paths; Stripe is the local service
        SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_base,
        # A lost reply must not keep a worker for the default 10 s.
        STRIPE_TIMEOUT_SECONDS="2",
        # The proofs send many requests from one address; the limits are not under test here.
        CHECKOUT_RATE_LIMIT="10000 per minute",
        LOGIN_RATE_LIMIT="10000 per minute",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        # Staging refuses to start without the public address (links, return URLs); start_stack sets the real one.
        SHOP_BASE_URL="http://127.0.0.1",
    )
    env.update(extra)
    return env


def migrate(database_url: str, log_dir: Path) -> None:
    """Run `flask db upgrade` against the database in a child process (the real migration path)."""
    env = shop_environment(database_url, "http://127.0.0.1:9")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (log_dir / "migrate.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------ processes


@dataclass
class Service:
    """A child process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGTERM by default), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_worker(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, ready: str) -> Service:
    """Start a process that listens on no port; wait (bounded) until its log shows `ready`."""
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    service = Service(name, proc, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{service.log_text()[-3000:]}")
        return ready in service.log_text()

    wait_until(up, f"{name} to start", timeout=60)
    return service


def mail_worker_command(poll: float = 0.2) -> list[str]:
    """`flask mail worker`, the sender process production runs beside gunicorn (nothing is sent in a request)."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "worker", "--poll", str(poll)]


def start_service(name: str, argv: list[str], env: Mapping[str, str], port: int, log_dir: Path) -> Service:
    """Start a process and wait (bounded) until it listens on `port`."""
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    service = Service(name, proc, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{service.log_text()[-3000:]}")
        return _listening(port)

    wait_until(up, f"{name} on port {port}", timeout=60)
    return service


@dataclass
class Stack:
    """The shop under gunicorn, the Stripe service feeding it webhooks, and the database they share."""

    database_url: str
    base_url: str
    stripe_url: str
    shop: Service
    stripe: Service
    engine: Engine
    http: requests.Session = field(default_factory=requests.Session)
    # The real SMTP server (python -m shopapp.devmail) the shop's workers send to, and where it keeps mail.
    smtp: Service | None = None
    mail_dir: Path | None = None
    mail_port: int | None = None
    # `flask mail worker`: the sender process that delivers what the shop's requests queued.
    mailer: Service | None = None

    @property
    def kind(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    # --- the Stripe service's test controls
    def stripe_get(self, path: str, **params: Any) -> Any:
        """GET a /_emulator control."""
        response = self.http.get(f"{self.stripe_url}/_emulator/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def stripe_post(self, path: str, **data: Any) -> Any:
        """POST a /_emulator control (JSON body)."""
        response = self.http.post(f"{self.stripe_url}/_emulator/{path}", json=data, timeout=60)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()

    def event_for_session(self, event_type: str, session_id: str) -> dict[str, Any]:
        """The one event of `event_type` about a Checkout Session."""
        events = [
            e for e in self.stripe_get("events", type=event_type)["data"] if e["data"]["object"]["id"] == session_id
        ]
        assert len(events) == 1, (event_type, session_id, len(events))
        return events[0]

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of an event, as the service recorded it."""
        return list(self.stripe_get(f"events/{event_id}/attempts")["data"])

    def sessions_for_order(self, order_id: int) -> list[dict[str, Any]]:
        """Checkout Sessions at the service whose metadata names the order."""
        return [s for s in self.stripe_get("sessions").values() if s["metadata"].get("order_id") == str(order_id)]

    # --- the shop
    def deliver(self, event: Mapping[str, Any]) -> int:
        """POST one signed delivery of `event` to the shop, exactly as the service would; returns the status."""
        body = json.dumps(event, indent=2).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(WEBHOOK_SECRET, body)}
        return requests.post(f"{self.base_url}/webhook/", data=body, headers=headers, timeout=60).status_code

    def locked_errors(self) -> int:
        """How many times the shop's workers logged SQLite's 'database is locked'."""
        return self.shop.log_text().count("database is locked")

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the database."""
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows from the database."""
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def paid_transitions(self, order_id: int) -> int:
        """Timeline entries that moved the order to PAID (the compare-and-set winners)."""
        sql = "SELECT count(*) FROM order_events WHERE order_id = :o AND to_status = 'paid'"
        return int(self.scalar(sql, o=order_id))

    def stored_events(self, event_id: str) -> int:
        """Rows stored for one Stripe event id."""
        return int(self.scalar("SELECT count(*) FROM payment_events WHERE stripe_event_id = :e", e=event_id))


def start_smtp(log_dir: Path, port: int) -> tuple[Service, Path]:
    """The local SMTP server (shopapp.devmail) as its own process; returns it and its mail folder."""
    mail_dir = log_dir / "mail"
    argv = [sys.executable, "-m", "shopapp.devmail", "--port", str(port), "--dir", str(mail_dir)]
    return start_service("smtp", argv, os.environ, port, log_dir), mail_dir


def start_stack(database_url: str, log_dir: Path, **shop_env: str) -> Stack:
    """Start the Stripe service, an SMTP server and gunicorn (4 sync workers, preloaded app) on free ports."""
    shop_port, stripe_port, smtp_port = free_port(), free_port(), free_port()
    while len({shop_port, stripe_port, smtp_port}) < 3:
        stripe_port, smtp_port = free_port(), free_port()
    smtp, mail_dir = start_smtp(log_dir, smtp_port)
    shop_env = {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEV_DIR": str(mail_dir),
        "SHOP_BASE_URL": f"http://127.0.0.1:{shop_port}",
        **shop_env,
    }
    stripe_url = f"http://127.0.0.1:{stripe_port}"
    stripe_service = start_service(
        "stripe",
        # Delayed payments complete only when a test says so.
        stripe_service_command(stripe_port, shop_port, WEBHOOK_SECRET, "--async-delay", "86400"),
        os.environ,
        stripe_port,
        log_dir,
    )
    started = False
    try:
        shop = start_service(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{shop_port}",
                "--preload",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--backlog",
                "256",
                "wsgi:app",
            ],
            shop_environment(database_url, stripe_url, **shop_env),
            shop_port,
            log_dir,
        )
        mailer = start_worker(
            "mail-worker",
            mail_worker_command(),
            shop_environment(database_url, stripe_url, **shop_env),
            log_dir,
            "Mail worker:",
        )
        started = True
    finally:
        if not started:  # gunicorn did not come up: do not leave the Stripe service behind
            if "shop" in locals():
                shop.stop()
            stripe_service.stop()
            smtp.stop()
    return Stack(
        database_url,
        f"http://127.0.0.1:{shop_port}",
        stripe_url,
        shop,
        stripe_service,
        create_engine(database_url, pool_pre_ping=True),
        smtp=smtp,
        mail_dir=mail_dir,
        mail_port=smtp_port,
        mailer=mailer,
    )


def stop_stack(stack: Stack) -> None:
    """Stop both processes and release the database engine."""
    stack.shop.stop(signal.SIGINT)  # gunicorn's quick shutdown: nothing is in flight any more
    stack.stripe.stop()
    if stack.mailer is not None:
        stack.mailer.stop()
    if stack.smtp is not None:
        stack.smtp.stop()
    stack.http.close()
    stack.engine.dispose()


# ------------------------------------------------------------------------------------------ concurrency


def released_together(jobs: list[Callable[[], T]], timeout: float = 120.0) -> tuple[list[T], float]:
    """Run every job on its own thread, all released by one barrier; returns results in order and seconds taken."""
    barrier = threading.Barrier(len(jobs) + 1)
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job: Callable[[], T]) -> None:
        barrier.wait(timeout)
        try:
            results[index] = job()
        except BaseException as error:  # surfaced to the test below, never swallowed
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout)
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "jobs still running after the timeout"
    if errors:
        raise errors[0]
    return results, elapsed


# ------------------------------------------------------------------------------------------ a shopper


class Shopper:
    """A browser-ish HTTP client: logs in through the real form, keeps its cookies, submits the Buy form.

    Production cookies are Secure, which a cookie jar would refuse to send over plain HTTP to 127.0.0.1,
    so the cookies are carried by hand.
    """

    def __init__(self, base_url: str, email: str) -> None:
        self.base_url = base_url
        self.email = email
        self.cookies: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request without following redirects; Set-Cookie values are kept."""
        response = requests.request(
            method, self.base_url + path, headers=self._headers(), allow_redirects=False, timeout=60, **kwargs
        )
        self.cookies.update({c.name: c.value or "" for c in response.cookies})
        return response

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on `path`."""
        page = self.request("GET", path)
        assert page.status_code == 200, (path, page.status_code)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page.text
        )
        assert match, f"no csrf token on {path}"
        return match.group(1)

    def login(self) -> None:
        """Log in through the real form."""
        token = self.csrf("/account/login")
        response = self.request(
            "POST", "/account/login", data={"csrf_token": token, "email": self.email, "password": PASSWORD}
        )
        assert response.status_code == 302, (response.status_code, response.text[:500])

    def buy_form(self, quantities: Mapping[int, int]) -> dict[str, str]:
        """The Buy form's fields (with a fresh CSRF token) for {product_id: quantity}."""
        data = {f"qty-{pid}": str(qty) for pid, qty in quantities.items()}
        data["csrf_token"] = self.csrf("/")
        return data

    def submit(self, form: Mapping[str, str]) -> requests.Response:
        """POST the Buy form (no redirects followed: 303 to the hosted page is the success)."""
        return self.request("POST", "/checkout", data=dict(form))


# ------------------------------------------------------------------------------------------ figures


def record(scenario: int, kind: str, figures: Mapping[str, Any]) -> None:
    """Print one scenario's measured figures, and add them to CONCURRENCY_FIGURES (a JSON file) if set."""
    line = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[scenario {scenario} on {kind}] {line}", flush=True)
    path = os.environ.get("CONCURRENCY_FIGURES")
    if not path:
        return
    target = Path(path)
    data = json.loads(target.read_text()) if target.exists() and target.stat().st_size else {}
    data.setdefault(kind, {})[str(scenario)] = dict(figures)
    target.write_text(json.dumps(data, indent=2, sort_keys=True))
