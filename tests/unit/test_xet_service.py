"""``hubstead.xet.service`` on a real hub (SQLite, the xorb store on disk): xorbs are stored only when their bytes
hash to their name, shards register files only when every xorb is stored and readable by the token and the
file rebuilds to the sha256 it claims, and dedup answers and reconstructions reach only tokens whose repo may
read the bytes. Xorbs and shards are built by ``tests/xet_builders.py``."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from hubstead.auth import service as auth
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, EntryNotFoundError, ForbiddenError, NotFoundError, UnauthorizedError
from hubstead.repos.lfs.proofs import proven
from hubstead.repos.service import create_repo
from hubstead.xet import service
from hubstead.xet.cas.formats import XetFormatError, parse_shard
from hubstead.xet.cas.hashing import chunk_hash, file_hash, to_hex
from hubstead.xet.cas.models import XetDedupChunk, XetFile, XetXorbRepo
from hubstead.xet.tokens import CasGrant
from xet_builders import random_chunks, shard_for_file, xorb_from_chunks


@dataclass
class Uploader:
    user_id: int
    repo_pk: int

    def grant(self, mode: str = "write") -> CasGrant:
        return CasGrant(repo_pk=self.repo_pk, user_id=self.user_id, mode=mode, expires=int(time.time()) + 600)


def _uploader(hub: Hub, name: str, *, private: bool) -> Uploader:
    with hub.db.session() as s:
        user = auth.create_user(s, name=name)
        principal = Principal(user=user, token_role="write")
        repo, _ = create_repo(hub, s, principal, repo_id=f"{name}/files", repo_type="model", private=private)
        return Uploader(user_id=user.id, repo_pk=repo.pk)


def _upload(hub: Hub, who: Uploader, chunks: list[bytes]) -> str:
    xorb_hex, body = xorb_from_chunks(chunks)
    with hub.db.session() as s:
        service.upload_xorb(hub, s, who.grant(), xorb_hex, body)
    return xorb_hex


def test_a_xorb_is_stored_only_when_it_hashes_to_its_name(hub: Hub) -> None:
    """A xorb whose chunks hash to another name, a name that is not hex, or a read-only token is refused; a good
    one is stored once (a second upload answers False) and held by each repo that sent its bytes."""
    alice, bob = _uploader(hub, "alice", private=False), _uploader(hub, "bob", private=False)
    chunks = random_chunks(2, 5000)
    xorb_hex, body = xorb_from_chunks(chunks)
    other_hex, _ = xorb_from_chunks(random_chunks(1, 100))
    with hub.db.session() as s:
        with pytest.raises(XetFormatError, match=f"hashes to {xorb_hex}, not {other_hex}"):
            service.upload_xorb(hub, s, alice.grant(), other_hex, body)
        with pytest.raises(BadRequestError):
            service.upload_xorb(hub, s, alice.grant(), "zz" * 32, body)
        with pytest.raises(ForbiddenError, match="read-only"):
            service.upload_xorb(hub, s, alice.grant("read"), xorb_hex, body)
        with pytest.raises(XetFormatError):
            service.upload_xorb(hub, s, alice.grant(), xorb_hex, body[:-1])
        assert not hub.xorbs.exists(xorb_hex)
        assert service.upload_xorb(hub, s, alice.grant(), xorb_hex, body) is True
        assert service.upload_xorb(hub, s, bob.grant(), xorb_hex, body) is False
        s.flush()
        holders = set(s.scalars(select(XetXorbRepo.repo_pk).where(XetXorbRepo.xorb_hash == xorb_hex)))
        assert holders == {alice.repo_pk, bob.repo_pk}
    assert [c.size for c in hub.xorbs.chunks(xorb_hex)] == [5000, 5000]


def test_a_shard_registers_its_file_and_proves_the_upload(hub: Hub) -> None:
    """A shard over a stored xorb registers the file once (sha256, size, layout), records the uploader's proof for
    the repo, and indexes the file's first chunk for dedup; registering it again adds nothing."""
    alice = _uploader(hub, "alice", private=True)
    chunks = random_chunks(3, 4000)
    xorb_hex = _upload(hub, alice, chunks)
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    shard = shard_for_file(chunks, xorb_hex)
    file_hex = to_hex(parse_shard(shard).files[0].file_hash)
    with hub.db.session() as s:
        assert service.register_shard(hub, s, alice.grant(), shard) == 1
        record = s.get(XetFile, file_hex)
        assert record is not None and record.sha256 == sha and record.size == 12000
        assert proven(s, repo_pk=alice.repo_pk, user_id=alice.user_id, oid=sha, size=12000)
        first = to_hex(chunk_hash(chunks[0]))
        assert s.get(XetDedupChunk, first) is not None
        assert service.register_shard(hub, s, alice.grant(), shard) == 0


def test_shards_that_do_not_verify_are_refused(hub: Hub) -> None:
    """Refused in words, registering nothing: a shard naming a xorb never uploaded, one claiming a sha256 the file
    does not rebuild to, one from a read-only or anonymous token, and garbage."""
    alice = _uploader(hub, "alice", private=False)
    chunks = random_chunks(2, 3000)
    xorb_hex = _upload(hub, alice, chunks)
    missing_hex, _ = xorb_from_chunks(random_chunks(1, 10))
    with hub.db.session() as s:
        with pytest.raises(XetFormatError, match="never uploaded"):
            service.register_shard(hub, s, alice.grant(), shard_for_file(random_chunks(1, 10), missing_hex))
        with pytest.raises(XetFormatError, match="reconstructs to sha256"):
            service.register_shard(hub, s, alice.grant(), shard_for_file(chunks, xorb_hex, sha256="0" * 64))
        with pytest.raises(ForbiddenError):
            service.register_shard(hub, s, alice.grant("read"), shard_for_file(chunks, xorb_hex))
        anonymous = CasGrant(repo_pk=alice.repo_pk, user_id=None, mode="write", expires=int(time.time()) + 60)
        with pytest.raises(UnauthorizedError):
            service.register_shard(hub, s, anonymous, shard_for_file(chunks, xorb_hex))
        with pytest.raises(XetFormatError):
            service.register_shard(hub, s, alice.grant(), b"not a shard")
        assert s.query(XetFile).count() == 0


def test_another_users_private_xorb_cannot_be_referenced_or_found(hub: Hub) -> None:
    """A xorb held only by someone else's private repo is invisible: a shard naming it is refused, the dedup query
    for its chunk is a 404, and its file does not reconstruct through another repo's token."""
    owner = _uploader(hub, "owner", private=True)
    thief = _uploader(hub, "thief", private=False)
    chunks = random_chunks(2, 3000)
    xorb_hex = _upload(hub, owner, chunks)
    shard = shard_for_file(chunks, xorb_hex)
    file_hex = to_hex(file_hash([(chunk_hash(c), len(c)) for c in chunks]))
    with hub.db.session() as s:
        service.register_shard(hub, s, owner.grant(), shard)
        first = to_hex(chunk_hash(chunks[0]))
        with pytest.raises(XetFormatError, match="cannot read"):
            service.register_shard(hub, s, thief.grant(), shard)
        with pytest.raises(NotFoundError):
            service.dedup_query(hub, s, thief.grant(), first)
        with pytest.raises(EntryNotFoundError):
            service.reconstruction(hub, s, thief.grant("read"), file_hex, None, "http://cas")
        assert service.dedup_query(hub, s, owner.grant(), first)  # the owner is offered their own xorb


def test_reconstruction_covers_ranges_with_signed_urls(hub: Hub) -> None:
    """The owner's token gets terms that cover the asked bytes, each fetch URL signed for its byte range; a range
    past the end is a 416 and a malformed one a 400."""
    alice = _uploader(hub, "alice", private=True)
    chunks = random_chunks(3, 1000)
    xorb_hex = _upload(hub, alice, chunks)
    shard = shard_for_file(chunks, xorb_hex)
    file_hex = to_hex(parse_shard(shard).files[0].file_hash)
    with hub.db.session() as s:
        service.register_shard(hub, s, alice.grant(), shard)
        whole = service.reconstruction(hub, s, alice.grant("read"), file_hex, None, "http://cas")
        assert [t["range"] for t in whole["terms"]] == [{"start": 0, "end": 3}]
        assert whole["offset_into_first_range"] == 0
        middle = service.reconstruction(hub, s, alice.grant("read"), file_hex, "bytes=1500-1600", "http://cas")
        assert [t["range"] for t in middle["terms"]] == [{"start": 1, "end": 2}]
        assert middle["offset_into_first_range"] == 500
        (fetch,) = middle["fetch_info"][xorb_hex]
        assert fetch["url"].startswith(f"http://cas/xorb-data/{xorb_hex}?r=") and "&sig=" in fetch["url"]
        with pytest.raises(service.RangeNotSatisfiable):
            service.reconstruction(hub, s, alice.grant("read"), file_hex, "bytes=3000-", "http://cas")
        with pytest.raises(BadRequestError, match="Invalid Range"):
            service.reconstruction(hub, s, alice.grant("read"), file_hex, "bytes=a-b", "http://cas")
