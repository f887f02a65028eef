"""A stand-in for Sentry's ingest endpoint: a tiny HTTP server on 127.0.0.1 that keeps every envelope body."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeSentry:
    """Received envelopes, decompressed, as text."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.paths: list[str] = []
        self.port = 0

    @property
    def dsn(self) -> str:
        """A DSN that points sentry-sdk here (project 1)."""
        return f"http://public0key@127.0.0.1:{self.port}/1"


@contextmanager
def fake_sentry() -> Iterator[FakeSentry]:
    """Run the fake endpoint for the block."""
    fake = FakeSentry()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
            fake.paths.append(self.path)
            fake.bodies.append(raw.decode("utf-8", "replace"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
