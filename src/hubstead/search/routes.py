"""``GET /api/models``, ``/api/datasets``, ``/api/spaces``: listing and search with Link pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import (
    SessionDep,
    bearer_token,
    check_token_budget,
    get_hub,
    get_principal,
    parse_bool,
)
from hubstead.api.direct import DirectRoute, direct_handler
from hubstead.api.pagination import decode_cursor, next_page_link
from hubstead.db import LoopReadFailed
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.ops.logs import USER_KEY, note_user
from hubstead.repos.info import EXPANDABLE, FastJSONResponse, base_fields
from hubstead.search import answers
from hubstead.search.service import MAX_LIMIT, ListedRow, ListQuery, list_rows

router = APIRouter()
DEFAULT_PAGE = 1000
_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_COMPACT = {
    "model": [
        "_id",
        "id",
        "likes",
        "trendingScore",
        "private",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
        "modelId",
    ],
    "dataset": [
        "_id",
        "id",
        "author",
        "cardData",
        "lastModified",
        "private",
        "gated",
        "disabled",
        "downloads",
        "likes",
        "tags",
        "trendingScore",
        "createdAt",
        "sha",
        "description",
    ],
    "space": ["_id", "id", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"],
}


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequestError(f"{name} must be an integer") from exc


@router.get("/api/{plural:repotype}")
def list_route(plural: str, request: Request, session: Session = SessionDep) -> Response:
    repo_type = _PLURALS.get(plural)
    if repo_type is None:
        raise NotFoundError(f"Unknown listing {plural!r}")
    params = request.query_params
    principal = get_principal(request, session)
    limit = _int_param(params.get("limit"), "limit")
    if limit is not None and limit < 1:
        raise BadRequestError("limit must be positive")
    direction = _int_param(params.get("direction"), "direction") or -1
    gated = params.get("gated")
    query = ListQuery(
        repo_type=repo_type,
        search=params.getlist("search"),
        author=params.get("author"),
        filters=params.getlist("filter"),
        pipeline_tag=params.get("pipeline_tag"),
        library=params.getlist("library"),
        language=params.getlist("language"),
        gated=parse_bool(gated) if gated is not None else None,
        sort=params.get("sort"),
        direction=direction,
        offset=decode_cursor(params.get("cursor")),
    )
    page_size = min(limit or DEFAULT_PAGE, MAX_LIMIT)
    expand = params.getlist("expand") + params.getlist("expand[]")
    full = parse_bool(params.get("full"))
    card = parse_bool(params.get("cardData"))
    # Only the columns the answer shows: the card and the model config are JSON documents to decode per row.
    wants_card = card or full or repo_type == "dataset" or "cardData" in expand
    wants_config = full or "config" in expand
    rows, more = list_rows(session, principal, query, page_size=page_size, card=wants_card, config=wants_config)
    items = [_item(row, expand=expand, full=full, card=card) for row in rows]
    headers = {}
    # With an explicit limit the client stops there; pages continue only for unlimited listings.
    if more and limit is None:
        headers["Link"] = next_page_link(request, query.offset + len(rows))
    return FastJSONResponse(items, headers=headers)


@direct_handler("/api/{plural:repotype}")
async def list_direct(request: Request, plural: str) -> Response:
    """``list_route``, called by ``app.DirectRoutes`` (``direct_list_route``) without FastAPI's routing.

    An answer kept under the database's change stamp (``search.answers``) is served first, the stamp read from
    the event loop (``Database.change_stamp_now``): a kept answer costs no thread hand-off."""
    hub = get_hub(request)
    token_sent = bearer_token(request) is not None
    if token_sent:  # an address over its invalid-token budget is refused, kept answer or not
        check_token_budget(request)
    key: tuple[Hashable, ...] | None
    try:
        key = answers.listing_key(await hub.db.change_stamp_now(), request, plural)
    except LoopReadFailed:
        key = None  # the long way meets the same fault and answers it in its own words
    found = answers.kept(key) if key is not None else None
    if found is None and key is not None and (other := answers.BUILDS.building(key)) is not None:
        found = await asyncio.shield(other)  # the same answer is being built by another request: wait for it
    if found is not None:
        return _kept_response(request, found)

    def work() -> Response:
        with hub.db.session() as session:
            return list_route(plural, request, session)

    if key is None:
        return await run_in_threadpool(work)
    answers.BUILDS.start(key)
    kept = None
    try:
        response = await run_in_threadpool(work)
        if response.status_code == 200:
            kept = answers.keep(key, body=bytes(response.body), link=response.headers.get("link"),
                                caller=request.scope.get(USER_KEY), with_token=token_sent)  # fmt: skip
    finally:
        answers.BUILDS.finish(key, kept)
    return response


def _kept_response(request: Request, found: answers.KeptListing) -> Response:
    note_user(request.scope, found.caller)
    return Response(found.body, media_type="application/json", headers={"Link": found.link} if found.link else None)


def direct_list_route(method: str, path: str) -> DirectRoute | None:
    """``GET /api/models``, ``/api/datasets``, ``/api/spaces`` (``list_models`` and its kin), as ``list_route``'s
    ``@router`` line matches them."""
    if method != "GET" or not path.startswith("/api/"):
        return None
    plural = path[len("/api/") :]
    return (list_direct, {"plural": plural}) if plural in _PLURALS else None


def _item(row: ListedRow, *, expand: list[str], full: bool, card: bool) -> dict[str, Any]:
    repo = row.repo
    data = base_fields(repo, trending_score=row.trending, downloads=row.downloads)
    if expand:
        allowed = EXPANDABLE[repo.repo_type]
        return {k: v for k, v in data.items() if k in ("_id", "id") or (k in expand and k in allowed)}
    if full:
        data["siblings"] = None
        return data
    keys = list(_COMPACT[repo.repo_type])
    if card:
        keys.append("cardData")
    return {k: data[k] for k in keys if k in data}
