"""Probe and metrics views: cheap, no secrets, never rate limited, logged at DEBUG (shopapp/telemetry.py)."""

from __future__ import annotations

import hmac
from datetime import timedelta

from flask import Response, abort, current_app, jsonify, request

from shopapp import metrics
from shopapp.extensions import limiter
from shopapp.ops import bp
from shopapp.services import operations

MIGRATIONS_DIR_KEY = "SHOP_MIGRATIONS_DIR"
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://", "valkey://", "valkeys://", "valkey+unix://")


@bp.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """The process answers (liveness): no database, no network, nothing that can be slow."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
@limiter.exempt
def readyz() -> tuple[Response, int]:
    """Ready to take traffic: 200 with each check "ok", else 503 naming what is not (no URL, no secret)."""
    storage = str(current_app.config.get("RATELIMIT_STORAGE_URI") or "")
    result = operations.readiness(
        current_app.config[MIGRATIONS_DIR_KEY],
        storage if storage.startswith(REDIS_SCHEMES) else None,
        timedelta(minutes=int(current_app.config["READYZ_OUTBOX_STUCK_MINUTES"])),
    )
    body = {"status": "ready" if result.ready else "not ready", "checks": result.checks}
    if result.warnings:
        body["warnings"] = result.warnings
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if result.ready else 503


@bp.get("/metrics")
@limiter.exempt
def metrics_view() -> Response:
    """Prometheus text format, for a scraper holding METRICS_TOKEN as a bearer token; 404 for anyone else
    (a page that does not exist, rather than one that asks for credentials)."""
    token = current_app.config.get("METRICS_TOKEN")
    offered = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        abort(404)
    body = metrics.exposition(current_app.config.get("PROMETHEUS_MULTIPROC_DIR"), [metrics.BusinessCollector()])
    return Response(body, mimetype=None, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
