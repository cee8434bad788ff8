"""The evaluation index follows main: benchmarks (``eval_benchmarks``) and models' results (``eval_results``).

``follow_main`` is registered with ``repos.index.follow_main`` (``hubstead.wiring``) and runs in the transaction
that moves a repo's main, after the repo's own index row:

- a dataset repo: its ``eval_benchmarks`` row follows ``eval.yaml`` at the root of the new head (valid → the
  parsed spec, invalid → the reasons, absent → no row), and so does its ``benchmark:official`` tag row (what
  ``list_datasets(benchmark=True)`` filters on; never shown in the answer's ``tags``);
- a model repo: its ``eval_results`` rows are replaced by the entries of ``.eval_results/*.yaml`` (at most 100
  files, 256 KiB together) and of the card's ``model-index`` (skipping a (dataset, task) a results file already
  gives). An entry is verified exactly when its ``verifyToken`` is this hub's signature on this very entry in
  this very repo (``evals.signing``); it is stale when the model's files (all but ``README.md``, ``.gitattributes`` and
  ``.eval_results/``) differ between the commit the signature names and the new head.

The follower needs the hub (git directories, the secret key, blobs for safetensors headers): ``attach(hub)``
records it under its database engine, so several hubs in one process each index their own repos. Reading is
bounded and never raises on what a user committed (a bad file is rows with ``error``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.evals import signing
from hubstead.evals.benchmark import FILENAME as BENCHMARK_FILENAME
from hubstead.evals.benchmark import MAX_BYTES as BENCHMARK_MAX_BYTES
from hubstead.evals.benchmark import BenchmarkInvalid, parse_benchmark
from hubstead.evals.models import EvalBenchmark, EvalResult
from hubstead.evals.results import (
    MAX_FILE_BYTES,
    RESULTS_DIR,
    ParsedEntry,
    entries_from_model_index,
    is_results_path,
    parse_results_file,
)
from hubstead.repos.git import GitRepo
from hubstead.repos.index import fields_at
from hubstead.repos.info import safetensors_summary
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.service import open_git

log = logging.getLogger(__name__)

BENCHMARK_TAG = "benchmark:official"
MAX_RESULTS_FILES = 100
# Read in the push's transaction: ~0.15 s per full 64 KiB file, so at most ~0.6 s of YAML a commit.
MAX_RESULTS_BYTES = 256 * 1024
# What an evaluation does not depend on: a commit changing only these leaves verified results fresh.
NOT_THE_MODEL = frozenset({"README.md", ".gitattributes", RESULTS_DIR})

_LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # a large file's pointer: its bytes are not in git
_hubs: dict[Any, Hub] = {}


def attach(hub: Hub) -> None:
    """Let the follower index the repos of ``hub`` (keyed by its database engine)."""
    _hubs[hub.db.engine] = hub


@dataclass
class IndexedEntry:
    """An entry with what the hub concluded about it."""

    parsed: ParsedEntry
    verified: bool = False
    stale: bool = False
    model_sha: str | None = None
    job_id: str | None = None

    def answer(self) -> dict[str, Any]:
        """The entry as ``model_info(expand=["evalResults"])`` gives it: what ``parse_eval_result_entries``
        reads, plus the hub's ``verified``/``stale``; an invalid entry as ``{filename, error}`` (skipped by the
        client with a warning)."""
        parsed = self.parsed
        if parsed.entry is None:
            return {"filename": parsed.filename, "position": parsed.position, "error": parsed.error}
        return {**parsed.entry, "filename": parsed.filename, "verified": self.verified, "stale": self.stale}


def follow_main(session: Session, repo: Repo, commit_id: str) -> None:
    """The follower of main (see the module docstring)."""
    if repo.repo_type not in ("dataset", "model"):
        return
    bind = session.get_bind()
    hub = _hubs.get(getattr(bind, "engine", bind))
    if hub is None:
        log.warning("evals index: no hub attached for this database; %s %s not indexed", repo.repo_type,
                    repo.repo_id)
        return
    reindex(hub, session, repo, commit_id)


def reindex(hub: Hub, session: Session, repo: Repo, commit_id: str) -> None:
    git = open_git(hub, repo)
    commit = git.commit(pygit2.Oid(hex=commit_id))
    if repo.repo_type == "dataset":
        _index_benchmark(session, git, repo, commit)
    elif repo.repo_type == "model":
        _index_results(hub, session, git, repo, commit)


def reindex_all(hub: Hub) -> int:
    """Index every dataset and model at its main head (a hub upgraded to evaluation, or a backfill). Returns how
    many repos were read."""
    done = 0
    with hub.db.session() as session:
        for repo in session.scalars(select(Repo).where(Repo.repo_type.in_(("dataset", "model")),
                                                       Repo.sha.is_not(None))):  # fmt: skip
            try:
                reindex(hub, session, repo, repo.sha or "")
            except (pygit2.GitError, KeyError, ValueError) as exc:
                log.error("evals index: %s %s: %s", repo.repo_type, repo.repo_id, exc)
                continue
            done += 1
    return done


# -- benchmarks ----------------------------------------------------------------------------------------------


def _index_benchmark(session: Session, git: GitRepo, repo: Repo, commit: pygit2.Commit) -> None:
    found = git.entry(commit, BENCHMARK_FILENAME)
    row = session.get(EvalBenchmark, repo.pk)
    if not isinstance(found, pygit2.Blob):
        if row is not None:
            session.delete(row)
        _set_benchmark_tag(session, repo, False)
        return
    spec: dict[str, Any] | None = None
    name, framework, error = repo.repo_id, None, None
    if found.size > BENCHMARK_MAX_BYTES:
        error = f"the file is larger than {BENCHMARK_MAX_BYTES // 1024} KiB"
    else:
        try:
            benchmark = parse_benchmark(found.data)
            spec, name, framework = benchmark.as_json(), benchmark.name, benchmark.framework
        except BenchmarkInvalid as exc:
            error = "; ".join(exc.reasons)
        except Exception as exc:  # noqa: BLE001 - never let an author's file fail the push
            error = f"eval.yaml cannot be read ({exc})"
    if row is None:
        row = EvalBenchmark(repo_pk=repo.pk)
        session.add(row)
    row.name, row.framework, row.spec, row.error = name[:200], framework, spec, error
    row.sha, row.updated_at = str(commit.id), utcnow()
    _set_benchmark_tag(session, repo, spec is not None)
    session.flush()


def _set_benchmark_tag(session: Session, repo: Repo, wanted: bool) -> None:
    has = session.scalar(select(RepoTag.tag).where(RepoTag.repo_pk == repo.pk, RepoTag.tag == BENCHMARK_TAG))
    if wanted and has is None:
        session.add(RepoTag(repo_pk=repo.pk, tag=BENCHMARK_TAG))
    elif not wanted and has is not None:
        session.execute(delete(RepoTag).where(RepoTag.repo_pk == repo.pk, RepoTag.tag == BENCHMARK_TAG))


# -- model results -------------------------------------------------------------------------------------------


def read_entries(hub: Hub, git: GitRepo, repo: Repo, commit: pygit2.Commit,
                 card_data: Any = None) -> list[IndexedEntry]:
    """Every result entry of a model at ``commit`` (results files first, then the card's ``model-index``),
    checked, verified and marked stale as the index keeps them. ``card_data`` is the card at ``commit`` (read
    from git when not given)."""
    parsed: list[ParsedEntry] = []
    folder = git.entry(commit, RESULTS_DIR)
    if isinstance(folder, pygit2.Tree):
        files = sorted((item for item in folder if is_results_path(f"{RESULTS_DIR}/{item.name}")),
                       key=lambda item: str(item.name))  # fmt: skip
        budget = MAX_RESULTS_BYTES
        for item in files[:MAX_RESULTS_FILES]:
            filename = f"{RESULTS_DIR}/{item.name}"
            blob = git.repo.get(item.id)
            if not isinstance(blob, pygit2.Blob):
                continue
            if blob.size > MAX_FILE_BYTES or blob.data.startswith(_LFS_POINTER):
                parsed.append(ParsedEntry(filename=filename, position=0,
                                          error=f"the file is larger than {MAX_FILE_BYTES // 1024} KiB"))
                continue
            if budget < blob.size:
                parsed.append(ParsedEntry(filename=filename, position=0, error=(
                    f"not read: the results files are over {MAX_RESULTS_BYTES // 1024} KiB together")))
                continue
            budget -= blob.size
            parsed.extend(parse_results_file(filename, blob.data))
        if len(files) > MAX_RESULTS_FILES:
            parsed.append(ParsedEntry(filename=RESULTS_DIR, position=0,
                                      error=f"more than {MAX_RESULTS_FILES} results files: the rest are not read"))
    given = {(p.dataset_id, p.task_id) for p in parsed if p.valid}
    if card_data is None:
        card_data = fields_at(git, repo.repo_type, commit).card_data
    for entry in entries_from_model_index(card_data):
        if entry.valid and (entry.dataset_id, entry.task_id) in given:
            continue
        parsed.append(entry)
    fresh: dict[str, bool] = {}
    out: list[IndexedEntry] = []
    for entry in parsed:
        indexed = IndexedEntry(parsed=entry)
        if entry.valid and entry.verify_token is not None and entry.filename != "README.md":
            claims = signing.verifies(hub.settings.secret_key, entry.verify_token, model_repo_pk=repo.pk,
                                      dataset_id=entry.dataset_id or "", task_id=entry.task_id or "",
                                      value=entry.value)  # fmt: skip
            if claims is not None:
                indexed.verified, indexed.model_sha, indexed.job_id = True, claims.model_sha, claims.job_id
                if claims.model_sha not in fresh:
                    fresh[claims.model_sha] = _same_model(git, claims.model_sha, commit)
                indexed.stale = not fresh[claims.model_sha]
        out.append(indexed)
    return out


def _model_files(tree: pygit2.Tree) -> dict[str, str]:
    return {str(item.name): str(item.id) for item in tree if str(item.name) not in NOT_THE_MODEL}


def _same_model(git: GitRepo, evaluated: str, head: pygit2.Commit) -> bool:
    """Whether the model's files at ``evaluated`` are those of ``head`` (root entries compared by object id, so
    a changed file anywhere below a folder changes the folder's id). A commit that is not there is not."""
    if str(head.id) == evaluated:
        return True
    try:
        found = git.repo.get(evaluated)
    except (ValueError, KeyError, pygit2.GitError):
        return False
    if not isinstance(found, pygit2.Commit):
        return False
    return _model_files(found.tree) == _model_files(head.tree)


def _model_params(hub: Hub, git: GitRepo, commit: pygit2.Commit) -> int | None:
    try:
        summary = safetensors_summary(hub, git, commit)
    except Exception:  # noqa: BLE001 - a size is a nicety; a header that cannot be read is no size
        return None
    return int(summary["total"]) if summary else None


def _index_results(hub: Hub, session: Session, git: GitRepo, repo: Repo, commit: pygit2.Commit) -> None:
    entries = read_entries(hub, git, repo, commit, card_data=repo.card_data)
    session.execute(delete(EvalResult).where(EvalResult.model_repo_pk == repo.pk))
    if not entries:
        return
    params = _model_params(hub, git, commit)
    session.add_all(
        EvalResult(
            model_repo_pk=repo.pk, filename=e.parsed.filename, position=e.parsed.position,
            dataset_id=e.parsed.dataset_id, task_id=e.parsed.task_id, value=e.parsed.value, verified=e.verified,
            stale=e.stale, model_sha=e.model_sha, job_id=e.job_id, source=e.parsed.source, date=e.parsed.date,
            notes=e.parsed.notes, error=e.parsed.error, pull_request=None, model_params=params,
            entry=e.parsed.entry,
        )
        for e in entries
    )
    session.flush()


BACKFILL_MARK = "evals-index-v1"


def backfill_once(hub: Hub) -> int | None:
    """At start-up: index every repo once on a hub whose repos predate the evaluation index (an upgraded hub), then
    leave a mark in the data folder so later starts skip it. Returns how many repos were read, None when already
    done. A crash midway leaves no mark: the next start reads them again (indexing is idempotent)."""
    mark = Path(hub.settings.data_dir) / BACKFILL_MARK
    if mark.exists():
        return None
    done = reindex_all(hub)
    mark.write_text("the evaluation index holds every repo's results and benchmark (hubstead.evals.index)\n")
    return done
