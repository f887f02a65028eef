"""An in-process `stripe.HTTPClient` that calls the emulator's WSGI app directly (no sockets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import stripe
from werkzeug.test import EnvironBuilder, run_wsgi_app

from .app import IN_PROCESS, TIMEOUT_MARKER

if TYPE_CHECKING:
    from .app import Emulator


class EmulatorHTTPClient(stripe.HTTPClient):
    """Route the official SDK to an Emulator in-process; headers/status/body as on the wire."""

    name = "stripe_emulator"

    def __init__(self, emulator: Emulator, retry_delay: float | None = None) -> None:
        super().__init__()
        self.emulator = emulator
        self.retry_delay = retry_delay
        self.requests: list[dict[str, Any]] = []  # what the SDK sent, for assertions

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None, **_: Any
    ) -> tuple[Any, int, Mapping[str, str]]:
        """Send one request to the WSGI app; injected timeouts raise APIConnectionError."""
        parts = urlsplit(url)
        data = post_data.encode() if isinstance(post_data, str) else post_data
        sent = dict(headers or {})
        self.requests.append({"method": method.upper(), "url": url, "headers": sent, "body": data})
        builder = EnvironBuilder(
            path=parts.path,
            base_url=f"{parts.scheme}://{parts.netloc}",
            query_string=parts.query,
            method=method.upper(),
            headers=list(sent.items()),
            data=data,
        )
        environ = builder.get_environ()
        environ[IN_PROCESS] = True
        app_iter, status, response_headers = run_wsgi_app(self.emulator.wsgi_app, environ)
        body = b"".join(app_iter)
        if response_headers.get(TIMEOUT_MARKER) == "timeout":
            # The same error the SDK's own clients raise for a read timeout (retryable).
            raise stripe.APIConnectionError(
                "Unexpected error communicating with Stripe. (Network error: ReadTimeout: injected timeout)",
                should_retry=True,
            )
        lowered = {k.lower(): v for k, v in response_headers.items()}
        return body, int(status.split()[0]), lowered

    def request_stream(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None, **_: Any
    ) -> tuple[Any, int, Mapping[str, str]]:
        """Streaming is the same call with the body wrapped in a one-chunk iterator."""
        body, status, headers_out = self.request(method, url, headers, post_data)
        return iter([body]), status, headers_out

    def close(self) -> None:
        """Nothing to release."""

    def _sleep_time_seconds(self, num_retries: int) -> float:
        # Tests may shorten the SDK's retry backoff; by default keep the SDK's own schedule.
        if self.retry_delay is not None:
            return self.retry_delay
        return super()._sleep_time_seconds(num_retries)
