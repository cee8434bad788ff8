"""Routes the app calls directly, without FastAPI's router and middleware (``app.HubApp``): the few calls
clients make hundreds of times a second. A domain's routes module names such a route with a function
``(method, path) -> DirectRoute | None``; the app asks it first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

# A handler the app calls directly, and its path parameters.
DirectRoute = tuple[Callable[..., Awaitable[Response]], dict[str, str]]
