"""Scenario 12 (issue 17): two shop nodes behind HAProxy over one PostgreSQL and one Redis.

Everything is real and started here on 127.0.0.1 free ports: two gunicorn nodes (2 sync workers each,
SHOP_CONFIG=staging, one SECRET_KEY, rate limits in Redis), HAProxy (Debian's package) balancing them
round-robin and naming the node that answered in an X-Shop-Node header, a throwaway redis-server, the local
Stripe service delivering webhooks through HAProxy, and a PostgreSQL database (the PG test run's cluster, or a
cluster of this module's own during the SQLite run). Shown across nodes: duplicate webhook deliveries, the
success page racing the webhook, double Buy, a rate limit, and log-out everywhere.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine

from stripe_emulator.webhooks import sign
from tests.concurrency.conftest import Setup
from tests.concurrency.harness import (
    ROOT,
    WEBHOOK_SECRET,
    Service,
    Shopper,
    Stack,
    admin_url,
    database_kind,
    fresh_database,
    migrate,
    record,
    released_together,
    shop_environment,
    start_service,
)
from tests.support import free_port, redis_server, stripe_service_command

NODES = ("a", "b")
WORKERS_PER_NODE = 2
ACCOUNT_LIMIT = 5
FIGURES: dict[str, Any] = {}


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _pg(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[str]:
    """The maintenance database of a PostgreSQL cluster: the test run's, else one of this module's own."""
    if database_kind() == "postgresql":
        yield admin_url()
        return
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("PostgreSQL server binaries are not installed (scripts/test.sh installs them)")
    data_dir = tempfile.mkdtemp(prefix="shop-pg-two-nodes.")
    port = free_port()
    _pg("start", data_dir, str(port))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _pg("stop", data_dir)


@pytest.fixture(scope="module")
def database_url(workdir: Path, pg_admin: str) -> Iterator[str]:
    """One migrated PostgreSQL database both nodes share."""
    with fresh_database(workdir, "shop_two_nodes", pg_admin=pg_admin) as url:
        migrate(url, workdir)
        yield url


@pytest.fixture(scope="module")
def redis_url(workdir: Path) -> Iterator[str]:
    """One redis-server both nodes keep their rate limits in."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    with redis_server(workdir) as url:
        yield url


HAPROXY_CONFIG = """
global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend shop
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    http-response set-header X-Shop-Node %s
{servers}
"""


@dataclass
class Cluster:
    """The two nodes, HAProxy in front, and the shared services; `stack` speaks to HAProxy."""

    stack: Stack
    node_urls: dict[str, str]
    services: list[Service]


@pytest.fixture(scope="module")
def cluster(database_url: str, redis_url: str, workdir: Path) -> Iterator[Cluster]:
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (scripts/test.sh installs it)")
    proxy_port, stripe_port, *node_ports = _distinct_ports(2 + len(NODES))
    proxy_url, stripe_url = f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{stripe_port}"
    services: list[Service] = []
    try:
        services.append(
            start_service(
                "stripe",
                stripe_service_command(stripe_port, proxy_port, WEBHOOK_SECRET, "--async-delay", "86400"),
                os.environ,
                stripe_port,
                workdir,
            )
        )
        # One secret key for both nodes: a cookie signed by one is valid on the other.
        env = shop_environment(
            database_url,
            stripe_url,
            SECRET_KEY=secrets.token_hex(32),
            RATELIMIT_STORAGE_URI=redis_url,
            RATELIMIT_IN_MEMORY_FALLBACK_ENABLED="false",
            LOGIN_ACCOUNT_RATE_LIMIT=f"{ACCOUNT_LIMIT} per hour",
        )
        for name, port in zip(NODES, node_ports, strict=True):
            argv = [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS_PER_NODE),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ]
            services.append(start_service(f"node-{name}", argv, env, port, workdir))
        servers = "\n".join(f"    server {n} 127.0.0.1:{p}" for n, p in zip(NODES, node_ports, strict=True))
        config = workdir / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=proxy_port, servers=servers))
        services.append(start_service("haproxy", [haproxy, "-db", "-f", str(config)], os.environ, proxy_port, workdir))
        stack = Stack(
            database_url,
            proxy_url,
            stripe_url,
            services[1],
            services[0],
            create_engine(database_url, pool_pre_ping=True),
        )
        yield Cluster(stack, {n: f"http://127.0.0.1:{p}" for n, p in zip(NODES, node_ports, strict=True)}, services)
        stack.http.close()
        stack.engine.dispose()
    finally:
        for service in reversed(services):
            service.stop()
        if FIGURES:
            record(12, "postgresql", FIGURES)  # always PostgreSQL, whichever pass runs it


@pytest.fixture(scope="module")
def stack(cluster: Cluster) -> Stack:
    """The conftest's `setup` builds orders against this stack (through HAProxy)."""
    return cluster.stack


def _post_event(url: str, event: dict[str, Any]) -> tuple[int, str]:
    body = json.dumps(event, indent=2).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(WEBHOOK_SECRET, body)}
    response = requests.post(f"{url}/webhook/", data=body, headers=headers, timeout=60)
    return response.status_code, response.headers.get("X-Shop-Node", "direct")


def test_the_proxy_spreads_requests_over_both_nodes(cluster: Cluster) -> None:
    nodes = Counter(requests.get(cluster.stack.base_url + "/", timeout=30).headers["X-Shop-Node"] for _ in range(10))
    FIGURES["proxy_spread_of_10"] = dict(nodes)
    assert set(nodes) == set(NODES)


def test_duplicate_deliveries_spread_over_both_nodes_pay_once(cluster: Cluster, setup: Setup, held: None) -> None:
    stack = cluster.stack
    ((user_id, _),) = setup.users(1, "n2-dup")
    order_id, session_id = setup.checkout(user_id, {setup.product(stock=10): 1})
    stack.stripe_post(f"sessions/{session_id}/pay")
    event = stack.event_for_session("checkout.session.completed", session_id)
    results, _ = released_together([lambda: _post_event(stack.base_url, event) for _ in range(20)])
    nodes = Counter(node for _, node in results)
    FIGURES["duplicates"] = (
        f"20 deliveries ({dict(nodes)}) -> statuses {dict(Counter(s for s, _ in results))}, "
        f"paid transitions {stack.paid_transitions(order_id)}, "
        f"stored events {stack.stored_events(event['id'])}"
    )
    assert set(nodes) == set(NODES)
    assert all(status == 200 for status, _ in results)
    assert stack.paid_transitions(order_id) == 1 and stack.stored_events(event["id"]) == 1
    assert stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id) == "paid"


def test_success_page_on_one_node_racing_the_webhook_on_the_other(cluster: Cluster, setup: Setup, held: None) -> None:
    stack = cluster.stack
    ((user_id, email),) = setup.users(1, "n2-race")
    product = setup.product()
    shopper = Shopper(cluster.node_urls["a"], email)
    shopper.login()
    transitions, statuses = [], []
    for _ in range(5):
        order_id, session_id = setup.checkout(user_id, {product: 1})
        stack.stripe_post(f"sessions/{session_id}/pay")
        event = stack.event_for_session("checkout.session.completed", session_id)
        (page, (hook, _)), _ = released_together(
            [
                lambda sid=session_id: shopper.request("GET", f"/success/?session_id={sid}").status_code,
                lambda e=event: _post_event(cluster.node_urls["b"], e),
            ]
        )
        statuses.append((page, hook))
        transitions.append(stack.paid_transitions(order_id))
    FIGURES["success_vs_webhook"] = (
        f"5 races, success page (node a, webhook node b) {statuses}, paid transitions {transitions}"
    )
    assert transitions == [1] * 5
    assert all(page == 200 and hook == 200 for page, hook in statuses)


def test_double_buy_across_nodes_makes_one_session(cluster: Cluster, setup: Setup) -> None:
    stack = cluster.stack
    ((_, email),) = setup.users(1, "n2-buy")
    product = setup.product(stock=20, name="Both nodes")
    # One browser through the proxy (each request a new connection, so the submits spread over both nodes).
    # Through the proxy, as in production: both nodes see the same Host, so they build the same Checkout
    # Session parameters (return URLs) for the one idempotency key.
    shopper = Shopper(stack.base_url, email)
    shopper.login()
    form = shopper.buy_form({product: 2})
    creates_before = int(stack.stripe_get("call_counts").get("POST /v1/checkout/sessions", 0))
    responses, _ = released_together([lambda: shopper.submit(form) for _ in range(20)])
    results = [r.status_code for r in responses]
    nodes = Counter(r.headers.get("X-Shop-Node") for r in responses)
    orders = stack.rows("SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = :e", e=email)
    creates = int(stack.stripe_get("call_counts").get("POST /v1/checkout/sessions", 0)) - creates_before
    sessions = stack.sessions_for_order(orders[0][0]) if orders else []
    hosted = {r.headers["Location"] for r in responses if r.status_code == 303}
    told_to_retry = {
        re.sub(r"\s+", " ", m.group(1))
        for r in responses
        if r.status_code != 303
        for m in [re.search(r'class="alert[^"]*"[^>]*>(.*?)<', r.text, re.S)]
        if m
    }
    FIGURES["double_buy"] = (
        f"20 submits (nodes {dict(nodes)}) -> statuses {dict(Counter(results))}, orders {len(orders)}, "
        f"create calls {creates} (one idempotency key), sessions at Stripe {len(sessions)}, hosted URLs {len(hosted)}"
        + (f", others told: {sorted(told_to_retry)}" if told_to_retry else "")
    )
    assert set(nodes) == set(NODES)
    assert results == [303] * 20 and len(hosted) == 1
    assert len(orders) == 1 and len(sessions) == 1


def test_rate_limits_hold_across_nodes(cluster: Cluster, setup: Setup) -> None:
    ((_, email),) = setup.users(1, "n2-limit")
    # Guesses alternate between the nodes (each guesser's form and post go to its own node).
    guessers = {name: Shopper(url, email) for name, url in cluster.node_urls.items()}
    results = []
    for attempt in range(ACCOUNT_LIMIT + 7):
        node = NODES[attempt % len(NODES)]
        token = guessers[node].csrf("/account/login")
        response = guessers[node].request(
            "POST", "/account/login", data={"email": email, "password": "wrong guess!", "csrf_token": token}
        )
        results.append((response.status_code, node))
    statuses = [status for status, _ in results]
    FIGURES["rate_limit"] = (
        f"{len(results)} failed log-ins on one account over nodes "
        f"{dict(Counter(n for _, n in results))} -> {dict(Counter(statuses))} "
        f"(limit {ACCOUNT_LIMIT}, 4 workers)"
    )
    assert {node for _, node in results} == set(NODES)
    assert statuses == [400] * ACCOUNT_LIMIT + [429] * 7


def test_log_out_everywhere_holds_across_nodes(cluster: Cluster, setup: Setup) -> None:
    ((_, email),) = setup.users(1, "n2-logout")
    on_a, on_b = Shopper(cluster.node_urls["a"], email), Shopper(cluster.node_urls["b"], email)
    on_a.login()
    on_b.login()
    assert email in on_a.request("GET", "/").text and email in on_b.request("GET", "/").text
    old_a_cookies = dict(on_a.cookies)
    token = on_a.csrf("/")
    assert on_a.request("POST", "/account/logout", data={"csrf_token": token}).status_code == 302
    after_b = on_b.request("GET", "/").text
    replay = Shopper(cluster.node_urls["b"], email)
    replay.cookies = old_a_cookies
    after_replay = replay.request("GET", "/").text
    FIGURES["logout_everywhere"] = (
        f"log-out on node a -> node b session logged in: {email in after_b}, "
        f"old node-a cookie on node b logged in: {email in after_replay}"
    )
    assert email not in after_b and "Log in" in after_b
    assert email not in after_replay
