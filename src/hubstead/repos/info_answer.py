"""``model_info`` (and ``dataset_info``) at main's head, the read clients make most, answered from one query and a
cached body: the warm answer.

One statement reads everything the answer and its access check depend on: the repo's index row, the caller's
token with its user, and (for a model) whether any space names it. The body is a function of that row alone (the
git part of it is fixed by the head commit the row names), so the row itself is the cache key: a commit, a like,
a download rollup, a move, a gate or a card re-index by any process changes the row, the next request builds a
new key, and an old body is never answered; it just ages out of the LRU.

The warm answer covers the common case only. Everything else takes the long way (``repos.routes.repos.info``),
which gives every refusal, redirect and other field in the same words as before:

- a private repo (who may read it depends on memberships), a space (its runtime is live state), a repo with no
  commit yet, a model some space names (the spaces a reader may see depend on the reader);
- an unknown token, a disabled account, a token whose last-use stamp is over a minute old (the long way
  stamps it), a missing repo or a moved id;
- any query parameter but ``blobs`` (``expand``, ``securityStatus``).

For a public repo the answer is the same for every reader, anonymous or not, so the key holds no reader: the
token only has to be valid, which the same statement checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Select, Text, bindparam, cast, exists, literal, select, true

from hubstead.auth.models import Token, User
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.repos.cache import ByteLRU
from hubstead.repos.git import GitRepo, repo_path
from hubstead.repos.info import FastJSONResponse, IndexRow, repo_info
from hubstead.repos.models import Repo, RepoTag

# Bodies by row: 32 MiB, or 20,000 repos' answers (a model's is 1-3 KiB without blobs).
ANSWER_CACHE = ByteLRU(max_bytes=32 * 1024 * 1024, max_entries=20_000)

# ``principal_for_token`` stamps a token's last use at most once a minute; an older stamp takes the long way.
STAMP_EVERY = timedelta(seconds=60)

# The index row; the JSON documents as their text (parsed only to build a body). The whole row is the cache key.
_ROW = (
    Repo.pk, Repo.repo_type, Repo.namespace, Repo.name, Repo.private, Repo.gated, Repo.sdk, Repo.created_at,
    Repo.last_modified, Repo.sha, Repo.downloads_all_time, Repo.likes, cast(Repo.tags, Text).label("tags_json"),
    Repo.pipeline_tag, Repo.library_name, cast(Repo.card_data, Text).label("card_json"),
    cast(Repo.model_config, Text).label("config_json"), Repo.storage_key, Repo.downloads_30d,
)  # fmt: skip
_ROW_WIDTH = len(_ROW)

_CALLER = (
    select(Token.id.label("token_id"), Token.last_used_at.label("token_used_at"), User.name.label("user_name"),
           User.disabled_at.label("user_disabled_at"))
    .join(User, User.id == Token.user_id)
    .where(Token.token_hash == bindparam("token_hash"))
    .subquery("caller")
)  # fmt: skip


def _statement(repo_type: str, *, with_token: bool) -> Select[Any]:
    named_by_a_space = exists().where(RepoTag.tag == literal("model:") + Repo.namespace + literal("/") + Repo.name)
    columns: list[Any] = [*_ROW, (named_by_a_space if repo_type == "model" else literal(False)).label("spaces")]
    query = select(*columns).where(Repo.repo_type == repo_type, Repo.id_key == bindparam("id_key"))
    if with_token:
        query = query.add_columns(*_CALLER.c).outerjoin(_CALLER, true())
    return query


# Built once: building a statement costs more than running it.
_STATEMENTS = {(t, tok): _statement(t, with_token=tok) for t in ("model", "dataset") for tok in (False, True)}


@dataclass(frozen=True, slots=True)
class WarmRead:
    """One ``model_info``-shaped request the warm answer may serve: its statement and parameters."""

    statement: Select[Any]
    params: dict[str, str]
    with_token: bool
    blobs: bool


def warm_read(repo_type: str, repo_id: str, token_hash: str | None, *, blobs: bool) -> WarmRead | None:
    """The read for ``repo_type``'s ``repo_id`` at main, asked with this token (None: anonymous); None when the
    type has no warm answer (a space)."""
    statement = _STATEMENTS.get((repo_type, token_hash is not None))
    if statement is None:
        return None
    params = {"id_key": repo_id.lower()}
    if token_hash is not None:
        params["token_hash"] = token_hash
    return WarmRead(statement=statement, params=params, with_token=token_hash is not None, blobs=blobs)


def answer_key(read: WarmRead, row: Row[Any] | None) -> tuple[Any, ...] | None:
    """The cache key of the answer to ``read`` given its row, or None when the long way must answer."""
    if row is None or row.private or row.sha is None or row.spaces:
        return None
    if read.with_token:
        if row.token_id is None or row.user_disabled_at is not None:
            return None  # the long way refuses it, counts the failure and says why
        if row.token_used_at is None or utcnow() - row.token_used_at > STAMP_EVERY:
            return None  # the long way stamps the token's use
    return (read.blobs, *tuple(row)[:_ROW_WIDTH])


def caller_name(read: WarmRead, row: Row[Any]) -> str | None:
    return row.user_name if read.with_token else None


def cached_body(key: tuple[Any, ...]) -> bytes | None:
    body: bytes | None = ANSWER_CACHE.get(key)
    return body


def build_body(hub: Hub, read: WarmRead, row: Row[Any], key: tuple[Any, ...]) -> bytes:
    """The answer for ``row`` (one ``answer_key`` accepted), built as the long way builds it and kept under
    ``key``: the index fields from the row, the git part at the row's head (cached by commit in ``INFO_CACHE``)."""
    index_row = IndexRow(
        pk=row.pk, repo_type=row.repo_type, namespace=row.namespace, name=row.name, private=row.private,
        gated=row.gated, sdk=row.sdk, created_at=row.created_at, last_modified=row.last_modified, sha=row.sha,
        downloads_all_time=row.downloads_all_time, likes=row.likes, tags=json.loads(row.tags_json or "[]") or [],
        pipeline_tag=row.pipeline_tag, library_name=row.library_name,
        card_data=json.loads(row.card_json) if row.card_json else None,
        model_config=json.loads(row.config_json) if row.config_json else None, storage_key=row.storage_key,
    )  # fmt: skip

    def git_of() -> GitRepo:
        return GitRepo(repo_path(hub.settings.repos_dir, row.storage_key))

    answer = repo_info(hub, git_of, index_row, row.sha, blobs=read.blobs, expand=None, downloads=row.downloads_30d)
    body = bytes(FastJSONResponse(answer).body)
    ANSWER_CACHE.put(key, body, size=len(body) + sum(len(v) for v in key if isinstance(v, str)))
    return body

