"""Mail under an SMTP server that accepts connections and never answers (issue 26, finding 4).

    python -m bench.mail_hang [--root DIR] [--runs 20] [--workers 2]

Starts, on free 127.0.0.1 ports: a "hanging" SMTP server (accepts every connection, never sends its greeting),
the shop under gunicorn (sync workers, staging settings, a migrated SQLite file) with MAIL_SERVER pointed at it
and MAIL_TIMEOUT_SECONDS=10, and, when the code has one, the sender process (`flask mail worker`). Then it measures:

- the shop page (GET /): median and max of `--runs` requests made right after 4 sign-ups queued mail;
- POST /account/forgot for a registered address and for an unknown one, alternating, `--runs` each: medians of
  the time to the whole answer and of the time until the server closed the connection (a sync worker is busy
  until then: the old after-response sender ran there).

`--root` runs the same measurement on another checkout (e.g. the code before the fix), so both are measured by
one script on one machine. A measurement script, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent.parent
PASSWORD = "marble-canyon-lilac"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def hanging_smtp() -> Iterator[int]:
    """A TCP server that accepts every connection and never says a word (a stalled SMTP relay)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        server.close()


def wait_for_port(port: int, deadline: float = 60.0) -> None:
    """Until something listens on `port` (bounded)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            threading.Event().wait(0.1)
    raise SystemExit(f"nothing listens on {port} after {deadline:.0f} s")


@dataclass
class Exchange:
    """One HTTP exchange over a raw socket: the answer, when it was complete, and when the server hung up."""

    status: int
    body: bytes
    cookies: dict[str, str]
    answered: float  # seconds until the whole response (headers and Content-Length bytes) had arrived
    closed: float  # seconds until the server closed the connection (the worker is free only then)


def exchange(
    port: int,
    method: str,
    path: str,
    cookies: dict[str, str],
    form: dict[str, str] | None = None,
    answered_event: threading.Event | None = None,
) -> Exchange:
    """Send one request and read until the server closes (sync gunicorn workers close after each response);
    `answered_event` is set as soon as the whole response has arrived."""
    body = urlencode(form).encode() if form is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    if form is not None:
        head.append("Content-Type: application/x-www-form-urlencoded")
    if cookies:
        # Production cookies are Secure; a client library would not send them over plain HTTP.
        head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    data, answered = b"", None
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if answered is None and b"\r\n\r\n" in data:
                headers, _, rest = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", headers)
                if length and len(rest) >= int(length.group(1)):
                    answered = time.perf_counter() - started
                    if answered_event is not None:
                        answered_event.set()
    closed = time.perf_counter() - started
    headers, _, rest = data.partition(b"\r\n\r\n")
    jar = dict(re.findall(rb"(?im)^set-cookie:\s*([^=;\s]+)=([^;\r\n]*)", headers))
    return Exchange(
        status=int(headers.split(b" ", 2)[1]),
        body=rest,
        cookies={k.decode(): v.decode() for k, v in jar.items()},
        answered=answered if answered is not None else closed,
        closed=closed,
    )


def timed_post(port: int, path: str, form: dict[str, str], answered_event: threading.Event | None = None) -> Exchange:
    """One form POST from a fresh browser that fetched the form first (its cookie and CSRF token)."""
    page = exchange(port, "GET", path, {})
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.body)
    form = {**form, "csrf_token": token.group(1).decode() if token else ""}
    return exchange(port, "POST", path, page.cookies, form, answered_event)


def measure(root: Path, runs: int, workers: int) -> dict[str, str]:
    """Start everything against `root`'s code and return the figures."""
    work = Path(tempfile.mkdtemp(prefix="mail-hang."))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with hanging_smtp() as smtp_port:
            port = free_port()
            base = f"http://127.0.0.1:{port}"  # SHOP_BASE_URL
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "FLASK_", "TEST_", "STRIPE_"))},
                "SHOP_CONFIG": "staging",
                "SECRET_KEY": secrets.token_hex(32),
                "DATABASE_URL": f"sqlite:///{work / 'shop.db'}",
                "STRIPE_SECRET_KEY": "sk_test_mail_hang",
                "STRIPE_WEBHOOK_SECRET": "whsec_mail_hang",
                "STRIPE_API_BASE": "http://127.0.0.1:9",
                "SHOP_BASE_URL": base,
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": str(smtp_port),
                "MAIL_TIMEOUT_SECONDS": "10",
                "MAIL_DEV_DIR": str(work / "mail"),
                "RATELIMIT_ENABLED": "0",
                "SESSION_COOKIE_SECURE": "0",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(root),
            }
            flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
            subprocess.run([*flask, "db", "upgrade"], cwd=root, env=env, check=True, capture_output=True, timeout=120)
            log = (work / "gunicorn.log").open("wb")
            gunicorn = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync"]
            gunicorn += ["--bind", f"127.0.0.1:{port}", "--timeout", "120", "wsgi:app"]
            procs.append(subprocess.Popen(gunicorn, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT))
            help_text = subprocess.run([*flask, "mail", "--help"], cwd=root, env=env, capture_output=True, text=True)
            has_worker = " worker " in help_text.stdout or "\n  worker" in help_text.stdout
            if has_worker:
                worker_log = (work / "mail-worker.log").open("wb")
                procs.append(
                    subprocess.Popen(
                        [*flask, "mail", "worker"], cwd=root, env=env, stdout=worker_log, stderr=subprocess.STDOUT
                    )
                )
            wait_for_port(port)
            known = "known@example.com"
            first = timed_post(port, "/account/signup", {"email": known, "password": PASSWORD, "confirm": PASSWORD})
            assert first.status == 302, f"sign-up answered {first.status}: the measurement would be meaningless"

            # 4 sign-ups at once (each queues a welcome); as soon as all 4 are answered, the shop page, 20 times.
            signed_up: list[int] = []
            answered = [threading.Event() for _ in range(4)]

            def sign_up(n: int) -> None:
                form = {"email": f"s{n}@example.com", "password": PASSWORD, "confirm": PASSWORD}
                signed_up.append(timed_post(port, "/account/signup", form, answered[n]).status)

            signups = [threading.Thread(target=sign_up, args=(n,)) for n in range(4)]
            for thread in signups:
                thread.start()
            for event in answered:
                event.wait(120)
            pages = [exchange(port, "GET", "/", {}).answered for _ in range(runs)]
            for thread in signups:
                thread.join(120)

            known_times: list[Exchange] = []
            unknown_times: list[Exchange] = []
            for n in range(runs):
                known_times.append(timed_post(port, "/account/forgot", {"email": known}))
                unknown_times.append(timed_post(port, "/account/forgot", {"email": f"nobody{n}@example.com"}))
            assert {e.status for e in known_times + unknown_times} == {302}, "forgot-password did not answer 302"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

    def both(values: list[Exchange]) -> str:
        answered = statistics.median(e.answered for e in values) * 1000
        closed = statistics.median(e.closed for e in values) * 1000
        return f"answered median {answered:.0f} ms, connection closed median {closed:.0f} ms"

    return {
        "code": str(root),
        "sender": "flask mail worker" if has_worker else "after-response sender in the request worker",
        "shop page after 4 sign-ups": ms(pages) + f" (sign-up answers: {sorted(signed_up)})",
        "forgot-password, registered address": both(known_times),
        "forgot-password, unknown address": both(unknown_times),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE, help="Checkout whose code to run (default: this one).")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    figures = measure(args.root.resolve(), args.runs, args.workers)
    print(
        f"# mail under a hanging SMTP server ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, {args.workers} sync workers, {args.runs} runs each, MAIL_TIMEOUT_SECONDS=10)"
    )
    for name, value in figures.items():
        print(f"- {name}: {value}")


if __name__ == "__main__":
    main()
