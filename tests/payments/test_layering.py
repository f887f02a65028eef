"""The design's import rules, checked on the source (docs: README "Map of the code"):

- imports flow routes -> services -> models -> extensions, never back;
- only `shopapp/gateway.py` imports the stripe SDK, and views reach Stripe only through services;
- only `config.py` reads the process environment;
- `stripe_emulator` never imports `shopapp` (it stands in for Stripe, which knows nothing of us);
- no import cycle between the shop's modules (function-level imports count: they hide a cycle, not break it).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOPAPP = ROOT / "shopapp"
BLUEPRINTS = ("shopapp.auth", "shopapp.shop", "shopapp.payments", "shopapp.admin", "shopapp.ops")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module name path imports (absolute; `from a import b` gives a.b when that is a module, else a)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                package = _module_name(path).split(".")
                if path.name != "__init__.py":
                    package.pop()
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p): p for p in root.rglob("*.py")}


SHOP_MODULES = _modules(SHOPAPP)


def _shop_imports(name: str) -> set[str]:
    """The shop modules that module `name` imports."""
    return {target for target in _imports(SHOP_MODULES[name]) if target in SHOP_MODULES and target != name}


def _layer(name: str) -> int | None:
    """0 extensions, 1 models, 2 services, 3 blueprints (routes, forms, admin views); None: wiring/other."""
    if name in ("shopapp.extensions", "shopapp.request_ids"):  # leaves: they import nothing of the shop
        return 0
    if name.startswith("shopapp.models"):
        return 1
    if name.startswith("shopapp.services"):
        return 2
    if name.startswith(BLUEPRINTS):
        return 3
    return None


def test_only_the_gateway_imports_stripe():
    importers = sorted(
        str(path.relative_to(SHOPAPP))
        for path in SHOPAPP.rglob("*.py")
        if any(name == "stripe" or name.startswith("stripe.") for name in _imports(path))
    )
    assert importers == ["gateway.py"]


def test_views_do_not_reach_into_the_gateway():
    views = [*SHOPAPP.glob("*/routes.py"), *SHOPAPP.glob("admin/*.py"), *(SHOPAPP / "admin" / "views").glob("*.py")]
    assert views
    offenders = sorted(str(p.relative_to(SHOPAPP)) for p in views if "shopapp.gateway" in _imports(p))
    assert offenders == []


def test_imports_flow_routes_services_models_extensions():
    backwards = []
    for name in SHOP_MODULES:
        layer = _layer(name)
        if layer is None:
            continue
        for target in _shop_imports(name):
            target_layer = _layer(target)
            if target_layer is not None and target_layer > layer:
                backwards.append(f"{name} -> {target}")
    assert backwards == []


def test_extensions_import_nothing_of_the_shop():
    assert _shop_imports("shopapp.extensions") == set()
    assert _shop_imports("shopapp.request_ids") == set()


def test_services_do_not_touch_the_request():
    """Services never touch request, session or flash: a view passes them what they need."""
    offenders = []
    for name, path in SHOP_MODULES.items():
        if _layer(name) != 2:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                touched = {a.name for a in node.names} & {"request", "session", "flash", "g"}
                offenders += [f"{name}: flask.{t}" for t in sorted(touched)]
    assert offenders == []


def test_blueprints_do_not_import_each_other():
    crossings = []
    for name in SHOP_MODULES:
        own = next((bp for bp in BLUEPRINTS if name == bp or name.startswith(bp + ".")), None)
        if own is None:
            continue
        for target in _shop_imports(name):
            other = next((bp for bp in BLUEPRINTS if target == bp or target.startswith(bp + ".")), None)
            if other is not None and other != own:
                crossings.append(f"{name} -> {target}")
    assert crossings == []


def test_only_config_reads_the_environment():
    readers = []
    for path in [*SHOPAPP.rglob("*.py"), ROOT / "wsgi.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            # os.environ / os.getenv (a WSGI environ, request.environ, is the request's, not the process's)
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "getenv", "environb", "getenvb"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(str(path.relative_to(ROOT)))
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                if {a.name for a in node.names} & {"environ", "getenv"}:
                    readers.append(str(path.relative_to(ROOT)))
            elif isinstance(node, ast.ImportFrom) and node.module == "dotenv":
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_the_local_stripe_service_never_imports_the_shop():
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "stripe_emulator").rglob("*.py")
        if any(name == "shopapp" or name.startswith("shopapp.") for name in _imports(path))
        or any(name == "config" for name in _imports(path))
    )
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph() -> dict[str, set[str]]:
    # A package's __init__ re-exporting its own modules is not a cycle (models/__init__ gathers the models,
    # and each model imports models.base): edges from a package to its own submodules are left out.
    return {
        name: {t for t in _shop_imports(name) if not t.startswith(name + ".") and not name.startswith(t + ".")}
        for name in SHOP_MODULES
    }


def test_there_is_no_import_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: the cycle the issue named (mail -> shipping -> outbox -> mail) is found."""
    graph = {"mail": {"shipping"}, "shipping": {"outbox"}, "outbox": {"mail"}, "orders": {"mail"}}
    assert _cycles(graph) == [["mail", "outbox", "shipping"]]
