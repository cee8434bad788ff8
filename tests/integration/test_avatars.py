"""Uploaded avatars over HTTP with web sessions (sqlite only: one nullable column read the same way on either
backend): a PNG uploaded through the profile settings form is what ``/-/avatar/{name}`` serves (same bytes, its
sniffed type, nosniff, a sandboxing CSP, an ETag) and what the profile page links; disguised documents, bombs and
files over 2 MB are refused with nothing stored; an org's admin sets the org's avatar, a member who is not an admin
cannot; removing goes back to the generated SVG; ``whoami``'s ``avatarUrl`` resolves to it."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from PIL import Image

from support import Account, LiveServer, web_session

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)

PASSWORD = "avatar-pass-12345"


def _png(size: tuple[int, int] = (48, 48), colour: str = "teal", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 0).save(out, "PNG")
    return out.getvalue()


def _stored(server: LiveServer) -> set[Path]:
    return set((server.data_dir / "avatars").rglob("*"))


@pytest.fixture(scope="module")
def people(server: LiveServer) -> tuple[Account, Account, str]:
    """An org admin and a member with write access (both with the web password), and the org."""
    admin = server.account("avadm", password=PASSWORD)
    member = server.account("avmem", password=PASSWORD)
    org = server.unique("avorg")
    server.cli("orgs", "create", org, "--owner", admin.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "write")
    return admin, member, org


def test_user_avatar_upload_serve_refuse_remove(server: LiveServer, people: tuple[Account, Account, str]) -> None:
    admin, _, _ = people
    web, csrf = web_session(server, admin.name, PASSWORD)
    generated = web.get(f"/-/avatar/{admin.name}")
    assert generated.headers["content-type"].startswith("image/svg+xml") and "<svg" in generated.text
    assert 'action="/settings/avatar"' in web.get("/settings/profile").text

    png = _png()
    answer = web.post("/settings/avatar", data={"csrf_token": csrf}, files={"avatar": ("me.gif", png, "image/gif")})
    assert answer.status_code == 303, answer.text[:1000]
    served = httpx.get(f"{server.url}/-/avatar/{admin.name}")
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png"  # from the bytes, not the declared GIF
    assert (
        served.headers["x-content-type-options"] == "nosniff" and "sandbox" in served.headers["content-security-policy"]
    )
    etag = served.headers["etag"]
    assert httpx.get(f"{server.url}/-/avatar/{admin.name}", headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(f"{server.url}/-/avatar/{admin.name}.svg").content == png  # the older URL picks too
    assert httpx.get(f"{server.url}/-/avatar/{admin.name.upper()}").content == png
    profile = httpx.get(f"{server.url}/{admin.name}").text
    assert f'src="/-/avatar/{admin.name}?v=' in profile
    whoami = HfApi(endpoint=server.url, token=admin.read_token).whoami()
    assert whoami["avatarUrl"] == f"{server.url}/-/avatar/{admin.name}"
    assert httpx.get(whoami["avatarUrl"]).content == png

    before = _stored(server)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    for name, data in (("x.png", svg), ("x.png", b"<html><script>alert(1)</script></html>"),
                       ("big.png", _png((5000, 200), mode="1"))):  # fmt: skip
        refused = web.post("/settings/avatar", data={"csrf_token": csrf}, files={"avatar": (name, data, "image/png")})
        assert refused.status_code == 400, (name, refused.status_code)
    over = png + b"\0" * (2_000_001 - len(png))  # just over 2 MB: the avatar check's 413
    too_large = web.post("/settings/avatar", data={"csrf_token": csrf}, files={"avatar": ("a.png", over, "image/png")})
    assert too_large.status_code == 413 and "2 MB" in too_large.text
    far_over = web.post("/settings/avatar", data={"csrf_token": csrf},
                        files={"avatar": ("a.png", png + b"\0" * 3_000_000, "image/png")})  # fmt: skip
    assert far_over.status_code == 413  # the body limit, before the body is read
    no_csrf = web.post("/settings/avatar", files={"avatar": ("a.png", _png(colour="red"), "image/png")})
    assert no_csrf.status_code == 403
    assert _stored(server) == before and httpx.get(f"{server.url}/-/avatar/{admin.name}").content == png

    removed = web.post("/settings/avatar", data={"csrf_token": csrf, "action": "remove"})
    assert removed.status_code == 303
    back = httpx.get(f"{server.url}/-/avatar/{admin.name}")
    assert back.headers["content-type"].startswith("image/svg+xml") and back.text == generated.text


def test_org_avatar_by_its_admins_only(server: LiveServer, people: tuple[Account, Account, str]) -> None:
    admin, member, org = people
    web_member, member_csrf = web_session(server, member.name, PASSWORD)
    png = _png(colour="orange")
    refused = web_member.post(f"/organizations/{org}/avatar", data={"csrf_token": member_csrf},
                              files={"avatar": ("o.png", png, "image/png")})  # fmt: skip
    assert refused.status_code == 404
    assert httpx.get(f"{server.url}/-/avatar/{org}").headers["content-type"].startswith("image/svg+xml")

    web, csrf = web_session(server, admin.name, PASSWORD)
    assert f'action="/organizations/{org}/avatar"' in web.get(f"/organizations/{org}/members").text
    answer = web.post(
        f"/organizations/{org}/avatar", data={"csrf_token": csrf}, files={"avatar": ("o.png", png, "image/png")}
    )
    assert answer.status_code == 303
    assert httpx.get(f"{server.url}/-/avatar/{org}").content == png
    overview = HfApi(endpoint=server.url).get_organization_overview(org)
    assert overview.avatar_url == f"{server.url}/-/avatar/{org}"
    assert httpx.get(overview.avatar_url).content == png
    web.post(f"/organizations/{org}/avatar", data={"csrf_token": csrf, "action": "remove"})
    assert httpx.get(f"{server.url}/-/avatar/{org}").headers["content-type"].startswith("image/svg+xml")
