"""Work counts: what one request does, in units that do not depend on the clock (docs/PERFORMANCE.md).

    python -m tests.perf.work_counts            # print the counts next to the committed baseline
    python -m tests.perf.work_counts --update   # measure and rewrite the baseline (on purpose, in review)
    TEST_DATABASE_URL=postgresql+psycopg://... python -m tests.perf.work_counts [--update]

For each target (the benchmark's: shop page anonymous, with 20 and with 1,000 orders, the orders list `/orders`
with 20 and with 1,000 orders, the first and the duplicate webhook delivery, the admin orders list) one request
is made straight through the WSGI app, after warm-up requests of the same shape, and counted:

- `calls`: Python function calls under cProfile (every call, the framework's and the libraries' included);
- `statements`: SQL statements sent to the database (transaction control included);
- `templates`: templates rendered by `render_template` (Flask's template_rendered signal; 0 for a page served
  from the page cache).

Each count is the largest of a few identical requests, so one request's extra work (a cache filled late) is
not averaged away. The counts are the same from run to run under the fixed PYTHONHASHSEED the test uses;
under other seeds statements and renders are the same and Python calls may differ by a handful (--update keeps
the largest; `--check-stable` shows any difference). They differ between SQLite and PostgreSQL (the drivers
and our dialect-specific code differ), so the baseline keeps one set per database. The test
`tests/perf/test_work_counts.py` fails when a count grows beyond its margin (`MARGINS`) over the baseline; a
count that shrank is reported so the baseline can be tightened with --update.

Not counted: the mail a request's commit queued, which the mail worker sends outside the request (issue 26),
so the webhook's count is the response's work.
"""

from __future__ import annotations

import argparse
import cProfile
import json
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

BASELINE = Path(__file__).with_name("work_baseline.json")
# How far a count may grow over the baseline before the test fails. Calls move a little with harmless
# refactoring (a helper split in two); statements and template renders are design decisions.
MARGINS = {"calls": 0.05, "statements": 0.0, "templates": 0.0}
TARGETS = (
    "anonymous",
    "shop_20_orders",
    "shop_1000_orders",
    "orders_20",
    "orders_1000",
    "webhook_first",
    "webhook_duplicate",
    "admin_orders",
)
WARM_UP = 3  # requests of the same shape before counting: templates compiled, statement caches filled
COUNTED = 3  # counted requests per target; the largest count is kept

SECRET_KEY = "work-counts-secret-key-not-used-anywhere-else-0123456789abcdef"
WEBHOOK_SECRET = "whsec_work_counts"
PASSWORD = "work-counts-password"


@dataclass
class Target:
    """One request shape: a maker of fresh WSGI environs (one per call, numbered) and the status expected."""

    name: str
    environ: Callable[[int], dict[str, Any]]
    expect: int = 200
    # The response body must contain this: the counts are of the path named, not of a refusal.
    body: bytes = b""


class Counter:
    """SQL statements (SQLAlchemy's cursor event on the app's engine) and templates rendered (Flask's
    template_rendered signal) while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.statements = 0
        self.templates = 0

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        """before_cursor_execute listener."""
        if self.on:
            self.statements += 1

    def plain(self, sender: Any, statement: str, **extra: Any) -> None:
        """plain_read_sent receiver: reads sent past SQLAlchemy's events (database.PlainRead)."""
        if self.on:
            self.statements += 1

    def rendered(self, sender: Any, template: Any, context: Any, **extra: Any) -> None:
        """template_rendered receiver."""
        if self.on:
            self.templates += 1


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A fresh database: a temporary SQLite file, or a throwaway database on the PostgreSQL server of `url`."""
    if not url:
        with tempfile.TemporaryDirectory(prefix="work-counts.") as tmp:
            yield f"sqlite:///{Path(tmp) / 'work.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"work_counts_{os.getpid()}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build_app(db_url: str) -> tuple[Any, list[Target], Counter]:
    """The app (staging settings, as the benchmark runs it), its data, and the targets."""
    from flask import template_rendered
    from sqlalchemy import event, select
    from werkzeug.test import EnvironBuilder

    # The minted cookies' session-protection fingerprint is of this User-Agent and address: a request with
    # another (the work counts' own "work-counts" until issue 25) failed Flask-Login's check, so every
    # logged-in request rewrote the session and set a cookie, work the benchmark's requests never do.
    from bench.cookies import USER_AGENT, mint
    from bench.events import checkout_completed
    from shopapp import create_app
    from shopapp.database import plain_read_sent
    from shopapp.extensions import db
    from shopapp.models import Order, OrderStatus, User
    from shopapp.services import accounts, bulk_seed, catalog
    from stripe_emulator.webhooks import sign

    app = create_app(
        "staging",
        SQLALCHEMY_DATABASE_URI=db_url,
        SECRET_KEY=SECRET_KEY,
        STRIPE_SECRET_KEY="sk_test_work_counts",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        # Nothing here calls Stripe; a closed port makes any call that slipped in fail loudly.
        STRIPE_API_BASE="http://127.0.0.1:9",
        CHECKOUT_RATE_LIMIT="1000000 per minute",
        LOGIN_RATE_LIMIT="1000000 per minute",
        MAIL_SUPPRESS_SEND=True,
        SHOP_BASE_URL="https://shop.example.com",
        # The minted staff cookie has no second factor; the benchmark does the same (bench/run.py).
        TWO_FACTOR_REQUIRED_FOR_STAFF=False,
    )
    hooks = WARM_UP + COUNTED + 1
    with app.app_context():
        db.create_all()
        catalog.seed_demo_products()
        staff, _ = accounts.create_or_promote_staff("work-staff@example.com", PASSWORD)
        s20, s1000, hook = bulk_seed.add_shoppers(3, PASSWORD, prefix="work-main")
        bulk_seed.add_orders([s20], 20)
        bulk_seed.add_orders([s1000], 1000)
        bulk_seed.add_orders([hook], hooks, items_per_order=1, status=OrderStatus.PENDING)
        tokens = dict(db.session.execute(select(User.id, User.session_token)).all())
        pending = db.session.execute(
            select(Order.id, Order.total_cents).where(Order.user_id == hook).order_by(Order.id)
        ).all()
        staff_token = tokens[staff.id]
        db.session.remove()
    cookies = {name: mint(app, tokens[uid])[0] for name, uid in (("s20", s20), ("s1000", s1000))}
    cookies["staff"] = mint(app, staff_token)[0]

    def environ(
        path: str = "/", method: str = "GET", headers: dict[str, str] | None = None, data: bytes = b""
    ) -> dict[str, Any]:
        all_headers: dict[str, str] = {"User-Agent": USER_AGENT, **(headers or {})}
        return EnvironBuilder(
            path=path,
            method=method,
            base_url="http://127.0.0.1/",
            data=data or None,
            headers=list(all_headers.items()),
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ).get_environ()

    def event_for(n: int) -> dict[str, Any]:
        order_id, total = pending[n]
        body = checkout_completed(f"evt_work_{n:04d}", order_id, total, created=1_700_000_000)
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(WEBHOOK_SECRET, body)}
        return environ("/webhook/", "POST", headers, body)

    def logged_in(who: str, path: str = "/") -> Callable[[int], dict[str, Any]]:
        return lambda n: environ(path, headers={"Cookie": f"session={cookies[who]}"})

    targets = [
        Target("anonymous", lambda n: environ(), body=b"Product A"),
        Target("shop_20_orders", logged_in("s20"), body=b"My orders"),
        Target("shop_1000_orders", logged_in("s1000"), body=b"My orders"),
        # The page that lists orders (issue 22 moved it to /orders): the first page of 20, with "Older orders"
        # for the 1,000-order shopper.
        Target("orders_20", logged_in("s20", "/orders"), body=b'aria-labelledby="orders-heading"'),
        Target("orders_1000", logged_in("s1000", "/orders"), body=b"Older orders"),
        # Every request a first delivery: its own event for its own pending order.
        Target("webhook_first", lambda n: event_for(n + 1), body=b"applied\n"),
        # The same event (number 0) again and again: the first call of the run delivers it.
        Target("webhook_duplicate", lambda n: event_for(0), body=b"applied\n"),
        Target("admin_orders", logged_in("staff", "/admin/orders/"), body=b"action-checkbox"),
    ]

    counter = Counter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter.before)
    plain_read_sent.connect(counter.plain, weak=False)
    template_rendered.connect(counter.rendered, app, weak=False)
    return app, targets, counter


def _check(target: Target, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
    if status != target.expect or target.body not in body:
        raise RuntimeError(f"{target.name}: {status} {body[:300]!r} (expected {target.expect} {target.body!r})")
    # As the benchmark checks its pages: a cookie set means the request rewrote the session (a refused
    # fingerprint, a write), work a browser keeping its cookie would not cause on every request.
    if any(name.lower() == "set-cookie" for name, _ in headers):
        raise RuntimeError(f"{target.name}: the response sets a cookie: {headers}")


def call(app: Any, environ: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]], Any]:
    """One request straight through the WSGI app: (status code, body, headers, the iterable to close)."""
    status: list[str] = []
    response_headers: list[tuple[str, str]] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)
        response_headers.extend(headers)

    iterable = app(environ, start_response)
    body = b"".join(iterable)
    return int(status[0].split()[0]), body, response_headers, iterable


def close_response(iterable: Any) -> None:
    """Close a response's iterable as a WSGI server does (runs what is registered to follow the response)."""
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


def measure(db_url: str | None = None) -> dict[str, dict[str, int]]:
    """Every target's counts on a fresh database (SQLite when db_url is None)."""
    with database(db_url) as url:
        app, targets, counter = build_app(url)
        results: dict[str, dict[str, int]] = {}
        for target in targets:
            environs = [target.environ(i) for i in range(WARM_UP + COUNTED)]
            for environ in environs[:WARM_UP]:
                status, body, headers, iterable = call(app, environ)
                close_response(iterable)
                _check(target, status, body, headers)
            worst: dict[str, int] = {}
            for environ in environs[WARM_UP:]:
                counter.statements = counter.templates = 0
                profiler = cProfile.Profile()
                counter.on = True
                profiler.enable()
                status, body, headers, iterable = call(app, environ)
                profiler.disable()
                counter.on = False
                close_response(iterable)  # the mail queued by a commit is sent here, after the response: not counted
                _check(target, status, body, headers)
                stats = pstats.Stats(profiler)
                calls = sum(nc for (_cc, nc, _tt, _ct, _callers) in stats.stats.values())  # type: ignore[attr-defined]
                counts = {
                    "calls": calls,
                    "statements": counter.statements,
                    "templates": counter.templates,
                }
                worst = {k: max(v, worst.get(k, 0)) for k, v in counts.items()}
            results[target.name] = worst
        from shopapp.extensions import db

        with app.app_context():
            db.engine.dispose()
    return results


def database_kind(db_url: str | None) -> str:
    """The baseline's key for a database URL: "sqlite" or "postgresql"."""
    return "postgresql" if db_url and db_url.startswith("postgresql") else "sqlite"


def measure_in_child(db_url: str | None, hash_seed: str = "0") -> dict[str, dict[str, int]]:
    """measure() in a fresh interpreter (nothing a test process imported or configured can add work),
    with a fixed PYTHONHASHSEED unless told otherwise."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("TEST_DATABASE_URL", None)
    argv = [sys.executable, "-m", "tests.perf.work_counts", "--json"] + (["--db-url", db_url] if db_url else [])
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"work counts failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def load_baseline() -> dict[str, Any]:
    """The committed baseline: {"sqlite": {target: counts}, "postgresql": {...}, "versions": {...}}."""
    return json.loads(BASELINE.read_text()) if BASELINE.exists() else {}


def regressions(kind: str, measured: dict[str, dict[str, int]], baseline: dict[str, Any]) -> list[str]:
    """Each count over its margin above the baseline, as a sentence; [] when none."""
    problems = []
    base = baseline.get(kind, {})
    for target in TARGETS:
        for unit, margin in MARGINS.items():
            if target not in base:
                problems.append(f"{target}: no {kind} baseline (run the update command)")
                break
            allowed = base[target][unit] * (1 + margin)
            if measured[target][unit] > allowed:
                problems.append(
                    f"{target}: {unit} {measured[target][unit]} > baseline {base[target][unit]} (+{margin:.0%} allowed)"
                )
    return problems


def table(kind: str, measured: dict[str, dict[str, int]], baseline: dict[str, Any]) -> str:
    """Counts beside the baseline, one line per target."""
    base = baseline.get(kind, {})
    lines = [f"{kind}: {'target':18s} {'calls':>14s} {'statements':>12s} {'templates':>10s}"]
    for target in TARGETS:
        cells = []
        for unit, width in (("calls", 14), ("statements", 12), ("templates", 10)):
            now, was = measured[target][unit], base.get(target, {}).get(unit)
            cells.append(f"{now if was is None or was == now else f'{now} ({was})':>{width}}")
        lines.append(f"{kind}: {target:18s} " + " ".join(cells))
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("flask", "werkzeug", "jinja2", "sqlalchemy", "flask-sqlalchemy", "flask-login", "flask-wtf")
    return {"python": sys.version.split()[0], **{n: version(n) for n in names}} | {
        "flask-admin": version("flask-admin"),
        "psycopg": version("psycopg"),
    }


UPDATE_COMMAND = ".venv/bin/python -m tests.perf.work_counts --update"


def main(argv: list[str] | None = None) -> int:
    """Print the counts (and the baseline's), or rewrite this database's baseline with --update."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL (default SQLite)")
    parser.add_argument("--update", action="store_true", help="rewrite this database's baseline")
    parser.add_argument("--check-stable", action="store_true", help="also measure under two other hash seeds")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the child of measure_in_child
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(measure(args.db_url)))
        return 0
    kind = database_kind(args.db_url)
    measured = measure_in_child(args.db_url)
    baseline = load_baseline()
    if args.check_stable or args.update:
        for seed in ("1", "12345"):
            other = measure_in_child(args.db_url, seed)
            if other == measured:
                continue
            # Statements and renders must not depend on the seed; Python calls may by a handful (a set's
            # iteration order in a library), so the baseline keeps the largest count seen.
            print(f"Counts differ under PYTHONHASHSEED={seed}:\n{table(kind, other, {kind: measured})}")
            if (
                any(other[t][k] != measured[t][k] for t in measured for k in measured[t] if k != "calls")
                or args.check_stable
            ):
                return 1
            measured = {t: {k: max(v, other[t][k]) for k, v in counts.items()} for t, counts in measured.items()}
    print(table(kind, measured, baseline))
    if args.update:
        baseline[kind] = measured
        baseline.setdefault("versions", {})[kind] = _versions()
        baseline["updated"] = time.strftime("%Y-%m-%d")
        BASELINE.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
        print(f"Wrote {BASELINE.name} ({kind}).")
        return 0
    problems = regressions(kind, measured, baseline)
    print("\n".join(problems) or "Within the baseline's margins.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
