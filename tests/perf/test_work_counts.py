"""The work-count guard: each benchmark target's work, counted without a clock, stays within its margin of
the committed baseline (tests/perf/work_counts.py, docs/PERFORMANCE.md).

A failure names the target and the count that grew. If the growth is intended (a feature that must cost
more), update the baseline on purpose and say why in the commit:

    .venv/bin/python -m tests.perf.work_counts --update                          # SQLite
    TEST_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m tests.perf.work_counts --update
"""

from __future__ import annotations

from config import TestingConfig
from tests.perf import work_counts


def test_work_stays_within_the_baseline():
    db_url = TestingConfig.TEST_DATABASE_URL
    kind = work_counts.database_kind(db_url)
    measured = work_counts.measure_in_child(db_url)
    baseline = work_counts.load_baseline()
    problems = work_counts.regressions(kind, measured, baseline)
    assert not problems, (
        "Work grew over the committed baseline (tests/perf/work_baseline.json):\n"
        + "\n".join(problems)
        + f"\n\n{work_counts.table(kind, measured, baseline)}\n\nIf intended: {work_counts.UPDATE_COMMAND}"
        + f" (baseline measured with {baseline.get('versions', {}).get(kind)})"
    )
    # A page that shows 20 orders does the same work for a shopper with 1,000 (the one extra row read tells
    # that an older page exists): nothing on it may grow with the order count. The shop page ("/") and the
    # page that lists the orders ("/orders").
    for few_name, many_name in (("shop_20_orders", "shop_1000_orders"), ("orders_20", "orders_1000")):
        few, many = measured[few_name], measured[many_name]
        assert many["statements"] == few["statements"] and many["templates"] == few["templates"], (few, many)
        assert abs(many["calls"] - few["calls"]) <= few["calls"] * 0.01, (few_name, few, many)


def test_a_count_that_grew_is_caught():
    """The comparison itself: over the margin fails, within it passes, for each unit."""
    base = {t: {"calls": 1000, "statements": 3, "templates": 0} for t in work_counts.TARGETS}
    baseline = {"sqlite": base}
    same = {t: dict(counts) for t, counts in base.items()}
    assert work_counts.regressions("sqlite", same, baseline) == []
    within = {t: {**counts, "calls": 1050} for t, counts in base.items()}
    assert work_counts.regressions("sqlite", within, baseline) == []
    over = {**same, "admin_orders": {"calls": 1051, "statements": 4, "templates": 1}}
    problems = work_counts.regressions("sqlite", over, baseline)
    assert [p.split(":")[0] for p in problems] == ["admin_orders"] * 3
    assert work_counts.regressions("postgresql", same, baseline)  # no baseline for that database: fails
