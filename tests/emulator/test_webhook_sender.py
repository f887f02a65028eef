"""The emulator's webhook sender reads the endpoint's whole answer before it hangs up.

Hanging up with the answer unread makes the kernel reset the connection; Werkzeug's development server
(`flask run`, as scripts/run.sh serves the shop) then skips the response's close callbacks, and the shop's
after-response mail sender is one of them: a refund notice stayed queued until `flask mail send-pending`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from stripe_emulator.webhooks import urllib_sender
from tests.support import wait_until

DELIVERIES = 10


@pytest.fixture
def endpoint() -> Iterator[tuple[BaseWSGIServer, list[int]]]:
    closed: list[int] = []

    @Request.application
    def app(request: Request) -> Response:
        # An answer larger than a socket buffer, so some of it is always still unread when a client hangs up early.
        response = Response("received\n" * 20_000, 200)
        response.call_on_close(lambda: closed.append(1))
        return response

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, closed
    finally:
        server.shutdown()
        thread.join(10)


def test_every_delivery_lets_the_endpoint_finish_its_response(endpoint: tuple[BaseWSGIServer, list[int]]) -> None:
    server, closed = endpoint
    url = f"http://127.0.0.1:{server.server_port}/webhook/"
    for _ in range(DELIVERIES):
        assert urllib_sender(url, b"{}", {"Content-Type": "application/json"}) == 200
    wait_until(lambda: len(closed) == DELIVERIES, f"{DELIVERIES} close callbacks (got {len(closed)})", 10)
