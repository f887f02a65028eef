"""Helpers shared by the tests that start real servers and processes."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

T = TypeVar("T")

# Stripe's published example objects and the fields its type declarations always return, kept in the repository
# (tests/fixtures/stripe/README.md says where they came from) so the suite needs nothing beside a fresh clone.
STRIPE_FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "stripe"
STRIPE_FIXTURES = STRIPE_FIXTURES_DIR / "fixtures3-subset.json"
STRIPE_REQUIRED_FIELDS = STRIPE_FIXTURES_DIR / "required_fields.json"


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deliver_webhooks_to(app: Flask, emulator: Any) -> None:
    """Send the in-process local Stripe service's webhook deliveries to `app`'s own test client."""
    webhook_client = app.test_client()

    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        return webhook_client.post(urlsplit(url).path, data=body, headers=headers).status_code

    emulator.deliverer.sender = send


def sender_for(app: Flask) -> Callable[[], Any]:
    """A callable that runs one `flask mail send-pending` pass of `app` (the sender process's work) in its own
    app context, as the separate process would; returns the pass's summary."""
    from shopapp.services import outbox

    def send() -> Any:
        with app.app_context():
            return outbox.send_pending()

    return send


def wait_until(condition: Callable[[], T], what: str, timeout: float = 30.0, every: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        threading.Event().wait(every)  # a bounded poll interval, not synchronisation


def stripe_service_command(port: int, shop_port: int, webhook_secret: str, *extra: str) -> list[str]:
    """The command line that runs the local Stripe service on `port`, delivering webhooks to the shop."""
    return [
        sys.executable,
        "-m",
        "stripe_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webhook-url",
        f"http://127.0.0.1:{shop_port}/webhook/",
        "--webhook-secret",
        webhook_secret,
        *extra,
    ]


def cancel_path(emulator: Any, session_id: str) -> str:
    """The path and query of a Checkout Session's cancel URL (the shop's own, with its cancel token)."""
    parts = urlsplit(emulator.sessions[session_id]["cancel_url"])
    return f"{parts.path}?{parts.query}"


def back_to_shop(response: Any) -> bool:
    """True for a refused Buy: a 303 back to the shop page (issue 15: never a page rendered at POST /checkout)."""
    return response.status_code == 303 and response.headers.get("Location") in ("/", "http://shop.test/")


def refused_checkout(response: Any) -> str:
    """The shop page a refused Buy led to (the POST was made with follow_redirects=True): asserts the 303 back
    to the shop and returns the page's text, which shows the message and the quantities as typed."""
    assert [r.status_code for r in response.history] == [303], (response.status_code, response.history)
    assert response.request.path == "/" and response.status_code == 200
    return str(response.get_data(as_text=True))


# --- Writes only inside write_transaction (staff helper "staff") ------------------------------------------------


class WriteOutsideTransaction(AssertionError):
    """App code wrote to the database outside shopapp.services.tx.write_transaction."""


def _in_write_transaction(session: Any) -> bool:
    # write_transaction opens its connection with execution_options(shop_write=True) (shopapp.database.WRITE);
    # a read transaction (or none) has no such option.
    if not session.in_transaction():
        return False
    return bool(session.connection().get_execution_options().get("shop_write"))


def _guard_flush(session: Any, _flush_context: Any, _instances: Any) -> None:
    changes = session.new or session.dirty or session.deleted
    if changes and has_request_context() and not _in_write_transaction(session):
        raise WriteOutsideTransaction(
            "a request flushed ORM changes outside write_transaction: route the write through a service"
        )


def _guard_execute(state: Any) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    if writes and has_request_context() and not _in_write_transaction(state.session):
        raise WriteOutsideTransaction(
            f"a request ran {state.statement!s:.60} outside write_transaction: route it through a service"
        )


@contextmanager
def writes_only_in_write_transaction() -> Iterator[None]:
    """While active, any ORM flush or INSERT/UPDATE/DELETE made while handling a request outside
    write_transaction raises WriteOutsideTransaction (tests' own set-up writes, outside requests, are allowed)."""
    event.listen(OrmSession, "before_flush", _guard_flush)
    event.listen(OrmSession, "do_orm_execute", _guard_execute)
    try:
        yield
    finally:
        event.remove(OrmSession, "do_orm_execute", _guard_execute)
        event.remove(OrmSession, "before_flush", _guard_flush)


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """A throwaway redis-server on a free 127.0.0.1 port (no persistence)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (scripts/test.sh installs it)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(up, "redis-server", 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


_CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def without_csrf_tokens(html: str) -> str:
    """The page with every CSRF token's value blanked, for comparing two views of one page.

    Flask-WTF signs each token with the current second, so the text of two tokens of one session differs
    whenever the clock ticks between two requests: comparing pages with their tokens depends on the clock.
    """
    return _CSRF_VALUE.sub(r"\1\2", html)


_CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(page: str) -> str:
    """The first CSRF token in an HTML page."""
    match = _CSRF_TOKEN.search(page)
    assert match, "no csrf_token in page"
    return match.group(1) or match.group(2)
