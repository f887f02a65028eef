"""Run the concurrency proofs on SQLite and on a throwaway PostgreSQL, then print the 8 x 2 table of figures.

Usage: .venv/bin/python scripts/concurrency_report.py   (about 2-3 minutes on 2 cores)
Each run is `pytest tests/concurrency` with CONCURRENCY_FIGURES pointing at a JSON file the tests fill in.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    1: "50 simultaneous deliveries of one `completed`",
    2: "success page vs 10 `completed` + 10 `async_payment_succeeded`",
    3: "200 paid orders, each event 3x, shuffled",
    4: "20 simultaneous Buy submits, one shopper",
    5: "finalizer paused between check and CAS",
    6: "webhook before the order row is committed",
    7: "database unavailable during a webhook",
    8: "Stripe faults at session creation",
}


def _cell(scenario: int, f: dict[str, Any]) -> str:
    """The measured figures of one scenario, in a few words."""
    if scenario == 1:
        return (
            f"{f['transitions']} transition, {f['paid_rows']} PAID row, {f['stored_events']} event row, "
            f"{f['5xx']} 5xx, {f['locked']} locked ({f['2xx']}/50 2xx in {f['seconds']} s)"
        )
    if scenario == 2:
        return (
            f"{f['transitions']} transition, stock taken once ({f['stock_left']} left, {f['reserved']} reserved), "
            f"{f['stored_events']} event rows, {f['5xx']} 5xx, {f['stripe_retrieves']} Stripe retrieve"
        )
    if scenario == 3:
        return (
            f"{f['transitions']} transitions, {f['lost']} lost, {f['doubled']} doubled, {f['5xx']} 5xx, "
            f"{f['locked']} locked; {f['deliveries']} deliveries in {f['seconds']} s = "
            f"{f['events_per_second']} events/s"
        )
    if scenario == 4:
        return (
            f"{f['orders']} order, {f['sessions_at_stripe']} session at Stripe, {f['idempotency_keys']} key, "
            f"{f['303']}/20 answered 303 to one URL ({f['create_calls']} create calls)"
        )
    if scenario == 5:
        lock = ", A held the write lock" if f.get("write_lock_held_by_paused_A") else ""
        return f"{f['transitions']} transition (A {f['A']}, B {f['B']}{lock})"
    if scenario == 6:
        return (
            f"first delivery {f['first_status']}, then {f['final_status']} on attempt {f['attempts_until_2xx']}; "
            f"{f['transitions']} transition, {f['stored_events']} event row"
        )
    if scenario == 7:
        return (
            f"{f['outage']}: {f['first_status']}, partial rows {f['rows_after_outage']}; "
            f"after redelivery {f['final_status']}, {f['transitions']} transition, {f['stored_events']} event row"
        )
    if scenario == 8:
        return "; ".join(f"{name}: {value}" for name, value in sorted(f.items()))
    raise ValueError(scenario)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pytest(figures: Path, extra_env: dict[str, str]) -> int:
    env = {**os.environ, "CONCURRENCY_FIGURES": str(figures), **extra_env}
    for name in ("TEST_DATABASE_URL", "PG_ADMIN_URL"):
        if name not in extra_env:
            env.pop(name, None)
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/concurrency"], cwd=ROOT, env=env)


def main() -> int:
    """Run both databases, print the table; non-zero exit if any proof failed."""
    figures = Path(tempfile.mkstemp(prefix="concurrency-figures.", suffix=".json")[1])
    print("== Concurrency proofs on SQLite", flush=True)
    failed = _pytest(figures, {})
    pg_dir, pg_port = tempfile.mkdtemp(prefix="shop-pg-report."), _free_port()
    subprocess.run(["bash", "scripts/pg.sh", "start", pg_dir, str(pg_port)], cwd=ROOT, check=True)
    try:
        admin = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/postgres"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True)"
                ".execute('CREATE DATABASE shop_test')",
                f"host=127.0.0.1 port={pg_port} user=postgres",
            ],
            check=True,
        )
        print("== Concurrency proofs on PostgreSQL", flush=True)
        failed |= _pytest(
            figures,
            {
                "TEST_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/shop_test",
                "PG_ADMIN_URL": admin,
            },
        )
    finally:
        subprocess.run(["bash", "scripts/pg.sh", "stop", pg_dir], cwd=ROOT, check=False)
    data = json.loads(figures.read_text() or "{}")
    figures.unlink()
    print("\n| # | Scenario | SQLite (4 gunicorn workers) | PostgreSQL (4 gunicorn workers) |")
    print("|---|---|---|---|")
    for number, title in SCENARIOS.items():
        cells = []
        for kind in ("sqlite", "postgresql"):
            measured = data.get(kind, {}).get(str(number))
            cells.append(_cell(number, measured) if measured else "NOT MEASURED (test failed?)")
        print(f"| {number} | {title} | {cells[0]} | {cells[1]} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
