"""Keeps each repo's index row current with the head of its main branch, and tells the domains that follow
main (``follow_main``) when it moves.

``on_main_moved`` is called after every move of main (in the same transaction), and at start for any repo whose
row lags its git head (the server may have been killed between moving the branch and updating the row).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pygit2
from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.orm import Session, defer

from hubstead.context import Hub
from hubstead.repos.cards import MAX_CARD_EXPANDED_BYTES, IndexFields, index_fields
from hubstead.repos.git import GitRepo
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.service import open_git

MainFollower = Callable[[Session, Repo, str], None]
_followers: dict[str, MainFollower] = {}

log = logging.getLogger(__name__)
_INDEX_BLOB_LIMIT = 1024 * 1024
LANGUAGE_TAG = "language:"
FOLLOWER_TAGS = ("benchmark:",)  # tag rows a follower of main keeps (not from the card)


def _small_blob(git: GitRepo, commit: pygit2.Commit, path: str) -> bytes | None:
    obj = git.entry(commit, path)
    if not isinstance(obj, pygit2.Blob) or obj.size > _INDEX_BLOB_LIMIT:
        return None
    return obj.data


def fields_at(git: GitRepo, repo_type: str, commit: pygit2.Commit) -> IndexFields:
    """The index fields (card, tags, task, library…) as the files of ``commit`` give them."""
    readme_bytes = _small_blob(git, commit, "README.md")
    readme = readme_bytes.decode("utf-8", errors="replace") if readme_bytes else None
    return index_fields(
        repo_type=repo_type,
        readme=readme,
        config_json=_small_blob(git, commit, "config.json") if repo_type == "model" else None,
        root_files=[str(entry.name) for entry in commit.tree],
    )


def reindex_repo(session: Session, git: GitRepo, repo: Repo, commit: pygit2.Commit) -> None:
    """Refresh the index row of ``repo`` from ``commit`` (the head of main); ``on_main_moved`` is what callers
    use, this is its first step."""
    fields = fields_at(git, repo.repo_type, commit)
    repo.sha = str(commit.id)
    repo.last_modified = datetime.fromtimestamp(commit.commit_time, UTC)
    repo.card_data = fields.card_data
    repo.pipeline_tag = fields.pipeline_tag
    repo.library_name = fields.library_name
    repo.license = fields.license
    repo.languages = fields.languages
    repo.base_models = fields.base_models
    repo.datasets = fields.datasets
    repo.model_config = fields.model_config
    # The tag index also holds "language:xx" rows (filters and facets); the answer's tags stay as the Hub's.
    # "benchmark:" rows belong to the evaluation index (a follower of main): kept here, set there.
    current = session.scalars(select(RepoTag.tag).where(RepoTag.repo_pk == repo.pk)).all()
    kept = [tag for tag in current if tag.startswith(FOLLOWER_TAGS)]
    indexed = list(dict.fromkeys(fields.tags + [f"{LANGUAGE_TAG}{lang}" for lang in fields.languages] + kept))
    repo.tags = fields.tags
    if sorted(current) != sorted(indexed):
        session.execute(delete(RepoTag).where(RepoTag.repo_pk == repo.pk))
        session.add_all(RepoTag(repo_pk=repo.pk, tag=tag) for tag in indexed)
    session.flush()


def on_main_moved(session: Session, git: GitRepo, repo: Repo, commit: pygit2.Commit) -> None:
    """The one hook every path that moves a repo's main branch calls (commits, merges, branch moves,
    super-squash, start-up reconciliation), in the transaction that records the move: the index row follows
    the new head, then each follower registered with ``follow_main`` (e.g. the dataset viewer's conversion
    job) runs in the same transaction, so a move that rolls back leaves nothing behind."""
    reindex_repo(session, git, repo, commit)
    for follower in _followers.values():
        follower(session, repo, str(commit.id))


def follow_main(name: str, follower: MainFollower) -> None:
    """Register ``follower(session, repo, commit_id)`` to run whenever a repo's main moves. Domains above
    this layer (the viewer, later spaces and evaluation) register at app start; registering a name again
    replaces its follower."""
    _followers[name] = follower


_UNKNOWN = "?"


def main_head_from_files(git_dir: Path | str) -> str | None:
    """The commit id ``refs/heads/main`` names, read as git's files (the loose ref, else ``packed-refs``) without
    opening the repository: None when there is no such branch, ``_UNKNOWN`` when the files do not say plainly
    (a symbolic ref, a missing folder, an unreadable file): then the caller asks libgit2. (Plain ``os`` paths:
    at start this runs once per repo, and pathlib's joins cost more than the read.)"""
    root = os.fspath(git_dir)
    try:
        with open(os.path.join(root, "refs", "heads", "main"), "rb") as handle:
            loose = handle.read(200).strip().decode("ascii", errors="replace")
    except FileNotFoundError:
        loose = None
    except OSError:
        return _UNKNOWN
    if loose is not None:
        return loose.lower() if _is_oid(loose) else _UNKNOWN
    if not os.path.isdir(root):
        return _UNKNOWN
    try:
        with open(os.path.join(root, "packed-refs"), "rb") as handle:
            packed = handle.read().decode("ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _UNKNOWN
    for line in packed.splitlines():
        if line.startswith(("#", "^")):
            continue
        oid, _, name = line.partition(" ")
        if name.strip() == "refs/heads/main":
            return oid.lower() if _is_oid(oid) else _UNKNOWN
    return None


_HEX = frozenset("0123456789abcdefABCDEF")


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and _HEX.issuperset(text)


def reconcile_all(hub: Hub) -> int:
    """Re-index every repo whose row does not match its main head, or whose stored card is larger than any card
    the bounded loader now accepts (a YAML alias bomb expanded by an older hub). Returns how many were refreshed.

    Cheap at start with many repos: each head is read from the ref files (no libgit2 open) and compared with the
    row, and only the repos that differ (or whose files do not say plainly) are opened and re-indexed."""
    refreshed = 0
    with hub.db.session() as session:
        oversized = set(
            session.scalars(
                select(Repo.pk).where(func.length(cast(Repo.card_data, Text)) > 2 * MAX_CARD_EXPANDED_BYTES)
            )
        )
        repos_dir = os.fspath(hub.settings.repos_dir)  # the layout of repos.git.repo_path, joined as strings
        suspects = [
            pk
            for pk, storage_key, sha in session.execute(select(Repo.pk, Repo.storage_key, Repo.sha))
            if pk in oversized or main_head_from_files(f"{repos_dir}/{storage_key[:2]}/{storage_key}.git") != sha
        ]
        for pk in suspects:
            repo = session.get(Repo, pk, options=[defer(Repo.card_data)])
            if repo is None:
                continue
            try:
                git = open_git(hub, repo)
                head = git.branch_head("refs/heads/main")
            except (pygit2.GitError, KeyError) as exc:
                log.error("repo %s/%s: cannot open its git directory: %s", repo.repo_type, repo.repo_id, exc)
                continue
            if head is not None and str(head) != repo.sha:
                on_main_moved(session, git, repo, git.commit(head))
                refreshed += 1
            elif head is not None and repo.pk in oversized:
                reindex_repo(session, git, repo, git.commit(head))
                refreshed += 1
    return refreshed
