"""The audit log (issue 23): what people do through the real clients (huggingface_hub, the CLI, the web pages)
appears with its actor and time; site admins read all of it, an org's admins only their org's; a refused
operation records nothing; token values never appear."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from support import LiveServer, web_session

PASSWORD = "audit-password-1"


def _events(server: LiveServer, token: str | None, path: str, **params: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _status(server: LiveServer, token: str | None, path: str) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=30).status_code


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_audit_log_records_who_did_what_and_shows_it_to_admins(server: LiveServer) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    admin = server.account("auditadmin", admin=True, password=PASSWORD)
    owner = server.account("auditowner", password=PASSWORD)
    member = server.account("auditmember")
    org = server.unique("auditorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "read")
    server.cli("orgs", "add-member", org, member.name, "--role", "write")  # a role change, by the CLI (system)

    api = HfApi(endpoint=server.url, token=owner.write_token)
    theirs = HfApi(endpoint=server.url, token=member.write_token)
    repo_id, moved_id = f"{org}/audited", f"{org}/audited-renamed"
    api.create_repo(repo_id)
    with pytest.raises(HfHubHTTPError):
        api.create_repo(repo_id)  # 409: exists
    api.update_repo_settings(repo_id, private=True)
    bad = httpx.put(f"{server.url}/api/models/{repo_id}/settings", json={"private": False, "gated": "bogus"},
                    headers={"Authorization": f"Bearer {owner.write_token}"})  # fmt: skip
    assert bad.status_code == 400  # and the private=False half is not kept, nor recorded
    api.update_repo_settings(repo_id, gated="manual")
    info = api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"audited\n")], commit_message="notes",
                             create_pr=True)  # fmt: skip
    assert info.pr_num is not None
    with pytest.raises(HfHubHTTPError) as refused:
        HfApi(endpoint=server.url, token=member.read_token).merge_pull_request(repo_id, info.pr_num)
    assert refused.value.response.status_code in (401, 403)
    api.merge_pull_request(repo_id, info.pr_num)
    with pytest.raises(HfHubHTTPError):
        theirs.delete_repo(repo_id)  # 403: writers may not delete
    api.move_repo(repo_id, moved_id)
    api.delete_repo(moved_id)

    browser, csrf = web_session(server, owner.name, PASSWORD)
    created = browser.post("/settings/tokens", data={"name": "audit-tok", "role": "read", "csrf_token": csrf})
    secret = re.search(r'<pre id="new-token">([^<]+)</pre>', created.text)
    assert secret, created.text[:2000]
    forms = dict(re.findall(r'/settings/tokens/(\d+)/revoke".*?aria-label="Revoke ([^"]*)"', created.text, re.S))
    token_id = next(number for number, name in forms.items() if name == "audit-tok")
    assert browser.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code in (200, 303)

    # The site admin reads every event, newest first, each with its actor and time.
    everything = _events(server, admin.read_token, "/api/admin/audit", since=started.isoformat(), limit="500")
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    mine = [e for e in everything if e["namespace"] in (org.lower(), owner.name.lower())]
    # (less each account's creation and its two unnamed CLI tokens, made before)
    seen = [(e["actor"], e["action"], e["target"]) for e in reversed(mine)
            if e["action"] != "user.create" and not (e["action"] == "token.create" and e["target"] == "")]  # fmt: skip
    expected = [
        (owner.name, "org.create", org),
        ("system", "org.member.add", member.name),
        ("system", "org.member.role", member.name),
        (owner.name, "repo.create", repo_id),
        (owner.name, "repo.visibility", repo_id),
        (owner.name, "repo.gating", repo_id),
        (owner.name, "pull.merge", f"{repo_id}#{info.pr_num}"),
        (owner.name, "repo.move", moved_id),
        (owner.name, "repo.delete", moved_id),
        (owner.name, "token.create", "audit-tok"),
        (owner.name, "token.revoke", "audit-tok"),
    ]
    assert seen == expected
    details = {e["action"]: e["detail"] for e in mine}
    assert details["repo.visibility"] == {"repoType": "model", "old": False, "new": True}
    assert details["repo.gating"] == {"repoType": "model", "old": False, "new": "manual"}
    assert details["org.member.role"] == {"old": "read", "new": "write"}
    assert details["repo.move"]["old"] == repo_id and details["repo.move"]["new"] == moved_id
    for event in mine:
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        assert started <= at <= datetime.now(UTC) + timedelta(seconds=5)
        assert event["actorId"] is None if event["actor"] == "system" else isinstance(event["actorId"], int)
    assert secret.group(1) not in httpx.get(f"{server.url}/api/admin/audit", params={"limit": "500"},
                                            headers={"Authorization": f"Bearer {admin.read_token}"}).text  # fmt: skip

    # Filters and pages.
    repo_events = _events(server, admin.read_token, "/api/admin/audit", namespace=org, action="repo")
    assert [e["action"] for e in repo_events] == ["repo.delete", "repo.move", "repo.gating", "repo.visibility",
                                                  "repo.create"]  # fmt: skip
    assert {e["actor"] for e in _events(server, admin.read_token, "/api/admin/audit", actor=member.name)} == {
        member.name}  # fmt: skip
    in_org = [e["id"] for e in everything if e["namespace"] == org.lower()]
    first = httpx.get(f"{server.url}/api/admin/audit", params={"namespace": org, "limit": "4"},
                      headers={"Authorization": f"Bearer {admin.read_token}"})  # fmt: skip
    next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["Link"])
    assert next_url
    second = httpx.get(next_url.group(1), headers={"Authorization": f"Bearer {admin.read_token}"})
    assert [e["id"] for e in first.json()] == in_org[:4] and [e["id"] for e in second.json()] == in_org[4:8]

    # An org's admins read their org's events only; its other members, other users and visitors are refused.
    org_events = _events(server, owner.read_token, f"/api/organizations/{org}/audit")
    assert [e["id"] for e in org_events] == in_org and len(in_org) == 9
    assert _status(server, member.write_token, f"/api/organizations/{org}/audit") == 403
    assert _status(server, owner.write_token, "/api/admin/audit") == 403
    assert _status(server, None, "/api/admin/audit") == 401
    assert _status(server, None, f"/api/organizations/{org}/audit") == 401
    assert _status(server, admin.read_token, "/api/admin/audit?since=yesterday") == 400

    # The pages: a plain table for the site admin and for the org's admin.
    page = browser.get(f"/organizations/{org}/settings/audit")
    assert page.status_code == 200 and "pull.merge" in page.text and "token.create" not in page.text
    assert browser.get("/admin/audit").status_code == 404  # not revealed, as every /admin page
    admin_browser, _ = web_session(server, admin.name, PASSWORD)
    page = admin_browser.get("/admin/audit", params={"namespace": owner.name})
    assert page.status_code == 200 and "token.revoke" in page.text and "audit-tok" in page.text
