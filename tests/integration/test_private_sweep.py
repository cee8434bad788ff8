"""The private-repo sweep: every route that names a repo, read or written by every caller who may not see
the repo, answers exactly as it does for a repo that does not exist; org members get what their role allows.

The routes come from the app itself (API, git and web pages alike), so a route added later is swept too;
a route whose path holds a parameter the sweep cannot fill fails the test until it is taught the value.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from seed import SeededRepo, auth, seed_repo
from support import Account, LiveServer, web_session

pytestmark = pytest.mark.slow

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


@functools.cache
def app_routes() -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """(template, methods, query parameter names) of every route of the app, as FastAPI routes them."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from hubstead.app import create_app
    from hubstead.config import load_settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(load_settings(data_dir=tempfile.mkdtemp(prefix="hubstead-routes-")))
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not context.methods:
            continue
        query = frozenset(p.alias for p in route.dependant.query_params) if isinstance(route, APIRoute) else frozenset()
        found.append((context.path, frozenset(context.methods), query))
    return tuple(found)


def _web_views() -> list[str]:
    from hubstead.web.routes_repo import _VIEWS

    return sorted(_VIEWS)


def _serves(template: str, repo_type: str) -> bool:
    """Whether routes of this template serve repos of this type (they are split by URL prefix)."""
    if template.startswith("/api/{plural"):
        return True
    if template.startswith(("/api/buckets/", "/buckets/")):
        return False  # buckets are not repos: their privacy is proven in test_buckets
    if template.startswith(("/datasets/", "/api/datasets/")):
        return repo_type == "dataset"
    if template.startswith(("/spaces/", "/api/spaces/")):
        return repo_type == "space"
    if template.startswith(("/{ns}/", "/models/")):
        return repo_type == "model"
    raise AssertionError(f"the sweep does not know which repos {template} serves: teach _serves")


def _rest(template: str, method: str, view: str | None, repo: SeededRepo) -> str:
    """A value for ``{rest}`` that names something the repo has (or, for writes, something harmless)."""
    word = template.split("/{rest")[0].rsplit("/", 1)[-1]
    if word == "{view}":
        word = view or ""
    by_word = {
        "resolve": f"main/{repo.lfs_path}", "tree": "main/folder", "blob": "main/README.md", "commit": repo.commit,
        "branch": "dev" if method == "DELETE" else "sweep-branch", "tag": "v1" if method == "DELETE" else "main",
        "viewer": "default/train", "use": "main", "{feature}": "1",
    }  # fmt: skip
    return by_word.get(word, "main")


def _fill(template: str, method: str, repo: SeededRepo, repo_id: str) -> Iterator[str]:
    """The URL paths this template gives for ``repo_id`` (one per web view for ``{view}``)."""
    ns, name = repo_id.split("/")
    views = _web_views() if "{view}" in template else [None]
    for view in views:
        values: dict[str, str] = {"plural": repo.plural, "ns": ns, "namespace": ns, "name": name, "mode": "write",
                                  "feature": "discussions", "revision": "main", "task": "feature-extraction",
                                  "config": "default", "split": "train", "filename": "0000.parquet",
                                  "num": str(repo.pr_num), "comment_id": repo.comment_id, "status": "pending",
                                  "kind": "run", "path": ""}  # fmt: skip
        if view is not None:
            values["view"] = view
        values["rest"] = _rest(template, method, view, repo)

        def one(match: re.Match[str], values: dict[str, str] = values) -> str:
            key = match.group(1)
            assert key in values, f"the sweep has no value for {{{key}}} in {template}: teach _fill"
            return values[key]

        yield _PARAM.sub(one, template)


_DATASET_QUERY = {"config": "default", "split": "train", "offset": "0", "length": "1", "query": "hello",
                  "where": "label = 1", "column": "label"}  # fmt: skip


def _body(template: str, method: str, repo: SeededRepo) -> dict[str, Any]:
    """A harmless body for a write (httpx keyword arguments)."""
    if method in ("GET", "HEAD", "DELETE"):
        return {}
    if template.endswith("/commit/{rest:path}"):
        line = {"key": "header", "value": {"summary": "sweep", "description": ""}}
        deleted = {"key": "deletedFile", "value": {"path": "folder/notes.txt"}}
        return {"content": f"{json.dumps(line)}\n{json.dumps(deleted)}\n".encode(),
                "headers": {"content-type": "application/x-ndjson"}}  # fmt: skip
    if template.endswith("/lfs/objects/batch"):
        obj = {"oid": repo.lfs_oid, "size": repo.lfs_size}
        return {"json": {"operation": "download", "transfers": ["basic"], "objects": [obj]}}
    if template.endswith("/lfs/objects/verify"):
        return {"json": {"oid": repo.lfs_oid, "size": repo.lfs_size}}
    if template.endswith("/settings") and template.startswith("/api/"):
        return {"json": {"private": True}}
    if template.endswith("/settings"):
        return {"data": {"visibility": "private"}}
    if template.endswith("/tag/{rest:path}"):
        return {"json": {"tag": "sweep-tag"}}
    if template.endswith("/preupload/{rest:path}"):
        return {"json": {"files": [{"path": "a.txt", "size": 1, "sample": "YQ=="}]}}
    if template.endswith("/paths-info/{rest:path}"):
        return {"json": {"paths": ["README.md", repo.lfs_path]}}
    if "/upload/" in template:
        return {"data": {"summary": "sweep"}, "files": {"files": ("sweep.txt", b"x")}}
    if "/edit/" in template:
        return {"data": {"content": "# sweep\n", "summary": "sweep"}}
    if template.startswith("/models/") or template.endswith("/embeddings"):
        return {"json": {"inputs": "hello", "input": "hello", "messages": [{"role": "user", "content": "hi"}]}}
    return {"json": {}}


@dataclass
class Case:
    method: str
    template: str
    path: str  # for the private repo
    twin: str  # the same for a repo that does not exist
    kwargs: dict[str, Any] = field(default_factory=dict)


def cases_for(repo: SeededRepo, twin_id: str, *, writes: bool = True) -> list[Case]:
    """Every (method, URL) of the app that names ``repo``, with the same for a missing twin."""
    cases = []
    for template, methods, query in app_routes():
        params = set(_PARAM.findall(template))
        names_repo = bool(params & {"ns", "namespace"}) and "name" in params
        takes_dataset = "dataset" in query
        if not (names_repo or takes_dataset) or (names_repo and not _serves(template, repo.repo_type)):
            continue
        if takes_dataset and repo.repo_type != "dataset":
            continue
        for method in sorted(methods):
            if not writes and method not in ("GET", "HEAD"):
                continue
            kwargs = _body(template, method, repo)
            if takes_dataset:
                cases.append(Case(method, template, f"{template}?dataset={repo.repo_id}", f"{template}?dataset={twin_id}",
                                  {**kwargs, "params": _DATASET_QUERY}))  # fmt: skip
                continue
            if template.endswith("/info/refs"):
                kwargs = {"params": {"service": "git-upload-pack"}}
            for path, twin in zip(_fill(template, method, repo, repo.repo_id), _fill(template, method, repo, twin_id),
                                  strict=True):  # fmt: skip
                cases.append(Case(method, template, path, twin, kwargs))
    return cases


@dataclass
class Caller:
    name: str
    client: httpx.Client
    headers: dict[str, str] = field(default_factory=dict)


def _signed_in(server: LiveServer, name: str, password: str) -> tuple[httpx.Client, dict[str, str]]:
    """A browser-like client signed in to the web pages, and the CSRF header its pages carry."""
    client, csrf = web_session(server, name, password)
    return client, {"x-csrf-token": csrf}


def _account_with_password(server: LiveServer, prefix: str) -> tuple[Account, str]:
    password = uuid.uuid4().hex
    return server.account(prefix, password=password), password


def _normalized(answer: httpx.Response, repo_id: str, twin_id: str) -> tuple[object, ...]:
    """What an answer says, with the repo's and the twin's names made alike."""

    def same(text: str) -> str:
        for ident in (twin_id, repo_id):
            text = text.replace(ident, "<repo>").replace(ident.replace("/", "%2F"), "<repo>")
        for part in (twin_id.split("/")[1], repo_id.split("/")[1]):
            text = re.sub(rf"\b{re.escape(part)}\b", "<name>", text)
        return text

    error = None
    if answer.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        error = same(json.dumps(payload, sort_keys=True)) if isinstance(payload, dict) and "error" in payload else None
    return (answer.status_code, answer.headers.get("x-error-code"), same(answer.headers.get("x-error-message", "")),
            error, same(answer.headers.get("location", "")))  # fmt: skip


def _sweep(callers: list[Caller], repo: SeededRepo, twin_id: str, secret: str) -> tuple[int, list[str]]:
    leaks = []
    count = 0
    for case in cases_for(repo, twin_id):
        for caller in callers:
            kwargs = dict(case.kwargs)
            kwargs["headers"] = {**caller.headers, **kwargs.get("headers", {})}
            real = caller.client.request(case.method, case.path, **kwargs)
            missing = caller.client.request(case.method, case.twin, **kwargs)
            count += 1
            seen, expected = _normalized(real, repo.repo_id, twin_id), _normalized(missing, repo.repo_id, twin_id)
            where = f"{caller.name}: {case.method} {case.path}"
            if seen != expected:
                leaks.append(f"{where} answered {seen}, a missing repo {expected}")
            elif 200 <= real.status_code < 300:
                leaks.append(f"{where} answered {real.status_code} (and so does a missing repo)")
            blob, twin_blob = (answer.text + json.dumps(dict(answer.headers)) for answer in (real, missing))
            if secret in blob or (repo.commit in blob and repo.commit not in twin_blob):
                leaks.append(f"{where} answered {real.status_code} with the repo's content or commit id")
    return count, leaks


def _org(server: LiveServer, owner: Account, prefix: str) -> str:
    org = server.unique(prefix)
    server.cli("orgs", "create", org, "--owner", owner.name)
    return org


def test_private_repos_are_invisible_to_everyone_who_may_not_read_them(server: LiveServer) -> None:
    """Issue 16, proof: "the private-repo sweep (every endpoint x anonymous, other user, read and write
    tokens, org roles) kept as a test". A private model, dataset and space (an LFS file, a branch, a tag),
    and a private repo of an organization: for anonymous callers, another user's read and write tokens and
    web session, and a member (read role) of a different organization, every route that names the repo
    (API, git smart HTTP, web pages; reads and harmless writes) answers exactly as for a repo that does not
    exist, never 2xx, never the repo's content or commit id."""
    secret = f"SECRET-{uuid.uuid4().hex}"
    owner = server.account("sweepowner")
    other, password = _account_with_password(server, "sweepother")
    stranger = server.account("sweepstranger")
    other_org = _org(server, stranger, "sweepelsewhere")
    reader_elsewhere = server.account("sweepelsewhere")
    server.cli("orgs", "add-member", other_org, reader_elsewhere.name, "--role", "read")
    org = _org(server, owner, "sweeporg")

    repos = [seed_repo(server, owner.write_token, f"{owner.name}/{kind}", kind, private=True, secret=secret)
             for kind in ("model", "dataset", "space")]  # fmt: skip
    repos.append(seed_repo(server, owner.write_token, f"{org}/orgmodel", "model", private=True, secret=secret))

    web, csrf = _signed_in(server, other.name, password)
    plain = httpx.Client(base_url=server.url, timeout=60)
    callers = [
        Caller("anonymous", plain),
        Caller("other user, read token", plain, auth(other.read_token)),
        Caller("other user, write token", plain, auth(other.write_token)),
        Caller("other user, web session", web, csrf),
        Caller("read member of another org", plain, auth(reader_elsewhere.write_token)),
    ]
    total, leaks, per_repo = 0, [], {}
    for repo in repos:
        count, found = _sweep(callers, repo, f"{repo.repo_id.split('/')[0]}/{repo.repo_id.split('/')[1]}-gone", secret)
        per_repo[repo.repo_id] = count
        total += count
        leaks += found
    print(f"private sweep ({server.backend}): {total} route x caller cases, per repo {per_repo}")
    assert not leaks, f"{len(leaks)} of {total} cases tell a private repo from a missing one:\n" + "\n".join(leaks)
    assert total > 600


def _reads(server: LiveServer, repo: SeededRepo, token: str | None) -> dict[str, int]:
    headers = auth(token)
    base = f"{server.url}/api/{repo.plural}/{repo.repo_id}"
    urls = {
        "info": base, "refs": f"{base}/refs", "tree": f"{base}/tree/main", "commits": f"{base}/commits/main",
        "resolve": f"{server.url}/{repo.prefix}/resolve/main/{repo.lfs_path}",
        "git": f"{server.url}/{repo.prefix}.git/info/refs?service=git-upload-pack",
    }  # fmt: skip
    return {key: httpx.get(url, headers=headers, timeout=60).status_code for key, url in urls.items()}


def test_org_members_get_what_their_role_allows(server: LiveServer) -> None:
    """Issue 16, proof (org roles): on an organization's private repo, members with the read role can read
    every part of it but not write; the write role writes; only the admin role changes settings. The owner
    of a private user repo reads everything the sweep hides from others (so the sweep compares real cases)."""
    owner = server.account("roleowner")
    org = _org(server, owner, "roleorg")
    members = {role: server.account(f"role{role}") for role in ("read", "write", "admin")}
    for role, account in members.items():
        server.cli("orgs", "add-member", org, account.name, "--role", role)
    repo = seed_repo(server, owner.write_token, f"{org}/private", "model", private=True)
    mine = seed_repo(server, owner.write_token, f"{owner.name}/mine", "dataset", private=True)
    assert set(_reads(server, mine, owner.read_token).values()) == {200}

    base = f"{server.url}/api/{repo.plural}/{repo.repo_id}"
    for role, account in members.items():
        assert set(_reads(server, repo, account.read_token).values()) == {200}, role
        branch = httpx.post(f"{base}/branch/by-{role}", json={}, headers=auth(account.write_token), timeout=60)
        assert branch.status_code == (403 if role == "read" else 200), (role, branch.text)
        settings = httpx.put(f"{base}/settings", json={"private": True}, headers=auth(account.write_token), timeout=60)
        assert settings.status_code == (200 if role == "admin" else 403), (role, settings.text)
        with_read_token = httpx.post(f"{base}/branch/r-{role}", json={}, headers=auth(account.read_token), timeout=60)
        assert with_read_token.status_code == 403, (role, with_read_token.text)
