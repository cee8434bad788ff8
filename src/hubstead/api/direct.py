"""Routes the app calls directly, without FastAPI's router (``app.DirectRoutes``, the innermost middleware): the few
calls clients make hundreds of times a second. A domain's routes module names such a route with a function
``(method, path) -> DirectRoute | None``; the app asks it first. Every middleware (request id, metrics, the access
log, the spaces domain) still sees the request; matching it against a few hundred routes and FastAPI's
per-request wrappers are what is skipped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Scope

# A handler the app calls directly, and its path parameters.
DirectRoute = tuple[Callable[..., Awaitable[Response]], dict[str, str]]


@dataclass(frozen=True)
class RouteTemplate:
    """What a direct request's scope carries as its ``route`` (the metrics read ``route.path``, never the path)."""

    path: str


_TEMPLATES: dict[Any, RouteTemplate] = {}
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Response]])


def direct_handler(template: str) -> Callable[[Handler], Handler]:
    """Name the route template of a direct handler (``/models/{namespace}/{name}``), as its ``@router`` line does."""

    def named(handler: Handler) -> Handler:
        _TEMPLATES[handler] = RouteTemplate(template)
        return handler

    return named


def route_template(handler: Callable[..., Awaitable[Response]]) -> RouteTemplate:
    return _TEMPLATES.get(handler) or RouteTemplate("direct")


def route_path(scope: Scope) -> str:
    """The path a route matches: the request's path without the app's root path, as Starlette's routing reads it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
