"""The direct path (``app.DirectRoutes``): a call it answers must be one FastAPI would route to the same handler
template, and every other call must reach FastAPI; the middleware still sees direct calls (metrics by template)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match

from hubstead.api.direct import route_template
from hubstead.app import HubApp, create_app
from hubstead.config import Settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubApp]:
    data_dir: Path = tmp_path_factory.mktemp("direct") / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'hub.db'}",
                        secret_key=secrets.token_hex(16), inference_enabled=False)  # fmt: skip
    made = create_app(settings, startup=False)
    yield made
    made.state.hub.db.engine.dispose()


def _fastapi_template(app: HubApp, method: str, path: str) -> str | None:
    """The path template of the route FastAPI's routing picks for this call."""
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
                             "app": app}  # fmt: skip
    for route in app.router.routes:
        for candidate in getattr(route, "original_router", route).routes if hasattr(route, "original_router") else [route]:
            match, _child = candidate.matches(scope)
            if match == Match.FULL:
                return str(getattr(candidate, "path", ""))
    return None


@pytest.mark.parametrize(
    "path", ["/api/models/alice/m", "/api/datasets/alice/d.v2", "/api/spaces/org/app", "/api/models",
             "/api/datasets", "/api/spaces"],
)  # fmt: skip
def test_direct_calls_are_the_ones_fastapi_routes_to_the_same_template(app: HubApp, path: str) -> None:
    assert app.direct_route is not None
    found = app.direct_route("GET", path)
    assert found is not None, path
    assert route_template(found[0]).path == _fastapi_template(app, "GET", path)


@pytest.mark.parametrize(
    ("method", "path"),
    [("HEAD", "/api/models/alice/m"), ("DELETE", "/api/models/alice/m"), ("GET", "/api/models/alice/m/tree/main"),
     ("GET", "/api/models/alice"), ("GET", "/api/models/alice/"), ("GET", "/api/models//m"),
     ("GET", "/api/widgets/alice/m"), ("GET", "/api/models-tags-by-type"), ("GET", "/api/modelsx"),
     ("GET", "/api/models/alice/m/revision/main"), ("POST", "/api/models")],
)  # fmt: skip
def test_other_calls_go_through_fastapi(app: HubApp, method: str, path: str) -> None:
    assert app.direct_route is not None
    found = app.direct_route(method, path)
    assert found is None or route_template(found[0]).path.startswith(("/spaces/", "/models/", "/v1/"))


def test_a_direct_call_passes_through_the_middleware(app: HubApp) -> None:
    with TestClient(app) as client:
        answer = client.get("/api/models/nobody/nothing", headers={"X-Request-Id": "probe-1"})
        assert answer.status_code == 404
        assert answer.headers["x-request-id"] == "probe-1"  # RequestIdMiddleware saw it
        assert answer.headers["x-error-code"] == "RepoNotFound"
        listing = client.get("/api/models?limit=1")
        assert listing.status_code == 200 and listing.json() == []
    routes_seen = {route for route, _method, _status in app.state.ops_metrics._children}  # metrics by template
    assert {"/api/{plural:repotype}/{ns}/{name}", "/api/{plural:repotype}"} <= routes_seen
