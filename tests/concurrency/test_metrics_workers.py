"""/metrics under gunicorn with several workers (issue 24): prometheus_client's multiprocess mode sums every
worker's counters, so a scrape answered by any worker counts every request, and /readyz answers ready."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.concurrency.harness import WORKERS, Stack, released_together, start_stack, stop_stack

TOKEN = "metrics-scraper-token-for-the-proof"
REQUESTS = 120


@pytest.fixture(scope="module")
def metrics_stack(database_url: str, workdir: Path) -> Iterator[tuple[Stack, Path]]:
    multiproc = workdir / "prometheus"
    multiproc.mkdir()
    running = start_stack(database_url, workdir, PROMETHEUS_MULTIPROC_DIR=str(multiproc), METRICS_TOKEN=TOKEN)
    try:
        yield running, multiproc
    finally:
        stop_stack(running)


def _healthz_count(base_url: str) -> float:
    body = requests.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "shop_http_requests_total" and sample.labels.get("endpoint") == "ops.healthz":
                return sample.value
    return 0.0


def test_every_workers_requests_are_counted(metrics_stack):
    stack, multiproc = metrics_stack
    before = _healthz_count(stack.base_url)
    answers, _ = released_together(
        [lambda: requests.get(f"{stack.base_url}/healthz", timeout=30).status_code for _ in range(REQUESTS)]
    )
    assert answers == [200] * REQUESTS
    # Any worker may answer the scrape; each must report the sum over all of them.
    counts = {_healthz_count(stack.base_url) for _ in range(2 * WORKERS)}
    assert counts == {before + REQUESTS}
    writers = {path.name.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}
    assert len(writers) > 1, "one worker answered everything: the proof needs several"


def test_readyz_under_gunicorn(metrics_stack):
    stack, _ = metrics_stack
    response = requests.get(f"{stack.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}
