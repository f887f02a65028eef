"""Where the time goes: each benchmark target run in-process, timed and profiled (docs/PERFORMANCE.md).

    python -m bench.profile [--db-url URL] [--requests N] [--top K] [--only a,b]

Unlike bench.run (gunicorn + wrk, machine-wide throughput), this calls the WSGI app directly, one request
at a time, so each figure is the app's own cost per request without the HTTP server, the client or
other processes. It prints, per target, the mean time per request, the ratio to the hello-world app
measured the same way, and the shares of that time spent in the database, the Stripe call, templates,
the session cookie, the CSRF token and the webhook signature (from cProfile, so the shares are
indicative: profiling inflates many small calls). --top K adds each target's K most expensive functions.

It seeds its own database (a temporary SQLite file, or an empty PostgreSQL database given by --db-url),
and starts the local Stripe service on 127.0.0.1 for the checkout target.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run import PY, ROOT, SECRET_KEY, SHOPPER_PASSWORD, STRIPE_KEY, WEBHOOK_SECRET, free_port, wait_for_http

# Per phase: a file and the functions in it whose cumulative times add up to the phase (each chosen so
# that none runs inside another).
PHASE_ENTRY = {
    "database": ("orm/session.py", "_execute_internal", "commit", "flush", "close"),
    "Stripe call": ("shopapp/gateway.py", "create_checkout_session", "retrieve_checkout_session"),
    "templates": ("flask/templating.py", "render_template"),
    "session cookie": ("flask/sessions.py", "open_session", "save_session"),
    "CSRF token": ("flask_wtf/csrf.py", "generate_csrf", "protect"),
    "signature": ("stripe/_webhook.py", "verify_header"),
}


@dataclass
class Target:
    """One request shape: a name and a maker of fresh WSGI environs (one per call)."""

    name: str
    app: Any
    environ: Callable[[int], dict[str, Any]]
    expect: int = 200


def call(app: Any, environ: dict[str, Any]) -> tuple[int, bytes]:
    """One request straight through the WSGI app: (status code, body)."""
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    body = b"".join(app(environ, start_response))
    return int(status[0].split()[0]), body


def _phase_shares(stats: pstats.Stats, total: float) -> dict[str, float]:
    """Each phase's share of the total, from its entry functions' cumulative times."""
    shares: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for phase, (path, *names) in PHASE_ENTRY.items():
        cumulative = 0.0
        for (filename, _line, function), (_cc, _nc, _tt, ct, _callers) in raw.items():
            if path in filename and function in names:
                cumulative += ct
        shares[phase] = min(1.0, cumulative / total) if total else 0.0
    return shares


@contextmanager
def stripe_service(webhook_url: str) -> Iterator[str]:
    """The local Stripe service on a free port; its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webhook-url",
            webhook_url,
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/_emulator/clock")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def build(db_url: str, stripe_base: str, requests: int) -> list[Target]:
    """Create the app on db_url, migrate, seed, and return the targets."""
    from sqlalchemy import select
    from werkzeug.test import EnvironBuilder

    from bench.cookies import USER_AGENT, mint
    from bench.events import checkout_completed
    from bench.hello import app as hello
    from shopapp import create_app
    from shopapp.extensions import db
    from shopapp.models import Order, OrderStatus, User
    from shopapp.services import accounts, bulk_seed, catalog
    from stripe_emulator.webhooks import sign

    app = create_app(
        "staging",
        SQLALCHEMY_DATABASE_URI=db_url,
        SECRET_KEY=SECRET_KEY,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_base,
        CHECKOUT_RATE_LIMIT="1000000 per minute",
        LOGIN_RATE_LIMIT="1000000 per minute",
        SHOP_BASE_URL="http://127.0.0.1",
        # The minted staff cookie has no second factor (as in bench.run and the work counts): without this the
        # admin target was a redirect to the two-factor page, not the list.
        TWO_FACTOR_REQUIRED_FOR_STAFF=False,
    )
    rounds = requests * 2 + 50  # timed + profiled + warm-up, each needing its own shopper or order
    # Migrated in a child process, as bench.run does: Alembic's logging set-up would otherwise add a
    # second log handler to this process and every logged request would pay for it twice.
    env = {
        **os.environ,
        "SHOP_CONFIG": "staging",
        "SHOP_BASE_URL": "http://127.0.0.1",  # staging refuses to start without the public address
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": db_url,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    subprocess.run(
        [PY, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with app.app_context():
        catalog.seed_demo_products()
        staff, _ = accounts.create_or_promote_staff("profile-staff@example.com", SHOPPER_PASSWORD)
        s20, s1000 = bulk_seed.add_shoppers(2, SHOPPER_PASSWORD, prefix="profile-main")
        bulk_seed.add_orders([s20], 20)
        bulk_seed.add_orders([s1000], 1000)
        buyers = bulk_seed.add_shoppers(rounds, SHOPPER_PASSWORD, prefix="profile-buyer")
        (hook,) = bulk_seed.add_shoppers(1, SHOPPER_PASSWORD, prefix="profile-hook")
        bulk_seed.add_orders([hook], rounds + 1, items_per_order=1, status=OrderStatus.PENDING)
        tokens = dict(db.session.execute(select(User.id, User.session_token)).all())
        pending = db.session.execute(
            select(Order.id, Order.total_cents).where(Order.user_id == hook).order_by(Order.id)
        ).all()
        product_ids = [row.id for row in catalog.active_product_rows()]
        staff_token = tokens[staff.id]
        db.session.remove()
    main_cookie, _ = mint(app, tokens[s20])
    big_cookie, _ = mint(app, tokens[s1000])
    staff_cookie, _ = mint(app, staff_token)
    buyer_cookies = [mint(app, tokens[uid]) for uid in buyers]

    def environ(
        path: str = "/", method: str = "GET", headers: dict[str, str] | None = None, data: bytes | str | None = None
    ) -> dict[str, Any]:
        return EnvironBuilder(
            path=path,
            method=method,
            base_url="http://127.0.0.1/",
            data=data,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ).get_environ()

    def event(n: int) -> tuple[dict[str, str], bytes]:
        order_id, total = pending[n]
        body = checkout_completed(f"evt_profile_{n}", order_id, total, created=int(time.time()))
        return {"Content-Type": "application/json", "Stripe-Signature": sign(WEBHOOK_SECRET, body)}, body

    def checkout(n: int) -> dict[str, Any]:
        cookie, token = buyer_cookies[n]
        form = f"csrf_token={token}&qty-{product_ids[0]}=2&qty-{product_ids[2]}=1"
        return environ(
            "/checkout",
            "POST",
            {"Cookie": f"session={cookie}", "Content-Type": "application/x-www-form-urlencoded"},
            form,
        )

    def webhook_first(n: int) -> dict[str, Any]:
        headers, body = event(n + 1)
        return environ("/webhook/", "POST", headers, body)

    return [
        Target("hello", hello, lambda n: environ()),
        Target("anonymous", app, lambda n: environ()),
        Target("shop_20_orders", app, lambda n: environ(headers={"Cookie": f"session={main_cookie}"})),
        Target("shop_1000_orders", app, lambda n: environ(headers={"Cookie": f"session={big_cookie}"})),
        Target("orders_20", app, lambda n: environ("/orders", headers={"Cookie": f"session={main_cookie}"})),
        Target("orders_1000", app, lambda n: environ("/orders", headers={"Cookie": f"session={big_cookie}"})),
        Target("checkout", app, checkout, expect=303),
        Target("webhook_first", app, webhook_first),
        # Signed when its environ is built (just before its run): a signature made at set-up expired (Stripe's
        # 300 s tolerance) before this target ran with --requests 2000 on a slow machine.
        Target("webhook_duplicate", app, lambda n: environ("/webhook/", "POST", *event(0))),
        Target("admin_orders", app, lambda n: environ("/admin/orders/", headers={"Cookie": f"session={staff_cookie}"})),
    ]


def measure(target: Target, requests: int, top: int) -> dict[str, Any]:
    """Warm up, time `requests` calls, then profile as many more. Every call gets its own environ, built
    beforehand so that building it is not counted."""
    warm_up = min(50, requests)
    environs = iter([target.environ(n) for n in range(warm_up + 2 * requests)])

    def run(count: int) -> None:
        for _ in range(count):
            status, body = call(target.app, next(environs))
            if status != target.expect:
                raise RuntimeError(f"{target.name}: {status} {body[:300]!r}")

    run(warm_up)
    started = time.perf_counter()
    run(requests)
    mean_ms = (time.perf_counter() - started) / requests * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    run(requests)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    result: dict[str, Any] = {"name": target.name, "ms": mean_ms, "shares": _phase_shares(stats, total)}
    if top:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        result["top"] = out.getvalue()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run every target in-process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", help="an empty PostgreSQL database (default: a temporary SQLite file)")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per target (default 1000)")
    parser.add_argument("--top", type=int, default=0, help="also print each target's K costliest functions")
    parser.add_argument("--only", help="comma-separated target names")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shop-profile.") as tmp:
        db_url = args.db_url or f"sqlite:///{Path(tmp) / 'profile.db'}"
        with stripe_service(f"http://127.0.0.1:{free_port()}/webhook/") as stripe_base:
            targets = build(db_url, stripe_base, args.requests)
            results = [
                measure(t, args.requests, args.top)
                for t in targets
                if t.name == "hello" or not args.only or t.name in args.only.split(",")
            ]
    hello_ms = results[0]["ms"]
    phases = list(PHASE_ENTRY)
    print(f"In-process cost per request ({db_url.split(':')[0]}, {args.requests} requests each; shares from cProfile)")
    print(f"{'target':20s} {'ms':>7s} {'x hello':>8s}  " + "  ".join(f"{p:>14s}" for p in phases))
    for r in results:
        shares = "  ".join(f"{r['shares'][p] * 100:13.0f}%" for p in phases)
        print(f"{r['name']:20s} {r['ms']:7.3f} {r['ms'] / hello_ms:8.1f}  {shares}")
    for r in results:
        if "top" in r:
            print(f"\n=== {r['name']}\n{r['top']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
