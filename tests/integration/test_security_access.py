"""Issue 16, access and ref names: gated means gated on every page that shows file content, ref names that
look like commit ids are refused (and a full sha resolves to the commit), the web edit and upload routes
validate branch names like the API, overlong revisions are a clear 4xx, org roles are shown to members
only, and a card's HTML loses ``id``, ``class`` and ``<input>``.

Every test goes through HTTP against the live server, with a browser session cookie where a page needs one.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pygit2
import pytest

from seed import auth, commit, create_repo, inline_file
from support import Account, LiveServer, web_session

CARD_TEXT = "card-visible-words"
BLOB_SECRET = "blob-secret-words"
CELL_SECRET = "zebracellvalue"


def _account_with_password(server: LiveServer, prefix: str) -> tuple[Account, str]:
    password = uuid.uuid4().hex
    return server.account(prefix, password=password), password


def _browser(server: LiveServer, name: str, password: str) -> tuple[httpx.Client, str]:
    """A client signed in to the web pages (session cookie) and its session's CSRF token."""
    return web_session(server, name, password)


def _gated_dataset(server: LiveServer, owner: Account, mode: str) -> tuple[str, str]:
    """A gated dataset with a card, a text file and a CSV; (repo id, head commit)."""
    repo_id = f"{owner.name}/{server.unique('gated')}"
    create_repo(server, owner.write_token, repo_id, "dataset", private=False)
    card = f"---\nlicense: mit\n---\n# Gated\n\n{CARD_TEXT}\n".encode()
    head = commit(server, owner.write_token, "datasets", repo_id, [
        inline_file("README.md", card),
        inline_file("notes.txt", f"{BLOB_SECRET}\n".encode()),
        inline_file("guide.md", f"# Guide\n\n{BLOB_SECRET}\n".encode()),
        inline_file("data/train.csv", f"text,label\n{CELL_SECRET},1\nworld,0\n".encode()),
    ])  # fmt: skip
    answer = httpx.put(
        f"{server.url}/api/datasets/{repo_id}/settings", json={"gated": mode}, headers=auth(owner.write_token)
    )
    assert answer.status_code == 200, answer.text
    return repo_id, head


def _content_pages(repo_id: str, head: str) -> dict[str, str]:
    base = f"/datasets/{repo_id}"
    return {
        "blob": f"{base}/blob/main/notes.txt",
        "blob markdown": f"{base}/blob/main/guide.md",
        "blob at commit": f"{base}/blob/{head}/notes.txt",
        "commit diff": f"{base}/commit/{head}",
        "viewer": f"{base}/viewer",
        "viewer (htmx)": f"{base}/viewer?config=default&split=train",
        "card page": base,
    }


def _wait_for_rows(client: httpx.Client, repo_id: str) -> None:
    """The owner's viewer shows the CSV's rows once the conversion has run."""
    deadline = time.time() + 120
    while time.time() < deadline:
        if CELL_SECRET in client.get(f"/datasets/{repo_id}/viewer").text:
            return
        time.sleep(0.5)
    raise AssertionError("the dataset's conversion did not finish within 120 s")


def test_gated_pages_show_no_file_content_without_access(server: LiveServer) -> None:
    """Finding (gated repos): the web blob page, the commit/diff page and the dataset viewer page (alone
    and on the card page) served a gated repo's content to anonymous users and to users without accepted
    access. They now show the request-access message instead; the card itself stays visible, as on the Hub;
    the owner and, after the request is accepted, the requester see the content."""
    owner, owner_password = _account_with_password(server, "gateowner")
    stranger, stranger_password = _account_with_password(server, "gatestranger")
    repo_id, head = _gated_dataset(server, owner, "auto")
    owner_web, _ = _browser(server, owner.name, owner_password)
    _wait_for_rows(owner_web, repo_id)
    stranger_web, stranger_csrf = _browser(server, stranger.name, stranger_password)
    anonymous = httpx.Client(base_url=server.url, timeout=60)
    pages = _content_pages(repo_id, head)

    for who, client in (("anonymous", anonymous), ("signed-in stranger", stranger_web)):
        for what, url in pages.items():
            answer = client.get(url)
            assert answer.status_code in (200, 403), (who, what, answer.status_code, answer.text[:500])
            assert BLOB_SECRET not in answer.text, (who, what)
            assert CELL_SECRET not in answer.text, (who, what)
            if what != "viewer (htmx)":
                assert "request access" in answer.text.lower() or "log in" in answer.text.lower(), (who, what)
        # The card and the list of files stay visible, as on the Hub.
        assert CARD_TEXT in client.get(pages["card page"]).text, who
        assert "notes.txt" in client.get(f"/datasets/{repo_id}/tree/main").text, who
        # The file routes refuse too (they already did: one check for all of them).
        assert client.get(f"/datasets/{repo_id}/resolve/main/notes.txt").status_code == 403, who

    for what, url in pages.items():
        text = owner_web.get(url).text
        expected = CELL_SECRET if what.startswith("viewer") or what == "card page" else BLOB_SECRET
        assert expected in text, ("owner", what)

    # The stranger asks for access from the page (automatic approval) and then sees the content.
    asked = stranger_web.post(f"/datasets/{repo_id}/ask-access", data={"csrf_token": stranger_csrf})
    assert asked.status_code in (302, 303), asked.text[:1000]
    assert BLOB_SECRET in stranger_web.get(pages["blob"]).text
    assert CELL_SECRET in stranger_web.get(pages["viewer"]).text
    # Without the CSRF token the request is refused.
    other, other_password = _account_with_password(server, "gateother")
    other_web, _ = _browser(server, other.name, other_password)
    assert other_web.post(f"/datasets/{repo_id}/ask-access", data={}).status_code == 403
    assert BLOB_SECRET not in other_web.get(pages["blob"]).text


def test_manual_gate_keeps_pending_requests_out(server: LiveServer) -> None:
    """Finding (gated repos): with manual approval a pending request gives no content on the pages."""
    owner, _ = _account_with_password(server, "manualowner")
    stranger, stranger_password = _account_with_password(server, "manualstranger")
    repo_id, head = _gated_dataset(server, owner, "manual")
    web, csrf = _browser(server, stranger.name, stranger_password)
    asked = web.post(f"/datasets/{repo_id}/ask-access", data={"csrf_token": csrf})
    assert asked.status_code in (302, 303)
    blob = web.get(f"/datasets/{repo_id}/blob/main/notes.txt")
    assert BLOB_SECRET not in blob.text
    assert "pending" in blob.text.lower()
    assert BLOB_SECRET not in web.get(f"/datasets/{repo_id}/commit/{head}").text


def _storage_of(server: LiveServer, sha: str) -> Path:
    """The bare git directory that holds commit ``sha`` (tests only: to plant a ref as an old hub allowed)."""
    for path in (server.data_dir / "repos").glob("*/*.git"):
        if pygit2.Repository(str(path)).get(sha) is not None:
            return path
    raise AssertionError(f"no repo holds {sha}")


def test_ref_names_that_look_like_commit_ids_are_refused(server: LiveServer) -> None:
    """Finding (ref names): a branch or tag named like a commit sha shadowed the commit, so a download
    pinned to a sha could be redirected by anyone with write access. Such names are refused (full and short
    ids, any case), and a full sha resolves to the commit even where an old ref of that name exists."""
    owner = server.account("refowner")
    repo_id = f"{owner.name}/{server.unique('refs')}"
    create_repo(server, owner.write_token, repo_id, "model", private=False)
    first = commit(server, owner.write_token, "models", repo_id, [inline_file("weights.txt", b"genuine")])
    second = commit(server, owner.write_token, "models", repo_id, [inline_file("weights.txt", b"malicious")])
    headers = auth(owner.write_token)
    for name in (first, first[:7], first[:12], "deadbeef", "DEADBEEF", "a" * 64, "HEAD", "FETCH_HEAD"):
        branch = httpx.post(f"{server.url}/api/models/{repo_id}/branch/{name}", json={}, headers=headers)
        assert branch.status_code == 400, (name, branch.status_code, branch.text)
        assert "commit" in branch.json()["error"].lower() or "reserved" in branch.json()["error"].lower(), name
        tag = httpx.post(f"{server.url}/api/models/{repo_id}/tag/main", json={"tag": name}, headers=headers)
        assert tag.status_code == 400, (name, tag.status_code, tag.text)
    refs = httpx.get(f"{server.url}/api/models/{repo_id}/refs", headers=headers).json()
    assert [b["name"] for b in refs["branches"]] == ["main"] and refs["tags"] == []
    # Names that merely contain hex, or are too short to be an id, are fine.
    for name in ("release-deadbeef", "abc123", "v1.0"):
        answer = httpx.post(f"{server.url}/api/models/{repo_id}/branch/{name}", json={}, headers=headers)
        assert answer.status_code == 200, (name, answer.text)

    # A ref planted before this rule existed (as the old hub allowed) does not shadow a full sha.
    git = pygit2.Repository(str(_storage_of(server, first)))
    git.references.create(f"refs/heads/{first}", pygit2.Oid(hex=second))
    git.references.create(f"refs/tags/{first}", pygit2.Oid(hex=second))
    pinned = httpx.get(f"{server.url}/{repo_id}/resolve/{first}/weights.txt")
    assert pinned.status_code == 200 and pinned.content == b"genuine", pinned.content
    assert pinned.headers["x-repo-commit"] == first
    info = httpx.get(f"{server.url}/api/models/{repo_id}/revision/{first}").json()
    assert info["sha"] == first


WEB_BAD_BRANCHES = ["-x", "FETCH_HEAD", "deadbeef", "x.lock", "a..b", "a b", "a~1", "a:b", ".hidden", "@"]


def test_web_edit_and_upload_refuse_bad_branch_names(server: LiveServer) -> None:
    """Finding (web branch names): the README editor and the upload form created branches named ``-x``,
    ``FETCH_HEAD`` or ``deadbeef`` and answered 500 for ``x.lock``, ``a..b`` and ``a b``. They now apply the
    API's ref-name rule and answer 400 in words, creating nothing."""
    owner, password = _account_with_password(server, "webrefs")
    repo_id = f"{owner.name}/{server.unique('webrefs')}"
    create_repo(server, owner.write_token, repo_id, "model", private=False)
    web, csrf = _browser(server, owner.name, password)
    for branch in WEB_BAD_BRANCHES:
        edit = web.post(
            f"/{repo_id}/edit/{quote(branch)}/README.md", data={"content": "# hi\n", "message": "m", "csrf_token": csrf}
        )
        assert edit.status_code == 400, (branch, edit.status_code, edit.text[:300])
        assert "branch" in edit.text.lower(), branch
        upload = web.post(
            f"/{repo_id}/upload/{quote(branch)}",
            data={"csrf_token": csrf, "message": "m"},
            files={"files": ("a.txt", b"a")},
        )
        assert upload.status_code == 400, (branch, upload.status_code, upload.text[:300])
    refs = httpx.get(f"{server.url}/api/models/{repo_id}/refs").json()
    assert [b["name"] for b in refs["branches"]] == ["main"]
    # A good new branch still works from both forms.
    assert web.post(f"/{repo_id}/edit/docs/README.md", data={"content": "# d\n", "csrf_token": csrf}).status_code == 303
    up = web.post(f"/{repo_id}/upload/uploads", data={"csrf_token": csrf}, files={"files": ("a.txt", b"a")})
    assert up.status_code == 303
    refs = httpx.get(f"{server.url}/api/models/{repo_id}/refs").json()
    assert sorted(b["name"] for b in refs["branches"]) == ["docs", "main", "uploads"]


def test_overlong_revision_is_a_clear_4xx(server: LiveServer) -> None:
    """Finding (500s): a 3000-character revision gave a 500 (ValueError) in resolve. Every route that takes
    a revision now answers 400 or 404 RevisionNotFound with a valid error header; ``preupload``, which
    accepts a branch the commit will create, refuses a name no branch may have."""
    owner, password = _account_with_password(server, "longrev")
    repo_id = f"{owner.name}/{server.unique('longrev')}"
    create_repo(server, owner.write_token, repo_id, "model", private=False)
    web, _ = _browser(server, owner.name, password)
    headers = auth(owner.write_token)
    for revision in ("a" * 3000, "a/" * 1500 + "b", "é" * 1200, "%00abc", "x" * 300):
        calls = [
            ("GET", f"/{repo_id}/resolve/{revision}/README.md"),
            ("HEAD", f"/{repo_id}/resolve/{revision}/README.md"),
            ("GET", f"/api/models/{repo_id}/revision/{revision}"),
            ("GET", f"/api/models/{repo_id}/tree/{revision}"),
            ("GET", f"/api/models/{repo_id}/commits/{revision}"),
            ("POST", f"/api/models/{repo_id}/paths-info/{revision}"),
            ("POST", f"/api/models/{repo_id}/preupload/{revision}"),
            ("POST", f"/api/models/{repo_id}/commit/{revision}"),
            ("POST", f"/api/models/{repo_id}/tag/{revision}"),
            ("POST", f"/api/models/{repo_id}/branch/{revision}"),
            ("GET", f"/{repo_id}/tree/{revision}"),
            ("GET", f"/{repo_id}/blob/{revision}/README.md"),
            ("GET", f"/{repo_id}/commits/{revision}"),
            ("GET", f"/{repo_id}/commit/{revision}"),
            ("GET", f"/{repo_id}/edit/{revision}/README.md"),
        ]
        for method, url in calls:
            body: dict[str, object] = {"json": {"tag": "t", "files": [], "paths": []}} if method == "POST" else {}
            if url.endswith(f"/commit/{revision}"):
                body = {"content": b'{"key": "header", "value": {"summary": "s"}}\n'}
            client = web if not url.startswith("/api/") else httpx.Client(base_url=server.url, headers=headers)
            answer = client.request(method, url, timeout=60, **body)  # type: ignore[arg-type]
            assert 400 <= answer.status_code < 500, (revision[:10], method, url[:80], answer.status_code)
            if url.startswith("/api/") or "/resolve/" in url:
                assert answer.headers.get("x-error-code") in ("RevisionNotFound", "BadRequest", None), url[:80]


def test_org_roles_are_shown_to_members_only(server: LiveServer) -> None:
    """Finding (org pages): an org's page showed each member's role to anonymous visitors. Roles are shown
    to the org's members (and site admins) only; the member list itself stays public, as on the Hub."""
    owner, owner_password = _account_with_password(server, "orgowner")
    member = server.account("orgmember")
    outsider, outsider_password = _account_with_password(server, "orgoutsider")
    org = server.unique("roleorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "write")
    role_badge = re.compile(r'class="badge">(admin|write|read)<')

    anonymous = httpx.get(f"{server.url}/{org}")
    assert anonymous.status_code == 200 and member.name in anonymous.text
    assert not role_badge.search(anonymous.text), anonymous.text
    outsider_web, _ = _browser(server, outsider.name, outsider_password)
    assert not role_badge.search(outsider_web.get(f"/{org}").text)
    owner_web, _ = _browser(server, owner.name, owner_password)
    assert sorted(role_badge.findall(owner_web.get(f"/{org}").text)) == ["admin", "write"]


HOSTILE_CARD = """---
license: mit
---
# Hostile

<div id="csrf_token" class="button danger">clobber</div>
<form action="/login" method="post"><input type="password" name="password"><input type="submit" value="Sign in"></form>
<a id="like" class="chip" href="https://example.com">spoof</a>
<span class="k">fake pygments</span>
<img src="x.png" id="logo" class="avatar" alt="pic">

```python
def real(): return 1
```
"""


@pytest.mark.parametrize("where", ["card page", "blob page"])
def test_card_html_drops_id_class_and_input(server: LiveServer, where: str) -> None:
    """Finding (card sanitiser): card HTML kept ``id`` (id clobbering), ``class`` (spoofed page elements)
    and ``<input>`` (spoofed forms). They are dropped; the highlighted code blocks we render ourselves keep
    Pygments' classes."""
    owner = server.account("hostilecard")
    repo_id = f"{owner.name}/{server.unique('hostile')}"
    create_repo(server, owner.write_token, repo_id, "model", private=False)
    commit(server, owner.write_token, "models", repo_id, [inline_file("README.md", HOSTILE_CARD.encode())])
    url = f"{server.url}/{repo_id}" if where == "card page" else f"{server.url}/{repo_id}/blob/main/README.md"
    page = httpx.get(url).text
    start = page.index('class="card-body markdown">' if where == "card page" else 'class="fileview markdown">')
    card = page[start : page.index("</article>" if where == "card page" else "</main>", start)]
    assert "clobber" in card and "spoof" in card and "fake pygments" in card
    for bad in ('id="csrf_token"', 'id="like"', 'id="logo"', "button danger", 'class="chip"', 'class="avatar"',
                '<span class="k">fake', "<input", 'type="password"'):  # fmt: skip
        assert bad not in card, bad
    # Our own highlighting of the code block keeps its classes.
    assert '<div class="highlight">' in card and '<span class="k">def</span>' in card
