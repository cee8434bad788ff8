"""``repos/quotas`` against a real database (the usage case on SQLite and PostgreSQL: case folding, booleans):
the usage rule (distinct objects per namespace and pool), the limits (override, site default by user/org, none),
and the words of the refusal."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from hubstead.auth.service import create_org, create_user
from hubstead.context import Hub
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.quotas import (
    QuotaExceededError,
    format_bytes,
    limit_for,
    needed_bytes,
    require_room,
    set_quota,
    usage,
    used_bytes,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_sizes_are_written_in_decimal_units_as_the_hub_writes_them() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1500, 9_500_000_000, 10**10, 1_200_000_000, 999_960)] == [
        "0 bytes", "999 bytes", "1 KB", "1.5 KB", "9.5 GB", "10 GB", "1.2 GB", "1 MB"
    ]  # fmt: skip


def test_only_objects_the_pool_lacks_are_needed() -> None:
    assert needed_bytes({A: 10, B: 5}, already={A}) == 5
    assert needed_bytes({A: 10}, already={A}, extra=7) == 7
    assert needed_bytes({}, already=set(), extra=-3) == 0


def _repo(session, namespace: str, name: str, *, private: bool, objects: dict[str, int]) -> Repo:  # type: ignore[no-untyped-def]
    repo = Repo(repo_type="model", namespace=namespace, name=name, id_key=f"{namespace}/{name}".lower(),
                storage_key=uuid.uuid4().hex, private=private)  # fmt: skip
    session.add(repo)
    session.flush()
    for oid, size in objects.items():
        session.add(RepoLfsObject(repo_pk=repo.pk, oid=oid, size=size))
    session.flush()
    return repo


def test_usage_limits_and_the_refusal(backend_hub: Hub) -> None:
    """Distinct oids per namespace and pool (a shared object counts once; public and private apart; another
    namespace's objects not at all); a NULL override falls back to the site default for users or orgs."""
    hub = dataclasses.replace(backend_hub, settings=dataclasses.replace(backend_hub.settings, quota_org_bytes=50))
    with hub.db.session() as s:
        alice = create_user(s, name="Alice")
        create_org(s, name="Acme", owner=alice)
        public = _repo(s, "Alice", "one", private=False, objects={A: 100, B: 20})
        _repo(s, "Alice", "two", private=False, objects={A: 100})
        private = _repo(s, "Alice", "secret", private=True, objects={A: 100, C: 3})
        _repo(s, "Acme", "x", private=False, objects={B: 20})
        assert used_bytes(s, "alice", private=False) == 120
        assert used_bytes(s, "ALICE", private=True) == 103
        assert used_bytes(s, "Acme", private=False) == 20
        assert limit_for(hub, s, "Alice", private=False) is None  # no default for users
        assert limit_for(hub, s, "acme", private=False) == 50  # the org default
        require_room(hub, s, public, {C: 10**12})  # no limit: anything goes

        set_quota(s, "alice", {"publicBytes": 130})
        require_room(hub, s, public, {A: 100, B: 20}, extra_bytes=10)  # known objects: only the 10 bytes count
        with pytest.raises(QuotaExceededError) as refused:
            require_room(hub, s, public, {A: 100, C: 3}, extra_bytes=8)
        assert refused.value.status_code == 403
        assert refused.value.message == (
            "Storage quota exceeded for Alice (public repos): 120 bytes used of 130 bytes allowed; "
            "this upload needs 11 bytes"
        )
        require_room(hub, s, private, {C: 3, B: 10**9})  # private pool: still no limit (NULL, no default)
        set_quota(s, "Alice", {"privateBytes": 103})
        with pytest.raises(QuotaExceededError, match=r"\(private repos\): 103 bytes used of 103 bytes allowed"):
            require_room(hub, s, private, {B: 20})
        set_quota(s, "alice", {"publicBytes": None})  # back to the default; private kept
        answer = usage(hub, s, "alice")
        assert answer["public"] == {"usedBytes": 120, "limitBytes": None}
        assert answer["private"] == {"usedBytes": 103, "limitBytes": 103}
        assert answer["override"] == {"publicBytes": None, "privateBytes": 103}
        assert usage(hub, s, "acme")["type"] == "org"
        for bad in ({"publicBytes": -1}, {"publicBytes": "1GB"}, {"publicBytes": True}, {"nope": 1}):
            with pytest.raises(BadRequestError):
                set_quota(s, "alice", bad)
        with pytest.raises(NotFoundError):
            set_quota(s, "nobody", {"publicBytes": 1})
