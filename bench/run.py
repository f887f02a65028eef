"""The benchmark: the shop under gunicorn against a bare Flask hello-world, side by side (docs/PERFORMANCE.md).

    python -m bench.run [--quick] [--db sqlite|postgres|both]

For each database it seeds data, starts the local Stripe service, the shop and the hello-world (same
gunicorn settings, 127.0.0.1, free ports), warms up, then for each target runs wrk on the baseline and
immediately on the target, `--repeats` times, and reports median req/s, p50, p99 and the median of the
per-pair ratios. Then the 100k-order scale check, worker memory, and Stripe calls per paid order.
Writes bench-results/bench-<time>.json and .md. Exits non-zero only if the benchmark itself breaks:
missed goals are reported, not fatal (CI runs --quick to keep this script from rotting).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "lua"
PY = sys.executable
# A fresh key per run (child processes get it through the environment): a key written here is public.
SECRET_KEY = secrets.token_hex(32)
STRIPE_KEY = "sk_test_bench"
WEBHOOK_SECRET = "whsec_bench"
STAFF_EMAIL, STAFF_PASSWORD = "bench-staff@example.com", "bench-staff-password"
SHOPPER_PASSWORD = "bench-shopper-password"
WRK_THREADS, WRK_CONNECTIONS = 2, 16

# Stripe's published limits (docs "Rate limits"): per endpoint in test mode, per account in live mode.
STRIPE_TEST_MODE_PER_ENDPOINT = 25
STRIPE_LIVE_OPS_PER_SECOND = 100

# The goals of issue 25 (ratios to the hello-world of the same pair; the first webhook in req/s, the admin
# list by its median latency).
GOALS = {
    "anonymous": 0.40,
    "shop_20_orders": 0.32,
    "webhook_duplicate": 0.35,
}
WEBHOOK_FIRST_RPS = 250
ADMIN_ORDERS_P50_MS = 80
# The page that lists a shopper's orders (/orders, a page of 20) for 1,000 orders against 20.
SHOPPER_1000_VS_20 = 0.95
SCALE_LIMITS = {"shop_20_orders": 1.05, "admin_orders": 1.2}
MEMORY_GROWTH_LIMIT = 0.10


# The orders list's targets use the shop page targets' shoppers; paths other than "/".
ORDERS_LIST_COOKIE = {"orders_20": "shop_20_orders", "orders_1000": "shop_1000_orders"}
TARGET_PATHS = {"orders_20": "/orders", "orders_1000": "/orders", "admin_orders": "/admin/orders/"}

# ------------------------------------------------------------------------------------------ helpers


def log(message: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, seconds: float = 30.0) -> None:
    """Poll until `url` answers at all (any status), with a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def http(
    method: str, url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Processes:
    """Child processes started by the benchmark, each in its own process group, stopped on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child with stdout/stderr going to logdir/name.log."""
        logfile = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """TERM the child's process group and wait (KILL after 15 s)."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc in self.children:
            self.children.remove(proc)

    def stop_all(self) -> None:
        """Stop every child still running."""
        for proc in list(reversed(self.children)):
            self.stop(proc)


# ------------------------------------------------------------------------------------------ wrk


@dataclass
class WrkResult:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors
    used: int | None = None
    wrapped: int | None = None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    script_args: list[str] | None = None,
    threads: int = WRK_THREADS,
    connections: int = WRK_CONNECTIONS,
) -> WrkResult:
    """Run wrk and parse its summary."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    if sock:
        # Sync workers close each connection after responding; wrk may count that as a read error.
        errors += int(sock.group(1)) + int(sock.group(3)) + int(sock.group(4))
    used = re.search(r"BENCH_USED (\d+)", out)
    wrapped = re.search(r"BENCH_WRAPPED (\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        errors=errors,
        used=int(used.group(1)) if used else None,
        wrapped=int(wrapped.group(1)) if wrapped else None,
    )


def lua_items(path: Path, items: list[tuple[dict[str, str], str]]) -> Path:
    """Write requests (headers, body) as a Lua list for replay.lua."""

    def quote(text: str) -> str:
        level = "=" * 4
        if f"]{level}]" in text:
            raise ValueError("body contains the Lua long-bracket terminator")
        return f"[{level}[{text}]{level}]"

    lines = ["return {"]
    for headers, body in items:
        hdrs = ", ".join(f"[ {quote(k)} ] = {quote(v)}" for k, v in headers.items())
        lines.append(f"  {{headers = {{{hdrs}}}, body = {quote(body)}}},")
    lines.append("}")
    path.write_text("\n".join(lines))
    return path


# ------------------------------------------------------------------------------------------ one database


@dataclass
class TargetRuns:
    """The pairs (baseline, target) for one target."""

    name: str
    label: str
    baseline: list[WrkResult] = field(default_factory=list)
    target: list[WrkResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Medians over the repeats, and the median of the per-pair ratios."""
        ratios = [t.rps / b.rps for b, t in zip(self.baseline, self.target, strict=True) if b.rps]
        return {
            "name": self.name,
            "label": self.label,
            "rps": statistics.median(t.rps for t in self.target),
            "p50_ms": statistics.median(t.p50_ms for t in self.target),
            "p99_ms": statistics.median(t.p99_ms for t in self.target),
            "baseline_rps": statistics.median(b.rps for b in self.baseline),
            "ratio": statistics.median(ratios),
            "errors": sum(t.errors for t in self.target),
            "requests": sum(t.requests for t in self.target),
            # Threads that ran out of distinct shoppers/events and started repeating them (then not all firsts).
            "wrapped": sum(t.wrapped or 0 for t in self.target) if self.name in ("checkout", "webhook_first") else None,
        }


class Bench:
    """Everything for one database: data, servers, targets, extra checks."""

    def __init__(self, db: str, url: str, args: argparse.Namespace, workdir: Path, procs: Processes) -> None:
        self.db, self.url, self.args, self.workdir, self.procs = db, url, args, workdir, procs
        self.emu_port, self.shop_port, self.hello_port = free_port(), free_port(), free_port()
        self.emu_base = f"http://127.0.0.1:{self.emu_port}"
        self.shop = f"http://127.0.0.1:{self.shop_port}"
        self.hello = f"http://127.0.0.1:{self.hello_port}"
        self.env = {
            **os.environ,
            "SHOP_CONFIG": "staging",
            "SHOP_BASE_URL": "http://127.0.0.1",  # staging refuses to start without the public address
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.emu_base,
            # One client address sends every request here; production limits are per address.
            "CHECKOUT_RATE_LIMIT": "1000000 per minute",
            "LOGIN_RATE_LIMIT": "1000000 per minute",
            # The staff cookie is minted directly (no log-in): the admin list is measured, not two-factor.
            "TWO_FACTOR_REQUIRED_FOR_STAFF": "0",
            "PYTHONPATH": str(ROOT),
        }
        self.results: dict[str, Any] = {"db": db}
        self._app: Any = None
        self.shop_proc: subprocess.Popen[bytes] | None = None

    # -------------------------------------------------------------- set-up

    def app(self) -> Any:
        """An in-process app on the same database and secret as the server (to seed and to mint cookies)."""
        if self._app is None:
            from shopapp import create_app

            self._app = create_app(
                "staging",
                SQLALCHEMY_DATABASE_URI=self.url,
                SECRET_KEY=SECRET_KEY,
                STRIPE_SECRET_KEY=STRIPE_KEY,
                STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STRIPE_API_BASE=self.emu_base,
                SHOP_BASE_URL="http://127.0.0.1",
            )
        return self._app

    def seed(self) -> None:
        """Schema by migrations, then the small data set every target needs."""
        subprocess.run(
            [PY, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        from sqlalchemy import select

        from shopapp.extensions import db
        from shopapp.models import OrderStatus, User
        from shopapp.services import accounts, bulk_seed, catalog

        q = self.args
        with self.app().app_context():
            catalog.seed_demo_products()
            accounts.create_or_promote_staff(STAFF_EMAIL, STAFF_PASSWORD)
            s20, s1000, hook = bulk_seed.add_shoppers(3, SHOPPER_PASSWORD, prefix="bench-main")
            bulk_seed.add_orders([s20], 20)
            bulk_seed.add_orders([s1000], 1000)
            # A small shop around them: 200 other shoppers with 5 orders each.
            bulk_seed.add_orders(bulk_seed.add_shoppers(200, SHOPPER_PASSWORD, prefix="bench-other"), 5)
            self.checkout_users = bulk_seed.add_shoppers(q.checkout_users, SHOPPER_PASSWORD, prefix="bench-buyer")
            bulk_seed.add_orders([hook], q.webhook_orders, items_per_order=1, status=OrderStatus.PENDING)
            tokens = dict(db.session.execute(select(User.id, User.session_token)).all())
            staff_token = db.session.scalar(select(User.session_token).where(User.email == STAFF_EMAIL))
            self.webhook_user = hook
            self.tokens = tokens
            self.cookies = {
                "shop_20_orders": self._cookie(tokens[s20]),
                "shop_1000_orders": self._cookie(tokens[s1000]),
                "admin_orders": self._cookie(staff_token),
            }
            db.session.remove()

    def _cookie(self, session_token: str) -> tuple[str, str]:
        from bench.cookies import mint

        return mint(self.app(), session_token)

    def start_servers(self) -> None:
        """The local Stripe service, the shop and the hello-world, each under its own log."""
        self.procs.start(
            "stripe-emulator-" + self.db,
            [
                PY,
                "-m",
                "stripe_emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.emu_port),
                "--webhook-url",
                f"{self.shop}/webhook/",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ],
            self.env,
        )
        self.shop_proc = self.start_shop()
        self.procs.start("hello-" + self.db, self.gunicorn_argv(self.hello_port, "bench.hello:app"), self.env)
        wait_for_http(self.emu_base + "/_emulator/clock")
        wait_for_http(self.hello + "/")

    def gunicorn_argv(self, port: int, app: str) -> list[str]:
        """Identical gunicorn settings for the shop and the baseline."""
        return [PY, "-m", "gunicorn", "-c", str(ROOT / "bench" / "gunicorn_conf.py"), "-b", f"127.0.0.1:{port}", app]

    def start_shop(self) -> subprocess.Popen[bytes]:
        """Start (or restart) the shop's gunicorn and wait until it answers."""
        proc = self.procs.start("shop-" + self.db, self.gunicorn_argv(self.shop_port, "wsgi:app"), self.env)
        wait_for_http(self.shop + "/")
        return proc

    def check_pages(self) -> None:
        """Each GET target answers 200 as the right user, and no page sets a cookie (it would mean a write)."""
        for name, marker in (
            # The shop page of a logged-in shopper (the orders list itself moved to /orders, issue 22).
            ("shop_20_orders", b"My orders"),
            ("shop_1000_orders", b"My orders"),
            # The orders list itself: a page of 20, and "Older orders" for the 1,000-order shopper.
            ("orders_20", b'aria-labelledby="orders-heading"'),
            ("orders_1000", b"Older orders"),
            ("admin_orders", b"Orders"),
        ):
            cookie, _ = self.cookies[ORDERS_LIST_COOKIE.get(name, name)]
            path = TARGET_PATHS.get(name, "/")
            status, headers, body = http("GET", self.shop + path, headers=self.headers(cookie))
            if status != 200 or marker not in body:
                raise RuntimeError(f"{name}: GET {path} gave {status}, marker {marker!r} missing")
            if "Set-Cookie" in headers:
                raise RuntimeError(
                    f"{name}: GET {path} set a cookie ({headers['Set-Cookie'][:300]}): "
                    "the minted session was not accepted as is"
                )
        status, headers, _ = http("GET", self.shop + "/")
        if status != 200 or "Set-Cookie" in headers:
            raise RuntimeError(f"anonymous GET / gave {status} and headers {headers}")

    @staticmethod
    def headers(cookie: str | None = None) -> dict[str, str]:
        """The headers of a browser that logged in from the benchmark client."""
        from bench.cookies import USER_AGENT

        headers = {"User-Agent": USER_AGENT}
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        return headers

    # -------------------------------------------------------------- targets

    def targets(self) -> list[tuple[str, str, Callable[[float, int], WrkResult]]]:
        """(name, label, run(seconds, round)) for every wrk target."""

        def get(path: str, cookie_of: str | None) -> Callable[[float, int], WrkResult]:
            cookie = self.cookies[cookie_of][0] if cookie_of else None
            return lambda seconds, _round: run_wrk(self.shop + path, seconds, headers=self.headers(cookie))

        return [
            ("anonymous", "Shop page, anonymous", get("/", None)),
            ("shop_20_orders", "Shop page, shopper with 20 orders", get("/", "shop_20_orders")),
            ("shop_1000_orders", "Shop page, shopper with 1,000 orders", get("/", "shop_1000_orders")),
            ("orders_20", "Orders list (/orders), shopper with 20 orders", get("/orders", "shop_20_orders")),
            ("orders_1000", "Orders list (/orders), shopper with 1,000 orders", get("/orders", "shop_1000_orders")),
            ("checkout", "Checkout POST to the 303 (session created)", self.run_checkout),
            ("webhook_first", "Webhook, first delivery (verify, finalize)", self.run_webhook_first),
            ("webhook_duplicate", "Webhook, duplicate delivery", self.run_webhook_duplicate),
            ("admin_orders", "Admin orders list (staff)", get("/admin/orders/", "admin_orders")),
        ]

    def _slice(self, items: list[Any], round_no: int) -> list[Any]:
        # Each round (warm-up = 0) gets its own users/orders, so every request is a first time.
        rounds = self.args.repeats + 1
        size = len(items) // rounds
        return items[round_no * size : (round_no + 1) * size]

    def run_checkout(self, seconds: float, round_no: int) -> WrkResult:
        """POST /checkout as many distinct shoppers (real cookies and CSRF tokens): each creates a session."""
        with self.app().app_context():
            product_ids = self._product_ids()
        items = []
        for user_id in self._slice(self.checkout_users, round_no):
            cookie, csrf = self._cookie(self.tokens[user_id])
            headers = {**self.headers(cookie), "Content-Type": "application/x-www-form-urlencoded"}
            items.append((headers, f"csrf_token={csrf}&qty-{product_ids[0]}=2&qty-{product_ids[2]}=1"))
        data = lua_items(self.workdir / f"checkout-{self.db}-{round_no}.lua", items)
        return run_wrk(
            self.shop + "/checkout",
            seconds,
            script=LUA / "replay.lua",
            script_args=[str(data), str(WRK_THREADS), "POST", "/checkout"],
        )

    def _product_ids(self) -> list[int]:
        from shopapp.services import catalog

        return [p.id for p in catalog.list_active_products()]

    def _pending_orders(self) -> list[tuple[int, int]]:
        from sqlalchemy import select

        from shopapp.extensions import db
        from shopapp.models import Order, OrderStatus

        with self.app().app_context():
            rows = db.session.execute(
                select(Order.id, Order.total_cents)
                .where(Order.user_id == self.webhook_user, Order.status == OrderStatus.PENDING)
                .order_by(Order.id)
            ).all()
            db.session.remove()
        return [(oid, total) for oid, total in rows]

    def _event(self, order_id: int, total: int, n: str) -> tuple[dict[str, str], str]:
        from bench.events import checkout_completed
        from stripe_emulator.webhooks import sign

        body = checkout_completed(
            f"evt_bench_{self.db}_{n}", order_id, total, created=int(time.time()), api_version="2025-01-27.acacia"
        ).decode()
        return {
            "Content-Type": "application/json",
            "Stripe-Signature": sign(WEBHOOK_SECRET, body.encode()),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }, body

    def run_webhook_first(self, seconds: float, round_no: int) -> WrkResult:
        """Distinct signed checkout.session.completed events for distinct PENDING orders (signed just now)."""
        orders = self._slice(self._pending_orders_cache, round_no)
        items = [self._event(oid, total, f"{oid}") for oid, total in orders]
        data = lua_items(self.workdir / f"webhook-{self.db}-{round_no}.lua", items)
        return run_wrk(
            self.shop + "/webhook/",
            seconds,
            script=LUA / "replay.lua",
            script_args=[str(data), str(WRK_THREADS), "POST", "/webhook/"],
        )

    def run_webhook_duplicate(self, seconds: float, round_no: int) -> WrkResult:
        """The same already-processed event again and again (re-signed each round, as Stripe does)."""
        oid, total = self._pending_orders_cache[0]
        headers, body = self._event(oid, total, f"{oid}")
        status, _, reply = http("POST", self.shop + "/webhook/", headers=headers, data=body.encode())
        if status != 200:
            raise RuntimeError(f"duplicate webhook set-up: {status} {reply[:200]!r}")
        data = lua_items(self.workdir / f"webhook-dup-{self.db}-{round_no}.lua", [(headers, body)])
        return run_wrk(
            self.shop + "/webhook/",
            seconds,
            script=LUA / "replay.lua",
            script_args=[str(data), "1", "POST", "/webhook/"],
        )

    def measure_targets(self, only: list[str] | None = None, key: str = "targets") -> list[dict[str, Any]]:
        """Warm up, then `repeats` rounds of (baseline, target) pairs per target."""
        seconds = self.args.duration
        chosen = [t for t in self.targets() if only is None or t[0] in only]
        self._pending_orders_cache = self._pending_orders()
        runs = {name: TargetRuns(name, label) for name, label, _ in chosen}
        log(f"{self.db}: warm-up")
        run_wrk(self.hello + "/", self.args.warmup)
        for _name, _label, run in chosen:
            run(self.args.warmup, 0)
        for round_no in range(1, self.args.repeats + 1):
            for name, _label, run in chosen:
                log(f"{self.db}: round {round_no}/{self.args.repeats}: {name}")
                runs[name].baseline.append(run_wrk(self.hello + "/", seconds))
                runs[name].target.append(run(seconds, round_no))
        summaries = [runs[name].summary() for name, _, _ in chosen]
        self.results[key] = summaries
        self.results[key + "_raw"] = {
            n: {"baseline": [asdict(b) for b in r.baseline], "target": [asdict(t) for t in r.target]}
            for n, r in runs.items()
        }
        return summaries

    # -------------------------------------------------------------- extra checks

    def scale_check(self, small: list[dict[str, Any]]) -> None:
        """Bulk-add orders (100k by default) and re-measure the shop page and the admin list."""
        from shopapp.extensions import db
        from shopapp.services import bulk_seed

        log(f"{self.db}: seeding {self.args.scale_orders} orders for the scale check")
        started = time.monotonic()
        with self.app().app_context():
            result = bulk_seed.seed_bulk(
                self.args.scale_orders, shoppers=max(1, self.args.scale_orders // 100), password=SHOPPER_PASSWORD
            )
            db.session.remove()
        seed_seconds = time.monotonic() - started
        if self.db == "postgres":
            subprocess.run(
                [
                    PY,
                    "-c",
                    "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); c.execute('VACUUM ANALYZE')",
                    self.url.replace("+psycopg", ""),
                ],
                check=True,
            )
        large = self.measure_targets(only=list(SCALE_LIMITS), key="scale_targets")
        small_by = {s["name"]: s for s in small}
        rows = []
        for big in large:
            base = small_by[big["name"]]
            # Time per request grows as throughput falls: compare the baseline-normalised ratios.
            slowdown = base["ratio"] / big["ratio"] if big["ratio"] else float("inf")
            rows.append(
                {
                    "name": big["name"],
                    "small_ratio": base["ratio"],
                    "large_ratio": big["ratio"],
                    "small_p50_ms": base["p50_ms"],
                    "large_p50_ms": big["p50_ms"],
                    "slowdown": slowdown,
                    "limit": SCALE_LIMITS[big["name"]],
                }
            )
        self.results["scale"] = {
            "orders_added": result.orders,
            "items_added": result.items,
            "seed_seconds": round(seed_seconds, 1),
            "rows": rows,
        }

    def memory_check(self) -> None:
        """Worker RSS after 100 and after N more logged-in shop page requests, on a fresh server."""
        assert self.shop_proc is not None
        self.procs.stop(self.shop_proc)
        self.shop_proc = self.start_shop()
        headers = self.headers(self.cookies["shop_20_orders"][0])

        def send(count: int) -> int:
            # wrk cannot stop after N requests, so run short bursts until at least N were answered.
            sent = 0
            while sent < count:
                seconds = 1 if count - sent > 200 else 0
                if seconds:
                    sent += run_wrk(self.shop + "/", seconds, headers=headers).requests
                else:
                    status, _, _ = http("GET", self.shop + "/", headers=headers)
                    if status != 200:
                        raise RuntimeError(f"memory check: GET / gave {status}")
                    sent += 1
            return sent

        def rss_kib() -> list[int]:
            children = Path(f"/proc/{self.shop_proc.pid}/task/{self.shop_proc.pid}/children").read_text().split()
            sizes = []
            for pid in children:
                status = Path(f"/proc/{pid}/status").read_text()
                sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
            return sorted(sizes)

        first = send(100)
        after_small = rss_kib()
        then = first + send(self.args.memory_requests - first)
        after_large = rss_kib()
        growth = sum(after_large) / sum(after_small) - 1
        self.results["memory"] = {
            "requests_first": first,
            "requests_then": then,
            "rss_kib_after_first": after_small,
            "rss_kib_after_then": after_large,
            "growth": growth,
            "limit": MEMORY_GROWTH_LIMIT,
        }

    def stripe_calls_check(self) -> None:
        """Stripe API calls per paid order, counted at the local Stripe service, for both arrival orders."""
        with self.app().app_context():
            product_ids = self._product_ids()
        users = self.checkout_users[-2 * self.args.paid_orders :]
        paths = {
            "webhook_before_success_page": users[: self.args.paid_orders],
            "success_page_before_webhook": users[self.args.paid_orders :],
        }
        report: dict[str, Any] = {}
        for path, path_users in paths.items():
            before = json.loads(http("GET", self.emu_base + "/_emulator/call_counts")[2])
            paid = 0
            for user_id in path_users:
                cookie, csrf = self._cookie(self.tokens[user_id])
                hold = path == "success_page_before_webhook"
                if hold:
                    http("POST", self.emu_base + "/_emulator/deliveries/hold", data=b"")
                body = f"csrf_token={csrf}&qty-{product_ids[1]}=1".encode()
                status, headers, _ = http(
                    "POST",
                    self.shop + "/checkout",
                    data=body,
                    headers={**self.headers(cookie), "Content-Type": "application/x-www-form-urlencoded"},
                )
                session_id = re.search(r"(cs_test_\w+)", headers.get("Location", ""))
                if status != 303 or not session_id:
                    raise RuntimeError(f"checkout for the Stripe-call count gave {status}")
                sid = session_id.group(1)
                status, _, reply = http("POST", f"{self.emu_base}/_emulator/sessions/{sid}/pay", data=b"")
                if status != 200:
                    raise RuntimeError(f"paying {sid} at the local service gave {status}: {reply[:200]!r}")
                if not hold:
                    self._wait_paid(sid)
                page_status, _, _ = http("GET", f"{self.shop}/success/?session_id={sid}", headers=self.headers(cookie))
                if page_status != 200:
                    raise RuntimeError(f"success page for {sid} gave {page_status}")
                if hold:
                    http("POST", self.emu_base + "/_emulator/deliveries/release", data=b"")
                paid += self._wait_paid(sid)
            after = json.loads(http("GET", self.emu_base + "/_emulator/call_counts")[2])
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
            report[path] = {
                "orders": len(path_users),
                "paid": paid,
                "calls": delta,
                "calls_per_order": sum(delta.values()) / len(path_users),
            }
        worst = max(r["calls_per_order"] for r in report.values())
        # Test mode limits each endpoint separately: every paid order needs one create, so creates bound it.
        # Live mode limits all operations together: the worst path's calls per order divide the budget.
        report["checkouts_per_second_test_mode"] = STRIPE_TEST_MODE_PER_ENDPOINT
        report["checkouts_per_second_live_mode"] = STRIPE_LIVE_OPS_PER_SECOND / worst
        report["worst_calls_per_order"] = worst
        self.results["stripe_calls"] = report

    def _wait_paid(self, session_id: str, seconds: float = 20.0) -> int:
        from sqlalchemy import select

        from shopapp.extensions import db
        from shopapp.models import Order, OrderStatus

        deadline = time.monotonic() + seconds
        with self.app().app_context():
            while time.monotonic() < deadline:
                status = db.session.scalar(select(Order.status).where(Order.stripe_session_id == session_id))
                db.session.remove()
                if status == OrderStatus.PAID:
                    return 1
                time.sleep(0.05)
        raise RuntimeError(f"order for {session_id} was not paid within {seconds} s")

    def webhook_outcomes(self) -> None:
        """How the first-delivery runs ended in the database (every event should have paid its order)."""
        from sqlalchemy import func, select

        from shopapp.extensions import db
        from shopapp.models import PaymentEvent

        with self.app().app_context():
            self.results["webhook_event_outcomes"] = dict(
                db.session.execute(select(PaymentEvent.outcome, func.count()).group_by(PaymentEvent.outcome)).all()
            )
            db.session.remove()


# ------------------------------------------------------------------------------------------ databases


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a throwaway PostgreSQL cluster via scripts/pg.sh."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    pgdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    port = free_port()
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg.sh"), "start", str(pgdir), str(port)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop_bench")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/shop_bench"
    finally:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "pg.sh"), "stop", str(pgdir)], check=False, capture_output=True, timeout=120
        )


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The full benchmark on one database."""
    procs = Processes(workdir)
    with database(kind, workdir) as url:
        bench = Bench(kind, url, args, workdir, procs)
        try:
            log(f"{kind}: seeding")
            bench.seed()
            bench.start_servers()
            bench.check_pages()
            if args.only:
                bench.measure_targets(only=args.only.split(","))
                return bench.results
            small = bench.measure_targets()
            bench.webhook_outcomes()
            bench.stripe_calls_check()
            bench.memory_check()
            bench.scale_check(small)
        finally:
            procs.stop_all()
            if bench._app is not None:
                from shopapp.extensions import db

                with bench._app.app_context():
                    db.engine.dispose()
    return bench.results


# ------------------------------------------------------------------------------------------ report


def goals(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(goal, met, measured) for one database."""
    by = {t["name"]: t for t in result["targets"]}
    out = []
    for name, floor in GOALS.items():
        out.append(
            (
                f"{by[name]['label']} >= {floor:.2f}x hello-world",
                by[name]["ratio"] >= floor,
                f"{by[name]['ratio']:.2f}x",
            )
        )
    first = by["webhook_first"]
    out.append(
        (
            f"{first['label']} >= {WEBHOOK_FIRST_RPS} req/s",
            first["rps"] >= WEBHOOK_FIRST_RPS,
            f"{first['rps']:.0f} req/s",
        )
    )
    admin = by["admin_orders"]
    out.append(
        (
            f"{admin['label']} p50 <= {ADMIN_ORDERS_P50_MS} ms",
            admin["p50_ms"] <= ADMIN_ORDERS_P50_MS,
            f"{admin['p50_ms']:.0f} ms",
        )
    )
    rel = by["orders_1000"]["ratio"] / by["orders_20"]["ratio"]
    out.append(
        (
            f"orders list: 1,000-order shopper >= {SHOPPER_1000_VS_20}x the 20-order shopper",
            rel >= SHOPPER_1000_VS_20,
            f"{rel:.2f}x",
        )
    )
    for row in result["scale"]["rows"]:
        out.append(
            (
                f"{row['name']} with +{result['scale']['orders_added']:,} orders within {row['limit']}x",
                row["slowdown"] <= row["limit"],
                f"{row['slowdown']:.2f}x",
            )
        )
    mem = result["memory"]
    out.append(
        (
            f"worker memory after {mem['requests_then']:,} requests within 10% of after 100",
            mem["growth"] <= MEMORY_GROWTH_LIMIT,
            f"{mem['growth']:+.1%}",
        )
    )
    calls = result["stripe_calls"]
    out.append(
        (
            "Stripe calls per paid order <= 2",
            calls["worst_calls_per_order"] <= 2,
            f"{calls['worst_calls_per_order']:.2f}",
        )
    )
    return out


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report (also printed)."""
    lines = [
        f"# Benchmark {report['started']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}; wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {report['duration']} s runs, "
        f"{report['repeats']} rounds, each target run right after a hello-world run.",
        "",
    ]
    for result in report["databases"]:
        lines += [
            f"## {result['db']}",
            "",
            "| target | req/s | p50 ms | p99 ms | hello req/s | ratio | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for t in result["targets"]:
            note = f" (wrapped {t['wrapped']})" if t.get("wrapped") else ""
            lines.append(
                f"| {t['label']}{note} | {t['rps']:.0f} | {t['p50_ms']:.1f} | {t['p99_ms']:.1f} | "
                f"{t['baseline_rps']:.0f} | {t['ratio']:.2f}x | {t['errors']} |"
            )
        scale = result["scale"]
        lines += [
            "",
            f"Scale: +{scale['orders_added']:,} orders, +{scale['items_added']:,} items "
            f"(seeded in {scale['seed_seconds']} s).",
            "",
            "| target | ratio small DB | ratio large DB | p50 small | p50 large | slowdown | limit |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in scale["rows"]:
            lines.append(
                f"| {row['name']} | {row['small_ratio']:.2f}x | {row['large_ratio']:.2f}x | "
                f"{row['small_p50_ms']:.1f} | {row['large_p50_ms']:.1f} | {row['slowdown']:.2f}x | "
                f"{row['limit']}x |"
            )
        mem = result["memory"]
        lines += [
            "",
            f"Worker RSS (KiB) after {mem['requests_first']} requests: {mem['rss_kib_after_first']}; "
            f"after {mem['requests_then']:,}: {mem['rss_kib_after_then']} ({mem['growth']:+.1%}).",
        ]
        calls = result["stripe_calls"]
        lines += ["", "Stripe calls per paid order (counted at the local service):"]
        for path in ("webhook_before_success_page", "success_page_before_webhook"):
            c = calls[path]
            lines.append(
                f"- {path.replace('_', ' ')}: {c['calls_per_order']:.2f} ({c['calls']}, {c['paid']}/{c['orders']} paid)"
            )
        lines.append(
            f"- one Stripe account sustains about {calls['checkouts_per_second_test_mode']} checkouts/s in "
            f"test mode (25 creates/s per endpoint) and {calls['checkouts_per_second_live_mode']:.0f}/s in "
            f"live mode (100 operations/s / {calls['worst_calls_per_order']:.0f} calls per order)."
        )
        lines.append(f"- webhook event outcomes in the database: {result.get('webhook_event_outcomes')}")
        lines += ["", "Goals:"]
        for goal, met, measured in goals(result):
            lines.append(f"- [{'x' if met else ' '}] {goal}: {measured}{'' if met else '  **MISSED**'}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, report."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1-second runs, 1 round, small data (CI smoke run)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 5; quick 1)")
    parser.add_argument("--repeats", type=int, help="rounds of baseline/target pairs (default 3; quick 1)")
    parser.add_argument("--scale-orders", type=int, help="orders added for the scale check (default 100000)")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument(
        "--only",
        help="comma-separated target names; skips the scale, memory and Stripe checks "
        "(for profiling one target; no report is written)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (1.0 if quick else 5.0)
    args.repeats = args.repeats or (1 if quick else 3)
    args.scale_orders = args.scale_orders or (5_000 if quick else 100_000)
    args.warmup = 1.0 if quick else 2.0
    args.memory_requests = 1_000 if quick else 10_000
    args.paid_orders = 3 if quick else 20
    # Distinct shoppers / pending orders per round: enough for the fastest rate seen here, with margin.
    args.checkout_users = (2 * args.paid_orders) + (args.repeats + 1) * int(600 * args.duration)
    args.webhook_orders = (args.repeats + 1) * int(1500 * args.duration)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (scripts/bench.sh installs it: apt-get install -y wrk)")

    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": "scripts/bench.sh " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        "duration": args.duration,
        "repeats": args.repeats,
        "databases": [],
    }
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
        workdir = Path(tmp)
        finished = False
        try:
            for kind in kinds:
                report["databases"].append(bench_database(kind, args, workdir))
            finished = True
        finally:
            # The servers' logs are the only clue when one did not start: show them before the error surfaces.
            for logfile in sorted(workdir.glob("*.log")) if not finished else []:
                print(f"--- {logfile.name} (last lines)", file=sys.stderr)
                print("\n".join(logfile.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)
    if args.only:
        for result in report["databases"]:
            for t in result["targets"]:
                print(
                    f"{result['db']:8} {t['name']:18} {t['rps']:7.0f} req/s  p50 {t['p50_ms']:6.1f} ms  "
                    f"hello {t['baseline_rps']:6.0f}  ratio {t['ratio']:.2f}x  errors {t['errors']}"
                )
        return 0
    text = markdown(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")
    (out / f"bench-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"bench-{stamp}.md").write_text(text)
    print(text)
    print(f"Written: {out / f'bench-{stamp}.md'} and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
