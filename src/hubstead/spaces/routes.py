"""``/api/spaces/...``: a space's runtime, restart, pause, sleep time, hardware, variables, secrets and logs, as
``huggingface_hub`` calls them (``get_space_runtime``, ``restart_space``, ``pause_space``, ``set_space_sleep_time``,
``request_space_hardware``, ``add/delete_space_secret``, ``get_space_secrets``, ``add/delete/get_space_variable(s)``,
``fetch_space_logs``, ``list_spaces_hardware``). Thin: each handler finds the repo with the caller's access and calls
``spaces.service``; the supervisor is woken so the change takes effect at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_hub, parse_bool, read_json_object
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.models import Repo
from hubstead.repos.routes.access import RepoRequest, api_repo_request
from hubstead.runner.hardware import flavors
from hubstead.spaces import logs, service
from hubstead.spaces.runtime import runtime_json
from hubstead.spaces.templates import templates_json

router = APIRouter(tags=["spaces"])

LOG_STREAM_SECONDS = 3600  # one log connection lasts at most this long (the client reconnects and replays)


def _wake_supervisor(request: Request) -> None:
    supervisor = getattr(request.app.state, "spaces", None)
    if supervisor is not None:
        supervisor.wake()


def _runtime(rr: RepoRequest, repo: Repo) -> dict[str, Any]:
    row = service.ensure_runtime(rr.session, repo)
    return runtime_json(rr.hub.settings, row, repo)


@router.get("/api/spaces/hardware")
def hardware() -> list[dict[str, Any]]:
    """What this host offers spaces: CPU and memory sizes, a GPU flavour where it has GPUs."""
    return [flavor.as_json() for flavor in flavors().values()]


@router.get("/api/spaces/templates")
def space_templates() -> dict[str, list[dict[str, object]]]:
    """The templates a new space can start from (``list_space_templates``; ``create_repo(space_template=)``)."""
    return {"templates": templates_json()}


@router.get("/api/spaces/{ns}/{name}/runtime")
def get_runtime(request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        rr = api_repo_request(request, session)
        repo = rr.readable()
        return _runtime(rr, repo)


def _writer_action(request: Request, action: Any) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        rr = api_repo_request(request, session)
        if rr.repo_type != "space":
            raise BadRequestError("This is a space call; the repo is not a space")
        repo = rr.writable()
        action(rr, repo)
        answer = _runtime(rr, repo)
    _wake_supervisor(request)
    return answer


@router.post("/api/spaces/{ns}/{name}/restart")
def restart(request: Request) -> dict[str, Any]:
    factory = parse_bool(request.query_params.get("factory"))
    return _writer_action(request, lambda rr, repo: service.restart(rr.session, repo, factory=factory))


@router.post("/api/spaces/{ns}/{name}/pause")
def pause(request: Request) -> dict[str, Any]:
    return _writer_action(request, lambda rr, repo: service.pause(rr.session, repo))


@router.post("/api/spaces/{ns}/{name}/sleeptime")
async def sleeptime(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    return await run_in_threadpool(
        _writer_action, request, lambda rr, repo: service.set_sleep_time(rr.session, repo, payload.get("seconds"))
    )


@router.post("/api/spaces/{ns}/{name}/hardware")
async def request_hardware(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    return await run_in_threadpool(
        _writer_action,
        request,
        lambda rr, repo: service.request_hardware(
            rr.session, repo, payload.get("flavor"), payload.get("sleepTimeSeconds")
        ),
    )


async def _settings_call(request: Request, kind: str, method: str) -> Any:
    payload = await read_json_object(request, allow_empty=method == "GET")

    def work() -> Any:
        with get_hub(request).db.session() as session:
            rr = api_repo_request(request, session)
            repo = rr.writable()
            if rr.repo_type != "space":
                raise BadRequestError("This is a space call; the repo is not a space")
            if method == "POST":
                service.set_setting(rr.hub, session, repo, kind, payload.get("key"), payload.get("value"),
                                    payload.get("description"))  # fmt: skip
            elif method == "DELETE":
                service.delete_setting(session, repo, kind, payload.get("key"))
            if kind == "variable":
                return service.variables_json(session, repo)
            return service.secrets_json(session, repo)

    answer = await run_in_threadpool(work)
    if method != "GET":
        _wake_supervisor(request)
        if kind == "secret":
            return Response(status_code=200)
    return JSONResponse(answer)


@router.api_route("/api/spaces/{ns}/{name}/secrets", methods=["GET", "POST", "DELETE"])
async def space_secrets(request: Request) -> Any:
    return await _settings_call(request, "secret", request.method)


@router.api_route("/api/spaces/{ns}/{name}/variables", methods=["GET", "POST", "DELETE"])
async def space_variables(request: Request) -> Any:
    return await _settings_call(request, "variable", request.method)


@router.get("/api/spaces/{ns}/{name}/logs/{kind}")
def space_logs(request: Request, kind: str) -> StreamingResponse:
    """Build or run logs as server-sent events: every line so far, in order, then new lines as they come."""
    if kind not in logs.KINDS:
        raise NotFoundError("Space logs are 'build' or 'run'")
    hub = get_hub(request)
    with hub.db.session() as session:
        rr = api_repo_request(request, session, action_segments=2)
        repo = rr.readable()
        repo_pk = repo.pk
    settings = hub.settings

    def events() -> Iterator[bytes]:
        stop = time.monotonic() + LOG_STREAM_SECONDS
        for stamp, line in logs.follow(settings, repo_pk, kind, stop=stop):
            if not stamp:
                yield b": keep-alive\n\n"
                continue
            yield f"data: {json.dumps({'data': line + chr(10), 'timestamp': stamp})}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
