"""The systemd units in deploy/systemd/ pass systemd's own checker (`systemd-analyze verify`), with their
paths pointed at this checkout so the checker can see that every program they start exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALL_ROOT = "/srv/tidy-shop"


def _verify(unit_dir: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *[str(unit_dir / n) for n in names]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def checkable_units(tmp_path: Path) -> Path:
    """The units with /srv/tidy-shop replaced by this checkout (as installed, the paths exist there)."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (Debian: systemd)"
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.iterdir():
        (out / unit.name).write_text(unit.read_text().replace(INSTALL_ROOT, str(ROOT)))
    return out


def test_every_unit_passes_systemd_analyze_verify(checkable_units: Path) -> None:
    names = sorted(p.name for p in checkable_units.iterdir())
    assert {
        "tidy-shop-web.service",
        "tidy-shop-mail.service",
        "tidy-shop-backup.timer",
        "tidy-shop-audit.timer",
    } <= set(names)
    result = _verify(checkable_units, names)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        (("ExecStart=", "ExecStrat="), "Unknown key 'ExecStrat'"),
        ((".venv/bin/gunicorn", ".venv/bin/gunicorm"), "is not executable"),
    ],
)
def test_the_checker_refuses_a_broken_unit(checkable_units: Path, change: tuple[str, str], reported: str) -> None:
    """The check above can fail: a misspelt directive and a missing program are both refused."""
    broken = checkable_units / "tidy-shop-web.service"
    broken.write_text(broken.read_text().replace(*change))
    result = _verify(checkable_units, [broken.name])
    assert result.returncode != 0 and reported in result.stdout + result.stderr


def test_timers_start_their_services() -> None:
    for timer in UNITS.glob("*.timer"):
        assert (UNITS / timer.name.replace(".timer", ".service")).is_file(), timer.name
