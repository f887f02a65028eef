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
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        sys.executable, "-m", "stripe_emulator", "--host", "127.0.0.1", "--port", str(port),
        "--webhook-url", f"http://127.0.0.1:{shop_port}/webhook/", "--webhook-secret", webhook_secret, *extra,
    ]


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
