"""One visibility rule for every listing (``repos.visibility``): a private repo shows for its owner, its org's
members (any role) and site admins, and for nobody else, in the repo's own info, the API listing and search,
the web list page and the inference model list (``/v1/models``), which used to hide private models from
admins."""

from __future__ import annotations

import base64
import json

import httpx

from support import LiveServer

CARD = b"---\npipeline_tag: text-classification\n---\n# private\n"


def _commit_card(server: LiveServer, token: str, repo_id: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{server.url}/api/repos/create", headers=headers,
        json={"type": "model", "name": repo_id.split("/")[1], "organization": repo_id.split("/")[0], "private": True},
    )  # fmt: skip
    assert created.status_code == 200, created.text
    body = "\n".join(
        json.dumps(line)
        for line in (
            {"key": "header", "value": {"summary": "card", "description": ""}},
            {"key": "file", "value": {"path": "README.md", "content": base64.b64encode(CARD).decode(), "encoding": "base64"}},
        )
    )
    answer = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main", headers={**headers, "Content-Type": "application/x-ndjson"},
        content=body,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_every_listing_shows_a_private_repo_to_the_same_callers(server: LiveServer) -> None:
    owner = server.account("visowner")
    member = server.account("vismember")
    admin = server.account("visadmin", admin=True)
    outsider = server.account("visoutsider")
    org = server.unique("visorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "read")
    repo_id = f"{org}/hidden-classifier"
    _commit_card(server, owner.write_token, repo_id)

    def sees(token: str | None) -> dict[str, bool]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        info = httpx.get(f"{server.url}/api/models/{repo_id}", headers=headers)
        listed = httpx.get(f"{server.url}/api/models", params={"author": org}, headers=headers).json()
        searched = httpx.get(f"{server.url}/api/models", params={"search": "hidden-classifier"}, headers=headers).json()
        served = httpx.get(f"{server.url}/v1/models", headers=headers)
        assert served.status_code == 200, served.text
        return {
            "info": info.status_code == 200,
            "listing": any(m["id"] == repo_id for m in listed),
            "search": any(m["id"] == repo_id for m in searched),
            "/v1/models": any(m["id"] == repo_id for m in served.json()["data"]),
        }

    everywhere = {"info": True, "listing": True, "search": True, "/v1/models": True}
    nowhere = dict.fromkeys(everywhere, False)
    assert sees(owner.read_token) == everywhere
    assert sees(member.read_token) == everywhere
    assert sees(admin.read_token) == everywhere
    assert sees(outsider.read_token) == nowhere
    assert sees(None) == nowhere
