"""Generated schedules (issue 20): the stateful test of tests/facts/schedules.py at three webhook API versions,
on a fixed, derandomised budget so CI explores the same schedules every run (scripts/explore_payments.sh
runs a long random exploration with the same machine)."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.facts.schedules import make_world, schedules_for
from tests.payments.stripe_shapes import VERSIONS

# CI: the same schedules every run, a few minutes for both database passes on 2 cores.
CI_EXAMPLES = 12
CI_STEPS = 30


def budget() -> settings:
    """The fixed CI budget, or a random one from PAYMENT_SCHEDULES / PAYMENT_SCHEDULE_STEPS (explore script)."""
    examples = int(os.environ.get("PAYMENT_SCHEDULES", "0") or 0)
    random_run = examples > 0
    return settings(
        derandomize=not random_run,
        max_examples=examples if random_run else CI_EXAMPLES,
        stateful_step_count=int(os.environ.get("PAYMENT_SCHEDULE_STEPS", "0") or 0) or CI_STEPS,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_money_is_right_under_generated_schedules(app_factory, tmp_path, version, record_property):
    world = make_world(app_factory, tmp_path, version)
    try:
        run_state_machine_as_test(schedules_for(world), settings=budget())
    finally:
        counters = world.counters
        record_property("schedules", counters.schedules)
        record_property("steps", counters.steps)
        charged = Counter(kind for _schedule, _order, kind in counters.charged)
        print(
            f"\n[schedules] {version}: {counters.schedules} schedules, {counters.steps} steps; {dict(counters.rules)}"
            f"; paid orders {dict(charged)}"
        )
        world.emulator.close()
