"""List parameters Stripe shares between list endpoints: `created` ranges, booleans, known names only.

Names and shapes are the SDK's generated list params (e.g. stripe/params/_event_list_params.py,
_balance_transaction_list_params.py): `created` is an integer or a map of `gt`/`gte`/`lt`/`lte`; `limit`,
`starting_after` and `ending_before` page (objects.list_object). A name the endpoint does not take is refused
as Stripe refuses it ("Received unknown parameter: ...", 400 `parameter_unknown`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .errors import invalid

PAGE_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand"})
_RANGE_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


def refuse_unknown(params: dict[str, Any], allowed: Iterable[str]) -> None:
    """400 `parameter_unknown` for the first parameter not in `allowed` (page parameters are always allowed)."""
    known = PAGE_PARAMS | set(allowed)
    for name in params:
        if name not in known:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def _integer(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")


def created_filter(raw: Any, param: str = "created") -> Callable[[int], bool]:
    """A test for `created` timestamps from the `created` parameter (an integer: equal; or a range map)."""
    if raw is None:
        return lambda created: True
    if isinstance(raw, str):
        exact = _integer(raw, param)
        return lambda created: created == exact
    if not isinstance(raw, dict) or not raw:
        raise invalid("Invalid object", param, "parameter_invalid_object")
    bounds: list[tuple[Callable[[int, int], bool], int]] = []
    for operator, value in raw.items():
        test = _RANGE_OPERATORS.get(operator)
        if test is None:
            raise invalid(
                f"Received unknown parameter: {param}[{operator}]", f"{param}[{operator}]", "parameter_unknown"
            )
        bounds.append((test, _integer(value, f"{param}[{operator}]")))
    return lambda created: all(test(created, bound) for test, bound in bounds)


def boolean(raw: Any, param: str) -> bool | None:
    """`true`/`false` as Stripe reads a boolean parameter; None when absent; 400 otherwise."""
    if raw is None:
        return None
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise invalid(f"Invalid boolean: {raw}", param, "parameter_invalid_boolean")


def page_params(params: dict[str, Any]) -> dict[str, Any]:
    """Only the paging parameters (what objects.list_object reads)."""
    return {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}


def data_expand(expand: list[str]) -> list[str]:
    """The `expand[]` paths of a list request that apply to each item (`data.source` -> `source`)."""
    paths = []
    for path in expand:
        head, _, rest = path.partition(".")
        if head != "data" or not rest:
            raise invalid(f"This property cannot be expanded ({path}).", "expand")
        paths.append(rest)
    return paths
