"""A tiny method + path-template router."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True)
class Match(Generic[H]):
    """A routed request: the handler, its template key and path arguments."""

    handler: H
    key: str  # e.g. "GET /v1/checkout/sessions/{id}", used for call counts and faults
    args: dict[str, str]


class Router(Generic[H]):
    """Maps "METHOD /path/{param}" templates to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, H]] = []

    def add(self, method: str, template: str, handler: H) -> None:
        """Register `handler` for `method` and `template`."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self._routes.append((method, re.compile(f"^{pattern}$"), template, handler))

    def route(self, method: str, path: str) -> Match[H] | None:
        """Find the handler for a request, or None."""
        for route_method, regex, template, handler in self._routes:
            found = regex.match(path)
            if found and route_method == method:
                return Match(handler, f"{method} {template}", found.groupdict())
        return None

    def template_for(self, method: str, path: str) -> str:
        """The call-count key for a request, falling back to the literal path."""
        match = self.route(method, path)
        return match.key if match else f"{method} {path}"
