"""The README's map of the code names every module of the shop (issue 24: it named 9 of 20 services)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _map_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Map of the code")
    return readme[start : readme.index("\n## ", start + 1)]


def test_every_module_is_on_the_map():
    section = _map_section()
    named = set(re.findall(r"`([^`]+)`", section))
    # A module is named by its path, its file name, or its stem in a row of its package ("services/x, y").
    words = {part.strip() for name in named for part in re.split(r"[/,\s+()]+", name)}
    missing = []
    for path in sorted((ROOT / "shopapp").rglob("*.py")):
        if path.name == "__init__.py":
            if f"{path.parent.name}/" not in section and path.parent.name != "shopapp":
                missing.append(str(path.relative_to(ROOT)))
            continue
        if path.name not in words and path.stem not in words:
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_the_map_names_no_module_that_is_gone():
    section = _map_section()
    for path in re.findall(r"`(shopapp/[A-Za-z_/]+\.py)`", section):
        assert (ROOT / path).is_file(), path
