"""Search pages and the small things every page links: ``/search?q=`` (grouped by kind), ``/search/suggest`` (the
header box's dropdown, an htmx fragment), ``/favicon.ico`` and the avatars drawn from a name."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.search.everywhere import KINDS, search, suggestions
from hubstead.web.pages import render, viewer
from hubstead.web.space_views import stages_of

router = APIRouter(include_in_schema=False)
PER_KIND = 20
FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, session: Session = SessionDep) -> HTMLResponse:
    me = viewer(request, session)
    query = request.query_params.get("q", "")
    found = search(session, me.principal, query, per_kind=PER_KIND)
    repos = [row.repo for kind in KINDS for row in found.repos.get(kind, [])]
    return render(request, "search.html", me, found=found, q=query.strip(), space_stages=stages_of(session, repos))


@router.get("/search/suggest", response_class=HTMLResponse)
def suggest(request: Request, session: Session = SessionDep) -> HTMLResponse:
    me = viewer(request, session)
    query = request.query_params.get("q", "")
    groups = suggestions(session, me.principal, query) if query.strip() else []
    return render(request, "_search_suggestions.html", me, groups=groups, q=query.strip())


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def avatar_svg(name: str) -> str:
    """A round avatar: the name's initials on a colour from its hash (the same name, the same picture); served by
    ``routes_avatars`` when the account has uploaded none."""
    parts = [p for p in re.split(r"[-_.\s]+", name) if p] or ["?"]
    initials = html.escape((parts[0][0] + parts[1][0]) if len(parts) > 1 else parts[0][:2])
    digest = hashlib.sha256(name.lower().encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<circle cx="32" cy="32" r="32" fill="hsl({hue} 55% 45%)"/>'
        '<text x="32" y="41" text-anchor="middle" font-family="system-ui,sans-serif" font-size="26" '
        f'font-weight="600" fill="#fff">{initials.upper()}</text></svg>'
    )
