"""One WSGI middleware for what every request shares: its request id, its metrics and its access log line.

Middleware rather than Flask hooks (as security.SecurityHeaders): one call around the app costs less than
before/after hooks, and it sees responses Flask builds outside the hooks. The matched endpoint is left in
the environ by security's before_request hook (Flask clears its request object from the environ when the
request ends); 404s count as "unmatched", so a scan of random paths cannot grow the label set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from shopapp import metrics, request_ids
from shopapp.security import ENDPOINT_ENVIRON_KEY

log = logging.getLogger("shopapp.access")
# Probes that run every few seconds: logged at DEBUG, so an INFO log shows traffic, not the balancer.
QUIET_ENDPOINTS = frozenset({"ops.healthz", "ops.readyz", "ops.metrics", "static"})


class RequestTelemetry:
    """Sets the request id (response header X-Request-ID), counts and times the request, logs one line."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], access_log: bool) -> None:
        self.wsgi_app = wsgi_app
        self.access_log = access_log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Run the app with the request id set, then record the outcome."""
        request_id = request_ids.accept_or_make(environ.get(request_ids.ENVIRON_KEY))
        token = request_ids.set_request_id(request_id)
        started = time.perf_counter()
        status_holder: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(status)
            headers.append((request_ids.HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            elapsed = time.perf_counter() - started
            endpoint = environ.get(ENDPOINT_ENVIRON_KEY) or "unmatched"
            status = status_holder[0][:3] if status_holder else "500"
            method = environ.get("REQUEST_METHOD", "")
            metrics.HTTP_REQUESTS.labels(endpoint, method, status).inc()
            metrics.HTTP_LATENCY.labels(endpoint).observe(elapsed)
            if self.access_log:
                level = logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO
                if log.isEnabledFor(level):
                    log.log(
                        level,
                        "%s %s %s %.1f ms",
                        method,
                        environ.get("PATH_INFO", ""),
                        status,
                        elapsed * 1000,
                        extra={"endpoint": endpoint, "status": int(status), "duration_ms": round(elapsed * 1000, 2)},
                    )
            request_ids.reset_request_id(token)


def init_telemetry(app: Flask) -> None:
    """Wrap the app (outermost, so the id and the timing cover every other middleware)."""

    app.wsgi_app = RequestTelemetry(app.wsgi_app, bool(app.config["ACCESS_LOG"]))  # type: ignore[method-assign]
