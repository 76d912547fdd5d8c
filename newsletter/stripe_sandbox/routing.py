"""A small route table: the API, the hosted pages and the controls each fill one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from werkzeug.routing import Rule


@dataclass(frozen=True, eq=False)
class Route:
    kind: str                 # "api", "page" or "control": how the server wraps the handler
    handler: Callable
    schema: dict | None = None


@dataclass
class Routes:
    kind: str
    rules: list[Rule] = field(default_factory=list)

    def route(self, path: str, method: str, schema: dict | None = None):
        def register(handler: Callable) -> Callable:
            route = Route(self.kind, handler, schema)
            self.rules.append(Rule(path, methods=[method], endpoint=route))
            return handler
        return register
