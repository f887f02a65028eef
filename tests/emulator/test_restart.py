"""The real local Stripe service as a process with a state file, restarted in the middle of a checkout and of a
refund (once by a crash, once by a clean stop): the flows finish and nothing is lost."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
import stripe

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A webhook endpoint on a real port that records every delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    outer.received.append((body, self.headers["Stripe-Signature"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[stripe.Event]:
        """Deliveries so far, verified with `secret`."""
        return [stripe.Webhook.construct_event(body, sig, secret) for body, sig in list(self.received)]

    def types(self, secret: str) -> list[str]:
        return [e.type for e in self.events(secret)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """`python -m stripe_emulator --state PATH` on one port, restartable."""

    def __init__(self, state: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state, self.log = state, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stripe_emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--state",
                    str(self.state),
                    "--business-name",
                    "Restart Test Shop",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._listening, "the local Stripe service to listen", timeout=30)

    def _listening(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def stop(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None

    def control(self, path: str, data: dict[str, Any] | None = None) -> Any:
        request = Request(
            f"{self.url}/_emulator/{path}",
            data=json.dumps(data or {}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = Service(tmp_path / "stripe-emulator.db", tmp_path / "stripe-emulator.log")
    s.start()
    yield s
    if s.proc is not None:
        s.stop(signal.SIGTERM)


def _sdk(service: Service) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_restart", base_addresses={"api": service.url})


def _session_params() -> dict[str, Any]:
    return {
        "mode": "payment",
        "success_url": "https://shop.test/success/?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.test/cart/",
        "client_reference_id": "order-1",
        "line_items": [
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 7997, "product_data": {"name": "Mug"}}}
        ],
    }


def _submit_hosted_form(service: Service, session_id: str, card: str) -> tuple[int, str]:
    """POST the hosted payment page like a browser; returns (status, Location)."""
    body = urlencode({"method": "card", "card_number": card, "expiry": "1230", "cvc": "123"}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    connection.request(
        "POST", f"/pay/{session_id}", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, response.getheader("Location") or ""


def test_checkout_and_refund_survive_restarts(service: Service, receiver: Receiver) -> None:
    sdk = _sdk(service)
    endpoint = sdk.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["*"], "api_version": "2022-11-15"}
    )
    session = sdk.v1.checkout.sessions.create(params=_session_params(), options={"idempotency_key": "order-1-a1"})
    with urlopen(f"{service.url}/pay/{session.id}", timeout=10) as page:
        assert "Pay $79.97" in page.read().decode()  # the shopper is on the payment page...

    service.stop(signal.SIGKILL)  # ...when the service crashes
    service.start()

    again = sdk.v1.checkout.sessions.create(params=_session_params(), options={"idempotency_key": "order-1-a1"})
    assert again.id == session.id  # the idempotency record survived
    status, location = _submit_hosted_form(service, session.id, "4000 0000 0000 5126")
    assert (status, location) == (303, f"https://shop.test/success/?session_id={session.id}")
    paid = sdk.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    wait_until(
        lambda: "checkout.session.completed" in receiver.types(endpoint.secret),
        "the completed event, signed with the endpoint's secret from before the restart",
        timeout=20,
    )

    refund = sdk.v1.refunds.create(
        params={"payment_intent": paid.payment_intent, "amount": 1999}, options={"idempotency_key": "refund-1"}
    )
    assert refund.status == "succeeded"
    wait_until(lambda: "charge.refunded" in receiver.types(endpoint.secret), "charge.refunded", timeout=20)

    service.stop(signal.SIGTERM)  # restarted while the refund's later failure is still scheduled
    service.start()

    assert (
        sdk.v1.refunds.create(
            params={"payment_intent": paid.payment_intent, "amount": 1999}, options={"idempotency_key": "refund-1"}
        ).id
        == refund.id
    )  # no second refund
    service.control("clock/advance", {"seconds": 60})  # "some time later" on the service clock
    failed = sdk.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    wait_until(lambda: "charge.refund.updated" in receiver.types(endpoint.secret), "charge.refund.updated", timeout=20)
    events = receiver.events(endpoint.secret)
    assert {e.api_version for e in events} == {"2022-11-15"}  # the endpoint's version, after restarts too
    assert "refund.failed" not in [e.type for e in events]  # not a card refund event before 2024-10-28.acacia
    charge = next(e for e in events if e.type == "charge.refunded").data.object
    assert charge.amount_refunded == 1999 and "refunds" not in charge
    assert len(sdk.v1.events.list(params={"limit": 100}).data) >= len(events)
    assert sdk.v1.charges.retrieve(failed.charge).amount_refunded == 0
