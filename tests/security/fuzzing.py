"""Shared pieces of the fuzzing proofs: hostile values, a counter, and the tally each target prints."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded so the whole folder stays well under a minute and a half; deadline off (CI machines are slow).
# Developers' runs explore new random inputs each time; CI (CI=true) replays a fixed sequence so that a
# submission is judged on its own code, not on the luck of the draw.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)

NASTY = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1.5",
        "1e9",
        "NaN",
        "Infinity",
        "99999999999999999999",
        "\x00",
        "a\x00b",
        "%00",
        "<script>alert(1)</script>",
        "' OR 1=1--",
        '"; DROP TABLE users;--',
        "{{7*7}}",
        "../../etc/passwd",
        "\u202e\u0661\u00b2",
        "\ud7ff",
        "a" * 300,
        "x@example.com",
        "staff@example.com",
        "4242 4242 4242 4242",
    ]
)
VALUE = st.one_of(NASTY, st.text(max_size=80), st.integers().map(str), st.floats().map(str))


def fields(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form fields: mostly the form's own names (possibly repeated), some invented ones, hostile values."""
    name = st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(min_size=1, max_size=20))
    return st.lists(st.tuples(name, VALUE), max_size=8)


@dataclass
class Tally:
    """What one fuzz target saw."""

    target: str
    tried: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: int = 0
    rejected_changes: int = 0

    def add(self, status: int, changed: bool, accepted: bool) -> None:
        """Count one input; a 5xx or a change made by a rejected input is recorded (and asserted on later)."""
        self.tried += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.server_errors += status >= 500
        self.rejected_changes += changed and not accepted

    def line(self) -> str:
        """The figure printed for this target."""
        return (
            f"fuzz {self.target}: {self.tried} inputs, {self.server_errors} responses 5xx, "
            f"{self.rejected_changes} rows changed by rejected input, statuses {dict(sorted(self.statuses.items()))}"
        )
