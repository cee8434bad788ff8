"""Collection pages: a collection (its items in order, with their notes) and the owner's forms to create a
collection, add a repo to it and remove an item. Every form posts the session's CSRF token; every change goes
through ``collections.service``, as the API's do. The owner's profile lists their collections
(``routes_browse.user_page``)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.collections import service
from hubstead.collections.models import ITEM_TYPES, THEMES
from hubstead.web.pages import render, signed_in, viewer

router = APIRouter(include_in_schema=False)
REPO_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}




def _page(slug: str) -> str:
    return f"/collections/{slug}"


@router.get("/collections/{namespace}/{slug}", response_class=HTMLResponse)
def collection_page(namespace: str, slug: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    collection = service.get_collection(session, me.principal, f"{namespace}/{slug}")
    canonical = service.slug_of(collection)
    if canonical != f"{namespace}/{slug}":  # an old slug (before a rename): the page lives at the new one
        return RedirectResponse(_page(canonical), status_code=301)
    items = service.visible_items(session, me.principal, [collection]).get(collection.pk, [])
    return render(
        request,
        "collection.html",
        me,
        collection=collection,
        slug=canonical,
        items=items,
        may_edit=me.user is not None and service.can_edit(session, me.principal, collection),
        item_types=[t for t in ITEM_TYPES if t != "collection"],
        repo_prefix=REPO_URL_PREFIX,
        slug_of=service.slug_of,
        theme=collection.theme if collection.theme in THEMES else "orange",
    )


@router.post("/collections/new")
def create_from_form(
    request: Request,
    title: str = Form(""),
    namespace: str = Form(""),
    description: str = Form(""),
    visibility: str = Form("public"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = signed_in(request, session, csrf_token)
    body = {"title": title, "namespace": namespace or None, "description": description or None,
            "private": visibility == "private"}  # fmt: skip
    try:
        collection = service.create_collection(session, me.principal, body)
    except service.CollectionExistsError as exc:
        return RedirectResponse(_page(exc.slug), status_code=303)
    return RedirectResponse(_page(service.slug_of(collection)), status_code=303)


@router.post("/collections/add")
def add_from_repo_page(
    request: Request,
    collection: str = Form(""),
    item_id: str = Form(""),
    item_type: str = Form("model"),
    note: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    """A repo page's "Add to a collection" box: the collection is chosen in the form."""
    return _add(request, session, collection, item_id, item_type, note, csrf_token)


def _add(request: Request, session: Session, slug: str, item_id: str, item_type: str, note: str, csrf: str) -> Response:
    """Add one repo (or collection) to the collection ``slug`` from a form, then show the collection."""
    me = signed_in(request, session, csrf)
    body = {"item": {"id": item_id, "type": item_type}, "note": note or None}
    added = service.add_item(session, me.principal, slug, body)
    return RedirectResponse(_page(service.slug_of(added)), status_code=303)


@router.post("/collections/{namespace}/{slug}/items")
def add_from_form(
    namespace: str,
    slug: str,
    request: Request,
    item_id: str = Form(""),
    item_type: str = Form("model"),
    note: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    return _add(request, session, f"{namespace}/{slug}", item_id, item_type, note, csrf_token)


@router.post("/collections/{namespace}/{slug}/items/{item_id}/delete")
def remove_from_form(
    namespace: str, slug: str, item_id: str, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = signed_in(request, session, csrf_token)
    service.delete_item(session, me.principal, f"{namespace}/{slug}", item_id)
    return RedirectResponse(_page(f"{namespace}/{slug}"), status_code=303)
