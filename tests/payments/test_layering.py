"""Imports flow one way: only the gateway knows the stripe SDK, and views know only the services' own errors."""

from __future__ import annotations

import ast
from pathlib import Path

SHOPAPP = Path(__file__).resolve().parents[2] / "shopapp"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_gateway_imports_stripe():
    importers = sorted(
        str(path.relative_to(SHOPAPP))
        for path in SHOPAPP.rglob("*.py")
        if any(name == "stripe" or name.startswith("stripe.") for name in _imports(path))
    )
    assert importers == ["gateway.py"]


def test_views_do_not_reach_into_the_gateway():
    views = [*SHOPAPP.glob("*/routes.py"), *(SHOPAPP / "admin" / "views").glob("*.py")]
    assert views
    offenders = sorted(str(p.relative_to(SHOPAPP)) for p in views if "shopapp.gateway" in _imports(p))
    assert offenders == []
