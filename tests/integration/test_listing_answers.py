"""Listings kept under the database's change stamp (``search.answers``) are never answered stale: each change a
listing shows (a new repo, a like, a repo made private, a membership removed, a token revoked, a change written by
another process straight to the database) is seen by the very next listing, however often it was asked before."""

from __future__ import annotations

import json

import httpx
from huggingface_hub import HfApi
from sqlalchemy import delete, select, update

from hubstead.auth.models import Membership, User
from hubstead.config import load_settings
from hubstead.db import Database
from hubstead.repos.models import Repo
from support import LiveServer


def _list(server: LiveServer, token: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/api/models", params=params, headers=headers, timeout=30)


def _ids(server: LiveServer, token: str | None, **params: str) -> list[str]:
    """The listing's ids, asked three times (so later answers come from what was kept): all three must agree."""
    answers = [_list(server, token, **params) for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    ids = [[item["id"] for item in answer.json()] for answer in answers]
    assert ids[0] == ids[1] == ids[2]
    return ids[0]


def test_listings_follow_every_change_at_once(server: LiveServer) -> None:
    owner = server.account("listowner")
    member = server.account("listmember")
    org = server.unique("listorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "read")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    mine = {"author": owner.name}

    assert _ids(server, None, **mine) == []
    api.create_repo(f"{owner.name}/a")
    assert _ids(server, None, **mine) == [f"{owner.name}/a"]
    api.create_repo(f"{owner.name}/b")
    assert sorted(_ids(server, member.read_token, **mine)) == [f"{owner.name}/a", f"{owner.name}/b"]

    # A like reorders a listing sorted by likes.
    assert httpx.post(f"{server.url}/api/models/{owner.name}/a/like",
                      headers={"authorization": f"Bearer {member.write_token}"}, timeout=30).status_code == 200  # fmt: skip
    by_likes = [item["likes"] for item in _list(server, None, sort="likes", direction="-1", **mine).json()]
    assert by_likes == [1, 0]

    # Private: gone for anonymous callers at once; an org member sees the org's private repo, until removed.
    api.update_repo_settings(f"{owner.name}/b", private=True)
    assert _ids(server, None, **mine) == [f"{owner.name}/a"]
    secret = f"{org}/secret"
    api.create_repo(secret, private=True)
    assert _ids(server, member.read_token, author=org) == [secret]
    assert _ids(server, None, author=org) == []

    # Changes written straight to the database by another process (as another API process, or the CLI would):
    # a membership removed, a count changed.
    db = Database(load_settings(data_dir=server.data_dir, database_url=server.database_url).database_url)
    try:
        with db.session() as session:
            member_id = session.scalars(select(User.id).where(User.name_key == member.name.lower())).one()
            session.execute(delete(Membership).where(Membership.user_id == member_id))
        assert _ids(server, member.read_token, author=org) == []
        with db.session() as session:
            session.execute(update(Repo).where(Repo.id_key == f"{owner.name}/a".lower()).values(likes=41))
        assert [item["likes"] for item in _list(server, None, **mine).json()] == [41]
    finally:
        db.engine.dispose()

    # A revoked token is refused on the next listing, though its answer was kept a moment ago.
    assert _list(server, member.read_token, **mine).status_code == 200
    tokens = json.loads(server.cli("tokens", "list", "--user", member.name, "--json").stdout)
    server.cli("tokens", "revoke", str(next(t["id"] for t in tokens if t["role"] == "read")))
    assert _list(server, member.read_token, **mine).status_code == 401

