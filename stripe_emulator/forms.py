"""Decode Stripe's bracketed form encoding (`a[b][0][c]=1`) into nested dicts and lists."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")

# Inside these, numeric-looking keys are user data, not list indexes.
_FREE_FORM = {"metadata"}


def parse_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn decoded form pairs into nested params, converting index maps to lists."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            root[raw_key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
            if nxt == "":
                parts[i + 1] = str(len(node))
        last = parts[-1]
        node[last if last != "" else str(len(node))] = value
    return _listify(root, None)


def _listify(node: Any, name: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    if name not in _FREE_FORM and node and all(k.isdigit() for k in node):
        return [_listify(node[k], None) for k in sorted(node, key=int)]
    return {k: _listify(v, k) for k, v in node.items()}
