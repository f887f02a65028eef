"""`python -m stripe_emulator` on a real 127.0.0.1 port: SDK over HTTP, pay, signed webhook."""

from __future__ import annotations

import http.client
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import stripe

SECRET = "whsec_live_test"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhooks() -> Iterator[tuple[str, queue.Queue[tuple[bytes, str]]]]:
    received: queue.Queue[tuple[bytes, str]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhook/", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def live(webhooks: tuple[str, queue.Queue[tuple[bytes, str]]]) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webhook-url",
            webhooks[0],
            "--webhook-secret",
            SECRET,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server prints its URL (or dies)
        assert "listening on" in line, line
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_live_server_pays_over_http(live: str, webhooks: tuple[str, queue.Queue[tuple[bytes, str]]]) -> None:
    client = stripe.StripeClient("sk_test_live", base_addresses={"api": live})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://shop.test/success/?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://shop.test/cart/",
            "expires_at": int(time.time()) + 3600,
            "line_items": [
                {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Mug"}}}
            ],
        }
    )
    assert session.url == f"{live}/pay/{session.id}"

    parts = urlsplit(session.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path)
    assert conn.getresponse().read().count(b"<label") >= 3
    form = urlencode({"method": "card", "card_number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123"})
    conn.request("POST", parts.path, body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 303
    assert response.getheader("Location") == f"http://shop.test/success/?session_id={session.id}"
    conn.close()

    deadline = time.monotonic() + 10
    types = []
    while "checkout.session.completed" not in types and time.monotonic() < deadline:
        body, signature = webhooks[1].get(timeout=max(0.0, deadline - time.monotonic()))
        types.append(stripe.Webhook.construct_event(body, signature, SECRET).type)
    assert "checkout.session.completed" in types
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
