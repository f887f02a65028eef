"""Query plans of the pages that must stay flat as the shop grows (docs/PERFORMANCE.md, "+100,000 orders").

    python -m bench.explain [--db-url postgresql+psycopg://...] [--orders 100000] [--only orders_1000,admin_orders]

Builds the work counts' app and data (tests/perf/work_counts.py) on a fresh database, adds `--orders` more
orders over 1,000 shoppers, makes one request of each target named, and prints every SELECT it sent with its
plan: SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)` after `VACUUM
ANALYZE`. A plan that says `SCAN` with `USE TEMP B-TREE FOR ORDER BY` (SQLite) or `Seq Scan` and `Sort`
over orders (PostgreSQL) reads every order: that page would slow down as the shop grows.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    """Seed, request, print the plans."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL (default SQLite)")
    parser.add_argument("--orders", type=int, default=100_000, help="orders added (default 100,000)")
    parser.add_argument("--only", default="orders_1000,admin_orders", help="comma-separated work-count targets")
    args = parser.parse_args(argv)

    from sqlalchemy import event, text

    from shopapp.extensions import db
    from shopapp.services import bulk_seed
    from tests.perf import work_counts

    statements: list[tuple[str, Any]] = []
    with work_counts.database(args.db_url) as url:
        app, targets, _counter = work_counts.build_app(url)
        with app.app_context():
            shoppers = bulk_seed.add_shoppers(1000, "explain-password", prefix="explain")
            bulk_seed.add_orders(shoppers, max(1, args.orders // len(shoppers)))
            engine = db.engine
            postgres = engine.dialect.name == "postgresql"
            if postgres:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            db.session.remove()

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append((statement, parameters))

        for target in targets:
            if target.name not in args.only.split(","):
                continue
            statements.clear()
            event.listen(engine, "before_cursor_execute", record)
            try:
                _status, _body, _headers, iterable = work_counts.call(app, target.environ(0))
                work_counts.close_response(iterable)
            finally:
                event.remove(engine, "before_cursor_execute", record)
            print(f"=== {target.name}")
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                for statement, parameters in statements:
                    print("--- " + " ".join(statement.split())[:200])
                    prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if postgres else "EXPLAIN QUERY PLAN "
                    cursor.execute(prefix + statement, parameters)
                    for row in cursor.fetchall():
                        print("    " + (row[0] if postgres else str(row[-1])))
            finally:
                raw.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
