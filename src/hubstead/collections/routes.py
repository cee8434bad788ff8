"""``/api/collections`` as ``huggingface_hub`` calls it (``list_collections``, ``get_collection``,
``create_collection``, ``update_collection_metadata``, ``delete_collection``, ``add_collection_item``,
``update_collection_item``, ``delete_collection_item``).

Shapes: a collection is ``{slug, title, description?, owner{name, type, …}, items[], lastUpdated, position, private,
theme, upvotes, …}``; PATCH answers ``{"success", "data": collection}``; a listing omits the collection's
``position`` (the client numbers the list itself) and shows at most 4 items each, with ``Link`` paging. An item is
``{_id, id, type, position, note?{text, html}}`` plus its repo's summary, or a collection's ``slug`` and title.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_caller, get_hub, raw_segments, read_json_object
from hubstead.api.pagination import decode_cursor, next_page_link, positive_limit
from hubstead.auth.models import Org
from hubstead.auth.service import Principal
from hubstead.collections import service
from hubstead.collections.models import Collection
from hubstead.collections.service import CollectionExistsError, ItemView
from hubstead.dates import iso
from hubstead.errors import error_header_value

router = APIRouter()
_PREFIX = "/api/collections"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def owner_json(session: Session, namespace: str, account: Any) -> dict[str, Any]:
    is_org = isinstance(account, Org)
    name = account.name if account is not None else namespace
    return {
        "_id": f"{account.id:024x}" if account is not None else "",
        "name": name,
        "fullname": (account.fullname if account is not None else "") or name,
        "type": "org" if is_org else "user",
        "avatarUrl": "",
        "isPro": False,
        "isHf": False,
        "isMod": False,
    }


def item_json(view: ItemView) -> dict[str, Any]:
    row = view.item
    out: dict[str, Any] = {"_id": row.public_id, "type": row.item_type, "position": view.position}
    if view.repo is not None:
        repo = view.repo
        out.update(
            id=repo.repo_id, author=repo.namespace, private=repo.private, gated=repo.gated or False,
            likes=repo.likes, downloads=repo.downloads_30d, lastModified=iso(repo.last_modified),
            repoType=repo.repo_type,
        )  # fmt: skip
        if repo.repo_type == "model" and repo.pipeline_tag:
            out["pipeline_tag"] = repo.pipeline_tag
        if repo.repo_type == "space":
            out["sdk"] = repo.sdk
    elif view.collection is not None:
        target = view.collection
        out.update(
            id=target.public_id, slug=service.slug_of(target), title=target.title, description=target.description,
            private=target.private, theme=target.theme, lastUpdated=iso(target.updated_at),
        )  # fmt: skip
    if row.note:
        out["note"] = {"text": row.note, "html": html.escape(row.note)}
    return out


def collection_json(
    session: Session, collection: Collection, items: list[ItemView], owner: Any, *, endpoint: str, listed: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": collection.public_id,
        "slug": service.slug_of(collection),
        "title": collection.title,
        "owner": owner_json(session, collection.namespace, owner),
        "items": [item_json(view) for view in items],
        "lastUpdated": iso(collection.updated_at),
        "theme": collection.theme,
        "private": collection.private,
        "upvotes": collection.upvotes,
        "isUpvotedByUser": False,
        "gating": False,
        "url": f"{endpoint}/collections/{service.slug_of(collection)}",
    }
    if collection.description:
        out["description"] = collection.description
    if not listed:  # the client numbers a listing itself and refuses a second ``position``
        out["position"] = collection.position
    return out


def full_json(session: Session, principal: Principal, collection: Collection, endpoint: str) -> dict[str, Any]:
    items = service.visible_items(session, principal, [collection]).get(collection.pk, [])
    owner = service.owners_of(session, [collection])[collection.namespace_key]
    return collection_json(session, collection, items, owner, endpoint=endpoint)


def _slug(request: Request, after: int) -> str:
    """The slug from the raw path: segments ``after`` the prefix (``/api/collections/{ns}/{slug}…``)."""
    segments = raw_segments(request)
    return "/".join(segments[after : after + 2])


def _caller(request: Request, session: Session) -> Principal:
    return get_caller(request, session)


@router.get(_PREFIX)
def list_route(request: Request) -> Response:
    params = request.query_params
    limit = positive_limit(params.get("limit"), maximum=10_000)
    page = min(limit or PAGE_SIZE, MAX_PAGE_SIZE)
    offset = decode_cursor(params.get("cursor"))
    with get_hub(request).db.session() as session:
        principal = _caller(request, session)
        rows = service.list_collections(
            session, principal, owners=params.getlist("owner"), items=params.getlist("item"),
            sort=params.get("sort"), offset=offset, limit=page,
        )  # fmt: skip
        more = len(rows) > page
        rows = rows[:page]
        items = service.visible_items(session, principal, rows, per_collection=service.LISTED_ITEMS)
        owners = service.owners_of(session, rows)
        endpoint = base_url(request)
        body = [
            collection_json(session, c, items.get(c.pk, []), owners[c.namespace_key], endpoint=endpoint, listed=True)
            for c in rows
        ]
    headers = {"Link": next_page_link(request, offset + page)} if more else {}
    return JSONResponse(body, headers=headers)


@router.post(_PREFIX)
async def create_route(request: Request) -> Response:
    body = await read_json_object(request)

    def work() -> Response:
        with get_hub(request).db.session() as session:
            principal = _caller(request, session)
            try:
                collection = service.create_collection(session, principal, body)
            except CollectionExistsError as exc:
                session.rollback()
                headers = {"X-Error-Message": error_header_value(exc.message)}
                return JSONResponse({"error": exc.message, "slug": exc.slug}, status_code=409, headers=headers)
            return JSONResponse(full_json(session, principal, collection, base_url(request)))

    return await run_in_threadpool(work)


@router.get(_PREFIX + "/{namespace}/{slug}")
def get_route(request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        principal = _caller(request, session)
        collection = service.get_collection(session, principal, _slug(request, 2))
        return full_json(session, principal, collection, base_url(request))


@router.patch(_PREFIX + "/{namespace}/{slug}")
async def update_route(request: Request) -> dict[str, Any]:
    body = await read_json_object(request)

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            principal = _caller(request, session)
            collection = service.update_collection(session, principal, _slug(request, 2), body)
            return {"success": True, "data": full_json(session, principal, collection, base_url(request))}

    return await run_in_threadpool(work)


@router.delete(_PREFIX + "/{namespace}/{slug}")
def delete_route(request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        service.delete_collection(session, _caller(request, session), _slug(request, 2))
    return {"success": True}


@router.post(_PREFIX + "/{namespace}/{slug}/items")
async def add_item_route(request: Request) -> dict[str, Any]:
    body = await read_json_object(request)

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            principal = _caller(request, session)
            collection = service.add_item(session, principal, _slug(request, 2), body)
            return full_json(session, principal, collection, base_url(request))

    return await run_in_threadpool(work)


@router.patch(_PREFIX + "/{namespace}/{slug}/items/{item_id}")
async def update_item_route(request: Request, item_id: str) -> dict[str, Any]:
    body = await read_json_object(request)

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            principal = _caller(request, session)
            collection = service.update_item(session, principal, _slug(request, 2), item_id, body)
            return {"success": True, "data": full_json(session, principal, collection, base_url(request))}

    return await run_in_threadpool(work)


@router.delete(_PREFIX + "/{namespace}/{slug}/items/{item_id}")
def delete_item_route(request: Request, item_id: str) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        service.delete_item(session, _caller(request, session), _slug(request, 2), item_id)
    return {"success": True}
