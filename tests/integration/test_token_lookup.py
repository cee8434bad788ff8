"""The token lookup (``principal_for_token``) reads the caller afresh on every request: a change another process
makes to the database (a token deleted, a user made non-admin, a membership removed) is seen by the server's
very next request. The changes here are written by this test process straight to the database, as another API
process or the CLI would: the server learns of them only through the database."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import delete, select, update

from hubstead.auth.models import Membership, Token, User
from hubstead.auth.service import hash_token
from hubstead.config import load_settings
from hubstead.db import Database
from support import LiveServer


def _status(server: LiveServer, repo: str, token: str) -> int:
    return httpx.get(f"{server.url}/api/models/{repo}", headers={"authorization": f"Bearer {token}"}, timeout=30).status_code


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_revocations_from_another_process_are_seen_at_once(server: LiveServer) -> None:
    owner = server.account("tokowner")
    member = server.account("tokmember")
    admin = server.account("tokadmin", admin=True)
    org = server.unique("tokorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, member.name, "--role", "read")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    private_org_repo = f"{org}/secret"
    private_own_repo = f"{owner.name}/mine"
    api.create_repo(private_org_repo, private=True)
    api.create_repo(private_own_repo, private=True)

    assert _status(server, private_org_repo, member.read_token) == 200
    assert _status(server, private_own_repo, admin.write_token) == 200  # an admin's write token reads all
    assert _status(server, private_own_repo, owner.read_token) == 200

    db = Database(load_settings(data_dir=server.data_dir, database_url=server.database_url).database_url)
    try:
        with db.session() as s:
            member_id = s.scalars(select(User.id).where(User.name_key == member.name.lower())).one()
            s.execute(delete(Membership).where(Membership.user_id == member_id))
            s.execute(update(User).where(User.name_key == admin.name.lower()).values(is_admin=False))
            s.execute(delete(Token).where(Token.token_hash == hash_token(owner.read_token)))
    finally:
        db.engine.dispose()

    assert _status(server, private_org_repo, member.read_token) == 404  # no longer a member: not even listed
    assert _status(server, private_own_repo, admin.write_token) == 404  # no longer an admin
    assert _status(server, private_own_repo, owner.read_token) == 401  # the revoked token is unknown
    assert _status(server, private_own_repo, owner.write_token) == 200  # the owner's other token still works

