"""The repository needs nothing beside it: no tracked file reads or names a path outside the clone.

Stripe's example objects once lived in a folder beside the repository, which a fresh clone does not have, and 67 tests
failed there. They are now kept in `tests/fixtures/stripe/`; this test keeps it that way.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Written in pieces so that this file does not match itself. What each catches:
# a relative path out of the clone into a `shared` folder; a path join building one (`parents[2] / "shared"`);
# absolute paths of the machine the project was written on; the shared briefs by name.
_SHARED = "sha" + "red"
OUTSIDE = re.compile(
    "|".join(
        [
            r"\.\.[/\\]+" + _SHARED,
            r"[\"']" + _SHARED + r"[\"']\s*/",
            r"/wo" + r"rk/(?:main|wt|" + _SHARED + r")\b",
            _SHARED + r"/(?:STRIPE|STYLE|TOOLCHAIN)\.md",
            r"(?<![\w/])stripe-fix" + r"tures/",
        ]
    )
)


def tracked_files() -> list[Path]:
    """Every file git tracks or would track (untracked but not ignored), so a new file is checked before commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_file_reaches_outside_the_clone() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue  # deleted in the work tree but still in the index
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert offenders == [], "files that need something beside the clone:\n" + "\n".join(offenders)


def test_the_pattern_catches_the_old_ways() -> None:
    up = ".." + "/" + _SHARED
    old = [
        f"# Stripe's published example objects, in {up} beside the repository",
        f'STRIPE_FIXTURES = Path(__file__).resolve().parents[2] / "{_SHARED}" / "stripe-fixtures" / "x.json"',
        f"Rules (see {_SHARED}/STRIPE.md): the order is committed PENDING",
        "run `/wo" + "rk/main/.venv/bin/python -m pytest`",
    ]
    assert all(OUTSIDE.search(line) for line in old)
    assert not OUTSIDE.search('"""Helpers shared by the tests."""')
    assert not OUTSIDE.search("tests/fixtures/stripe/fixtures3-subset.json")
