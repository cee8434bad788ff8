"""Avatars: ``/-/avatar/{name}`` (and the older ``/-/avatar/{name}.svg``) answers the user's or org's uploaded
image if it has one, else the picture generated from the name (``routes_search.avatar_svg``; any short name, git
authors included). Uploads: ``POST /settings/avatar`` for the signed-in user, ``POST
/organizations/{org}/avatar`` for the org's admins (everyone else gets the 404 page, as on its members page);
multipart forms with the session's CSRF token; ``action=remove`` goes back to the generated picture. The checks
and the storage are ``auth.avatars``'.

An uploaded image is served with the type read from its bytes, ``nosniff`` and a sandboxing CSP, so it is never
run as a document; both kinds carry an ETag and are cached a minute (the URL stays while the picture changes).
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from hubstead.api.deps import SessionDep, get_hub
from hubstead.auth import org_members
from hubstead.auth.avatars import MAX_AVATAR_BYTES, avatar_file, avatar_of, set_avatar
from hubstead.errors import BadRequestError, UnauthorizedError
from hubstead.web.pages import signed_in, viewer
from hubstead.web.routes_search import avatar_svg

router = APIRouter(include_in_schema=False)
CACHE = "public, max-age=60"


def _not_modified(request: Request, etag: str) -> Response | None:
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE})
    return None


@router.get("/-/avatar/{name}")
def avatar(name: str, request: Request, session: Session = SessionDep) -> Response:
    if not name.strip() or len(name) > 132:  # users, orgs and git authors ("Jane Doe"): any short name
        raise BadRequestError("Invalid name for an avatar: 1 to 128 characters")
    exists, stored = avatar_of(session, name)
    if not exists and name.endswith(".svg"):  # the older URL of the generated picture
        name = name[: -len(".svg")]
        exists, stored = avatar_of(session, name) if name.strip() else (False, None)
    if not name.strip() or len(name) > 128:
        raise BadRequestError("Invalid name for an avatar: 1 to 128 characters")
    found = avatar_file(get_hub(request), stored) if stored else None
    if found is not None:
        path, content_type = found
        etag = f'"{stored}"'
        headers = {"ETag": etag, "Cache-Control": CACHE, "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'none'; sandbox"}  # fmt: skip
        return _not_modified(request, etag) or FileResponse(path, media_type=content_type, headers=headers)
    svg = avatar_svg(name)
    etag = f'"g-{hashlib.sha256(svg.encode()).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"}
    return _not_modified(request, etag) or Response(svg, media_type="image/svg+xml", headers=headers)


async def _change(request: Request, org_name: str | None) -> Response:
    """Read the form (a signed-in caller only), then set or remove the avatar of the caller or of ``org_name``."""
    hub = get_hub(request)
    request.state.page = True  # errors answered as pages

    def anyone_signed_in() -> bool:
        with hub.db.session() as session:
            return viewer(request, session).user is not None

    if not await run_in_threadpool(anyone_signed_in):  # strangers are refused before their body is read
        raise UnauthorizedError("Sign in first")
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("avatar")
    remove = form.get("action") == "remove"
    data = b""
    if not remove and isinstance(upload, UploadFile):
        data = await upload.read(MAX_AVATAR_BYTES + 1)  # one byte over is enough to refuse it

    def work() -> Response:
        with hub.db.session() as session:
            me = signed_in(request, session, str(form.get("csrf_token") or ""))
            assert me.user is not None
            account = org_members.managed_org(session, me.user, org_name) if org_name else session.merge(me.user)
            target = f"/organizations/{account.name}/members" if org_name else "/settings/profile"
            set_avatar(hub, session, account, None if remove else data)
            session.commit()
        return RedirectResponse(target, status_code=303)

    return await run_in_threadpool(work)


@router.post("/settings/avatar")
async def user_avatar(request: Request) -> Response:
    return await _change(request, None)


@router.post("/organizations/{name}/avatar")
async def org_avatar(name: str, request: Request) -> Response:
    return await _change(request, name)
