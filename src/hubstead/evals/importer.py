"""``hubstead import-benchmark``: bring a benchmark into an air-gapped hub as a dataset repo with an ``eval.yaml``.

Two sources:
- a catalog name (``evals.catalog``) whose data sits in a Hugging Face hub cache copied from a connected machine
  (``<cache>/datasets--org--name/snapshots/<rev>/``, the revision ``refs/main`` names): the snapshot's files
  and the catalog's ``eval.yaml`` are committed under the benchmark's Hub id (or ``repo_id``), creating the org
  namespace when it does not exist yet (with a site admin's right);
- a folder of data files (csv, jsonl, parquet...) with an ``eval.yaml`` its author wrote, checked first: an invalid
  one is refused with its reasons before anything is created.

Files go to git or LFS by the one rule ``repos.ingest`` keeps (as ``hubstead import`` does) and are committed in
one commit by ``repos.commits.commit_files``, so main's followers (the benchmark index) see them. Importing again
commits only the files whose bytes changed, and nothing when none did. Files removed from a newer snapshot are
left in the repo (an import adds and updates, it never deletes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hubstead.auth.service import Principal, create_org
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ForbiddenError, NotFoundError
from hubstead.evals.benchmark import FILENAME, MAX_BYTES, Benchmark, parse_benchmark
from hubstead.evals.catalog import CatalogEntry, catalog_entry
from hubstead.repos.commits import commit_files
from hubstead.repos.importer import SKIPPED_DIRS, _acting_user
from hubstead.repos.ingest import ingest_files, rules_for
from hubstead.repos.lfs.pointers import LfsRules
from hubstead.repos.paths import split_repo_id
from hubstead.repos.service import author_for, create_repo, find_repo, namespace_exists, open_git

DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".arrow", ".txt")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")


@dataclass
class BenchmarkImport:
    """What an import did: ``commit`` is None when the repo already held exactly these files."""

    repo_id: str
    benchmark: Benchmark
    source: str  # in words: the snapshot and its revision, or the folder
    files: int  # files the source holds (the eval.yaml included)
    changed: list[str] = field(default_factory=list)
    commit: str | None = None
    created: bool = False


def hub_cache_dir(cache_dir: Path | None = None) -> Path:
    """The Hugging Face hub cache to read: ``cache_dir`` (a hub cache, or an ``HF_HOME`` holding ``hub/``), else
    ``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``$XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``, as
    ``huggingface_hub`` picks it."""
    if cache_dir is not None:
        cache_dir = cache_dir.expanduser()
        if not any(cache_dir.glob("datasets--*")) and (cache_dir / "hub").is_dir():
            return cache_dir / "hub"
        return cache_dir
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def find_snapshot(entry: CatalogEntry, cache_dir: Path | None = None) -> tuple[Path, str]:
    """The cached snapshot of ``entry``'s dataset and its revision: the one ``refs/main`` names, else the newest.
    ``NotFoundError`` says where it looked and how to fetch the data on a connected machine."""
    root = hub_cache_dir(cache_dir)
    folder = root / ("datasets--" + entry.dataset_id.replace("/", "--"))
    main = folder / "refs" / "main"
    if main.is_file():
        revision = main.read_text().strip()
        if (folder / "snapshots" / revision).is_dir():
            return folder / "snapshots" / revision, revision
    snapshots = sorted((p for p in (folder / "snapshots").glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if snapshots:
        return snapshots[-1], snapshots[-1].name
    raise NotFoundError(
        f"The data of {entry.name} ({entry.dataset_id}) is not in the Hugging Face cache: looked for {folder}. "
        f"On a connected machine run `huggingface-cli download --repo-type dataset {entry.dataset_id}` "
        f"(or `hf download --repo-type dataset {entry.dataset_id}`), copy its {folder.name} folder from that "
        f"machine's ~/.cache/huggingface/hub into {root}, or pass --cache-dir"
    )


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(path in repo, file)`` under ``folder``: links followed (a snapshot is links into ``blobs/``), ``.git``
    and ``.cache`` skipped, sorted."""
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(root) / name
            yield path.relative_to(folder).as_posix(), path


def _is_data(path: str) -> bool:
    name = path.lower()
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(DATA_SUFFIXES)


def _read_eval_yaml(folder: Path) -> bytes:
    path = folder / FILENAME
    if not path.is_file():
        raise BadRequestError(f"{folder} has no {FILENAME}: a benchmark folder needs one (see docs/evaluation.md)")
    if path.stat().st_size > MAX_BYTES:
        raise BadRequestError(f"{path} is larger than {MAX_BYTES // 1024} KiB")
    return path.read_bytes()


def import_benchmark(
    hub: Hub,
    source: str,
    *,
    repo_id: str | None = None,
    cache_dir: Path | None = None,
    as_user: str | None = None,
    private: bool = False,
) -> BenchmarkImport:
    """Import ``source`` (a catalog name or Hub dataset id, or a folder with an ``eval.yaml``) as a benchmark
    dataset; see the module's docstring. Everything is checked before the database or a repo is touched."""
    folder = Path(source).expanduser()
    entry = None if folder.is_dir() else catalog_entry(source)
    if entry is not None:
        snapshot, revision = find_snapshot(entry, cache_dir)
        eval_yaml = entry.eval_yaml_text().encode()
        sources = [(path, file) for path, file in _walk(snapshot) if path != FILENAME and entry.takes(path)]
        described = f"{entry.dataset_id} at revision {revision[:12]} ({snapshot})"
        message = f"Import benchmark {entry.dataset_id} (revision {revision}) from a Hugging Face cache"
        repo_id = repo_id or entry.dataset_id
        base = snapshot
    elif folder.is_dir():
        if not repo_id:
            raise BadRequestError("Importing a folder needs --repo-id (the dataset repo to create or update)")
        eval_yaml = _read_eval_yaml(folder)
        sources = [(path, file) for path, file in _walk(folder) if path != FILENAME]
        described = str(folder)
        base = folder
    else:
        raise NotFoundError(
            f"{source!r} is neither a folder nor a benchmark of the catalog (`hubstead import-benchmark --list` "
            "lists them)"
        )
    benchmark = parse_benchmark(eval_yaml)  # BenchmarkInvalid names every reason; nothing is created
    if entry is None:
        message = f"Import benchmark {benchmark.name!r} from {folder.name}"
        if not any(_is_data(path) for path, _ in sources):
            raise BadRequestError(
                f"{folder} holds no data files ({', '.join(DATA_SUFFIXES)}): a benchmark needs its data next to "
                f"{FILENAME}"
            )
    elif not sources:
        raise BadRequestError(f"{base} holds none of the files {entry.name} takes ({', '.join(entry.files)})")
    namespace, _ = split_repo_id(repo_id)
    result = BenchmarkImport(repo_id=repo_id, benchmark=benchmark, source=described, files=len(sources) + 1)
    with hub.db.session() as session:
        user = _acting_user(hub, session, namespace, as_user)
        principal = Principal(user=user, token_role="write")
        repo, _ = find_repo(session, repo_type="dataset", repo_id=repo_id)
        if repo is None:
            if not namespace_exists(session, namespace):
                if not user.is_admin:
                    raise ForbiddenError(
                        f"Namespace {namespace!r} does not exist and {user.name!r} is not a site admin to create it"
                    )
                create_org(session, name=namespace, owner=user)
            repo, _ = create_repo(hub, session, principal, repo_id=repo_id, repo_type="dataset", private=private)
            result.created = True
        result.repo_id = f"{repo.namespace}/{repo.name}"
        git = open_git(hub, repo)
        attributes = base / ".gitattributes"
        rules = (LfsRules(attributes.read_text(errors="replace")) if attributes.is_file()
                 else rules_for(git, "dataset"))
        ingested = ingest_files(hub, git, rules, sources)
        files = [*ingested.files, (FILENAME, git.write_blob(eval_yaml))]
        head = git.branch_head("refs/heads/main")
        head_commit = git.commit(head) if head is not None else None
        changed = []
        for path, blob in files:
            current = git.entry(head_commit, path) if head_commit is not None else None
            if current is None or current.id != blob:
                changed.append((path, blob))
        if not changed:
            return result
        result.changed = [path for path, _ in changed]
        result.commit = commit_files(
            hub,
            session,
            repo=session.merge(repo) if repo not in session else repo,
            branch="main",
            files=changed,
            lfs_objects=ingested.lfs_objects,
            message=message,
            author=author_for(hub, principal),
        )
    return result
