"""``GET /v1/models``: the models this caller can call here, with how each is served."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_hub
from hubstead.inference.routes.common import router, service_of
from hubstead.inference.routes.lookups import principal
from hubstead.inference.routes.openai_api import openai_errors


@router.get("/v1/models")
@openai_errors
async def list_models(request: Request) -> Response:
    service = service_of(request)
    rows = await run_in_threadpool(_servable_models, request)
    loaded = {m["repo_id"]: m for m in service.status() if m["state"] == "ready"}
    data = []
    for repo_id, namespace, created, task in rows:
        config = service.config_for(repo_id)
        entry: dict[str, Any] = {
            "id": repo_id,
            "object": "model",
            "created": created,
            "owned_by": namespace,
            "task": task,
        }
        if config.engine_url:
            entry["served_by"] = {"engine": config.engine_url, "model": config.engine_model or repo_id}
        else:
            from hubstead.inference.service import group_for

            configured = service.runtime_for(repo_id, group_for(task or ""))
            live = loaded.get(repo_id)
            entry["served_by"] = {
                "engine": "hubstead",
                "runtime": configured,
                "loaded": live is not None,
                "form": live["form"] if live else None,
                "form_reason": live["form_reason"] if live else None,
            }
        data.append(entry)
    return JSONResponse({"object": "list", "data": data})


def _servable_models(request: Request) -> list[tuple[str, str, int, str | None]]:
    from hubstead.inference.protocol import SERVED_TASKS
    from hubstead.repos.models import Repo
    from hubstead.repos.visibility import visible_filter

    with get_hub(request).db.session() as session:
        caller = principal(request, session)
        query = select(Repo).where(
            Repo.repo_type == "model",
            Repo.pipeline_tag.in_(sorted(SERVED_TASKS)),
            visible_filter(session, caller),
        )
        return [
            (repo.repo_id, repo.namespace, int(repo.created_at.timestamp()), repo.pipeline_tag)
            for repo in session.scalars(query.order_by(Repo.namespace, Repo.name).limit(5000))
        ]
