"""Prometheus metrics (prometheus_client), correct under several gunicorn workers.

Two kinds:
- per-process counters kept by prometheus_client: requests per endpoint and their latency. Under gunicorn
  set PROMETHEUS_MULTIPROC_DIR (the systemd unit does) and every worker writes its values to files there;
  /metrics sums them (prometheus_client's multiprocess mode). Without it (development, tests) each process
  counts alone.
- business figures counted at scrape time from the database (services/operations.py): checkouts, paid
  orders, refunds by status, webhook events by outcome, refused webhook signatures by reason, outbox
  backlog, reconcile heals, open disputes. The rows are the truth, so no worker restart or second node can
  make them disagree.

Imports nothing of the shop's but the one service it reads at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HTTP_REQUESTS = Counter(
    "shop_http_requests", "HTTP requests answered, by endpoint, method and status", ["endpoint", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "shop_http_request_duration_seconds",
    "Time from the request reaching the app to its response starting, by endpoint",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class BusinessCollector(Collector):
    """Reads the business figures from the database on each scrape (needs an app context)."""

    def collect(self) -> Iterator[Any]:
        """One metric family per figure; see services/operations.business_figures."""
        from shopapp.services.operations import business_figures

        figures = business_figures()
        yield _counter("shop_checkouts_created", "Orders sent to a Stripe Checkout Session", figures.checkouts_created)
        yield _counter("shop_orders_paid", "Orders Stripe confirmed paid", figures.orders_paid)
        yield _labelled(
            CounterMetricFamily("shop_refunds", "Refunds by Stripe's status", labels=["status"]),
            figures.refunds_by_status,
        )
        yield _labelled(
            CounterMetricFamily("shop_webhook_events", "Stored webhook events by outcome", labels=["outcome"]),
            figures.webhook_events_by_outcome,
        )
        yield _labelled(
            CounterMetricFamily(
                "shop_webhook_signatures_rejected", "Webhook deliveries refused, by reason", labels=["reason"]
            ),
            figures.webhook_rejections_by_reason,
        )
        yield _labelled(
            GaugeMetricFamily("shop_outbox_messages", "Outbox rows by status (pending = backlog)", labels=["status"]),
            figures.outbox_by_status,
        )
        yield GaugeMetricFamily(
            "shop_outbox_oldest_due_seconds",
            "How long the oldest pending message has been due (0: none waiting)",
            value=figures.outbox_oldest_due_seconds,
        )
        yield _counter(
            "shop_reconcile_heals", "Order changes made by flask payments reconcile", figures.reconcile_heals
        )
        yield GaugeMetricFamily(
            "shop_disputes_open",
            "Open Stripe disputes (0 until the shop records disputes)",
            value=figures.disputes_open,
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled(family: Any, values: dict[str, int]) -> Any:
    for label, count in sorted(values.items()):
        family.add_metric([label], count)
    return family


def exposition(multiprocess_dir: str | None, extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text exposition: every worker's counters (multiprocess mode) or this process's, plus extra."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry = CollectorRegistry()
        for own in (HTTP_REQUESTS, HTTP_LATENCY):
            registry.register(own)
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
