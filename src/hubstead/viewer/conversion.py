"""The conversion job: a dataset repo's data files at one commit -> Parquet shards on ``refs/convert/parquet``.

Runs in a job process (``hubstead.jobs.execute``). For each config and split of the layout
(``viewer.layout``) it streams the files through ``viewer.readers`` into Parquet shards with small row
groups (about 1 MB each, so a page of rows reads one or two of them, however large the dataset), commits
the shards as LFS objects to ``refs/convert/parquet`` (``{config}/{split}/0000.parquet``, as the Hub lays
it out), then computes column statistics and a full-text index per split with DuckDB. A split whose
files cannot be read is recorded with the reason; the others still convert (the result is ``partial``).
Memory stays bounded: batches of 10,000 rows, spill files on disk, no split held whole.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pygit2

from hubstead.context import Hub
from hubstead.jobs.sandbox import safe_join
from hubstead.repos.cards import parse_card_yaml
from hubstead.repos.commits import record_lfs_objects
from hubstead.repos.files import FileInfo, file_info, iter_entries
from hubstead.repos.git import Author, GitRepo, repo_path
from hubstead.repos.lfs.pointers import LfsPointer
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo
from hubstead.storage.base import readable_path
from hubstead.viewer.features import MEDIA_STRUCT, existing_features, features_of, with_features
from hubstead.viewer.layout import METADATA_FILES, ConfigPlan, LayoutError, SplitPlan, plan
from hubstead.viewer.readers import BATCH_ROWS, SourceError, read_batches
from hubstead.viewer.records import ColumnStatistics, ConfigRecord, ParquetFileRecord, SplitRecord

log = logging.getLogger("hubstead.viewer")

CONVERT_REF = "refs/convert/parquet"
ROW_GROUP_TARGET_BYTES = 1024 * 1024
# Shares of the progress bar: converting is fast, the statistics and the search index take most of the time.
CONVERT_SHARE, ANALYZE_START = 0.3, 0.35
SHARD_TARGET_BYTES = 256 * 1024 * 1024
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


@dataclass
class ConvertedFile:
    path: str  # in the convert branch
    local: Path
    num_rows: int
    row_groups: list[int]
    oid: str = ""
    size: int = 0

    def record(self) -> ParquetFileRecord:
        return ParquetFileRecord(
            path=self.path, oid=self.oid, size=self.size, num_rows=self.num_rows, row_groups=tuple(self.row_groups)
        )


@dataclass
class SplitResult:
    config: str
    split: str
    status: str = "ok"  # ok | failed
    error: str | None = None
    num_rows: int = 0
    num_bytes_memory: int = 0
    features: dict[str, Any] = field(default_factory=dict)
    files: list[ConvertedFile] = field(default_factory=list)
    statistics: list[ColumnStatistics] = field(default_factory=list)
    search_index: str | None = None
    statistics_error: str | None = None
    index_error: str | None = None
    progress: Any = None  # step(fraction, message) while it is analysed

    def record(self) -> SplitRecord:
        """What is stored for the split (``viewer.records``)."""
        return SplitRecord(
            config=self.config,
            split=self.split,
            status=self.status,
            error=self.error,
            num_rows=self.num_rows,
            num_columns=len(self.features),
            num_bytes_parquet_files=sum(f.size for f in self.files),
            num_bytes_memory=self.num_bytes_memory,
            features=self.features,
            files=tuple(f.record() for f in self.files),
            statistics=tuple(self.statistics),
            search_index=self.search_index,
            statistics_error=self.statistics_error,
            index_error=self.index_error,
        )


class Progress:
    """Bytes of source read so far, against the total, reported to the job."""

    def __init__(self, report: Any, total: int) -> None:
        self.report, self.total, self.done = report, max(total, 1), 0

    def advance(self, amount: int, message: str) -> None:
        self.done += amount
        self.report(CONVERT_SHARE * min(self.done / self.total, 1.0), message)


def run_conversion_job(hub: Hub, job_id: int, report: Any) -> str:
    from hubstead.jobs.execute import JobFailed
    from hubstead.jobs.models import Job
    from hubstead.jobs.service import workdir_of
    from hubstead.viewer.store import record_conversion

    with hub.db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        repo = session.get(Repo, job.repo_pk)
        if repo is None:
            raise JobFailed("The dataset was deleted")
        revision, storage_key, repo_pk = job.revision, repo.storage_key, repo.pk
    # Everything the job writes goes under its work directory (on the data dir's disk, not /tmp, which is
    # often a small RAM-backed filesystem): spill files (CSV and JSON are read to the end before their
    # rows are written) and the shards; paths built from config and split names go through safe_join.
    jobdir = workdir_of(hub.settings, job_id)
    jobdir.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(jobdir)
    git = GitRepo(repo_path(hub.settings.repos_dir, storage_key))
    commit = git.resolve(revision)
    files = {
        e.path: file_info(git, e.path, e.oid) for e in iter_entries(git, commit, "", recursive=True) if e.type == "file"
    }
    card = None
    if "README.md" in files and files["README.md"].lfs is None:
        card = parse_card_yaml(git.read_blob(pygit2.Oid(hex=files["README.md"].blob_id)).decode("utf-8", "replace"))
    try:
        configs = plan(sorted(files), card)
    except LayoutError as exc:
        record_conversion(
            hub, repo_pk, source_commit=str(commit.id), parquet_commit=None, status="failed", error=str(exc), configs=[]
        )
        raise JobFailed(str(exc)) from exc
    total = sum(files[f].size for c in configs for s in c.splits for f in s.files if f in files)
    progress = Progress(report, total)
    workdir = Path(tempfile.mkdtemp(prefix="convert-", dir=jobdir))
    try:
        results: list[tuple[ConfigPlan, list[SplitResult]]] = []
        for config in configs:
            split_results = []
            for split in config.splits:
                report(
                    CONVERT_SHARE * progress.done / progress.total, f"Converting {config.name}/{split.name}", force=True
                )
                split_results.append(_convert_split(hub, git, files, config, split, workdir, progress))
            results.append((config, split_results))
        converted = [r for _, rs in results for r in rs if r.status == "ok"]
        report(CONVERT_SHARE + 0.02, "Committing Parquet files", force=True)
        parquet_commit = _commit_shards(hub, repo_pk, git, converted, str(commit.id)) if converted else None
        rows_total = max(sum(r.num_rows for r in converted), 1)
        rows_done = 0
        for result in converted:

            def step(fraction: float, message: str, result: SplitResult = result, before: int = rows_done) -> None:
                share = (before + fraction * result.num_rows) / rows_total
                report(ANALYZE_START + (0.99 - ANALYZE_START) * share, message, force=True)

            result.progress = step
            rows_done += result.num_rows
            _analyze(hub, storage_key, parquet_commit or "", result)
        failed = [r for _, rs in results for r in rs if r.status != "ok"]
        status = "ok" if not failed else ("partial" if converted else "failed")
        error = "; ".join(f"{r.config}/{r.split}: {r.error}" for r in failed) or None
        record_conversion(
            hub,
            repo_pk,
            source_commit=str(commit.id),
            parquet_commit=parquet_commit,
            status=status,
            error=error,
            configs=[
                ConfigRecord(config=c.name, builder=c.builder, default=c.default, splits=tuple(r.record() for r in rs))
                for c, rs in results
            ],
        )
        if parquet_commit:  # only now: until the new conversion was recorded, pages still read the old files
            _remove_stale_indexes(hub, storage_key, parquet_commit)
        if status == "failed":
            raise JobFailed(error or "Nothing could be converted")
        return "succeeded"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- one split ------------------------------------------------------------------------------------


def _local_file(hub: Hub, git: GitRepo, info: FileInfo, scratch: Path) -> tuple[Path, bool]:
    """A path to read the file from, and whether it is a temporary copy."""
    if info.lfs is not None:
        local = readable_path(hub.blobs, info.lfs.oid)
        if local is not None:
            return local, False
        from hubstead.xet.cas.reader import stream_file, xet_backed

        with hub.db.session() as session:
            backed = xet_backed(session, info.lfs.oid)
        if backed is None:
            raise SourceError(f"{info.path}: its LFS object is missing from storage")
        target = scratch / hashlib.sha256(info.path.encode()).hexdigest()
        with open(target, "wb") as out:
            for chunk in stream_file(hub.xorbs, backed, 0, backed.size - 1):
                out.write(chunk)
        return target, True
    target = scratch / hashlib.sha256(info.path.encode()).hexdigest()
    target.write_bytes(git.read_blob(pygit2.Oid(hex=info.blob_id)))
    return target, True


class ShardWriter:
    """Parquet shards for one split: small row groups, a new file every ~256 MB of data."""

    def __init__(self, folder: Path, branch_folder: str, features: dict[str, Any], schema: pa.Schema) -> None:
        self.folder, self.branch_folder = folder, branch_folder
        self.schema = with_features(schema, features)
        self.files: list[ConvertedFile] = []
        self.writer: pq.ParquetWriter | None = None
        self.row_group_rows = 0
        self.bytes_in_shard = 0
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if not self.row_group_rows:
            per_row = max(batch.nbytes / batch.num_rows, 1.0)
            self.row_group_rows = int(min(max(ROW_GROUP_TARGET_BYTES / per_row, 8), 20_000))
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self.pending, schema=self.pending[0].schema)
        group, rest = table.slice(0, rows), table.slice(rows)
        if self.writer is None:
            number = len(self.files)
            local = self.folder / f"{number:04d}.parquet"
            local.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(local, self.schema, compression="snappy", write_statistics=True)
            self.files.append(ConvertedFile(f"{self.branch_folder}/{number:04d}.parquet", local, 0, []))
        self.writer.write_table(group.cast(self.schema), row_group_size=max(group.num_rows, 1))
        current = self.files[-1]
        current.num_rows += group.num_rows
        current.row_groups.append(group.num_rows)
        self.bytes_in_shard += group.nbytes
        self.pending = rest.to_batches()
        self.pending_rows = rest.num_rows
        if self.bytes_in_shard >= SHARD_TARGET_BYTES:
            self.writer.close()
            self.writer, self.bytes_in_shard = None, 0

    def close(self) -> list[ConvertedFile]:
        if self.pending_rows:
            self._flush(self.pending_rows)
        if self.writer is not None:
            self.writer.close()
        return self.files


def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    """Give ``batch`` the split's schema: same columns in the same order, same types (or refuse in words)."""
    extra = [c for c in batch.schema.names if c not in schema.names]
    if extra:
        raise SourceError(f"{name} has columns the split's first file does not: {', '.join(extra)}")
    columns = []
    for field_ in schema:
        if field_.name not in batch.schema.names:
            columns.append(pa.nulls(batch.num_rows, field_.type))
            continue
        column = batch.column(batch.schema.get_field_index(field_.name))
        if column.type != field_.type:
            try:
                column = column.cast(field_.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SourceError(
                    f"Column {field_.name!r} is {column.type} in {name} but {field_.type} in the split's first file"
                ) from exc
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema.remove_metadata())


def _convert_split(
    hub: Hub,
    git: GitRepo,
    files: dict[str, FileInfo],
    config: ConfigPlan,
    split: SplitPlan,
    workdir: Path,
    progress: Progress,
) -> SplitResult:
    result = SplitResult(config.name, split.name)
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    writer: ShardWriter | None = None
    schema: pa.Schema | None = None
    try:
        for batch, name, size in _batches(hub, git, files, config, split, scratch):
            if schema is None:
                schema = batch.schema.remove_metadata()
                labels, media = _special_columns(config, batch)
                result.features = features_of(batch.schema, labels=labels, media=media)
                writer = ShardWriter(
                    safe_join(workdir, config.name, split.name), f"{config.name}/{split.name}", result.features, schema
                )
            else:
                batch = _conform(batch, schema, name)
            assert writer is not None
            writer.write(batch)
            result.num_rows += batch.num_rows
            result.num_bytes_memory += batch.nbytes
            if size:
                progress.advance(size, f"Converting {config.name}/{split.name}: {result.num_rows:,} rows")
        if writer is None:
            raise SourceError("The split has no rows: every file is empty")
        result.files = writer.close()
    except SourceError as exc:
        result.status, result.error, result.files = "failed", str(exc), []
    return result


def _special_columns(config: ConfigPlan, batch: pa.RecordBatch) -> tuple[dict[str, list[str]], dict[str, str]]:
    labels = config.options.get("label_names")
    media = (
        {"image": "Image"}
        if config.builder == "imagefolder"
        else {"audio": "Audio"}
        if config.builder == "audiofolder"
        else {}
    )
    existing = existing_features(batch.schema) or {}
    for name, feature in existing.items():
        if isinstance(feature, dict) and feature.get("_type") in ("Image", "Audio"):
            media[name] = feature["_type"]
    return ({"label": labels} if labels else {}), media


def _batches(
    hub: Hub, git: GitRepo, files: dict[str, FileInfo], config: ConfigPlan, split: SplitPlan, scratch: Path
) -> Iterator[tuple[pa.RecordBatch, str, int]]:
    """(batch, file name, bytes of source to count once the file is done)."""
    if config.builder in ("imagefolder", "audiofolder"):
        yield from _media_batches(hub, git, files, config, split, scratch)
        return
    for name in split.files:
        info = files[name]
        local, temporary = _local_file(hub, git, info, scratch)
        try:
            last, counted = None, 0
            for batch in read_batches(local, config.builder, config.options, name):
                if last is not None:
                    # Progress inside a big file: its Arrow size approximates the bytes read so far.
                    step = min(last.nbytes, max(info.size - counted - 1, 0))
                    counted += step
                    yield last, name, step
                last = batch
            if last is not None:
                yield last, name, info.size - counted
        finally:
            if temporary:
                local.unlink(missing_ok=True)


def _media_batches(
    hub: Hub, git: GitRepo, files: dict[str, FileInfo], config: ConfigPlan, split: SplitPlan, scratch: Path
) -> Iterator[tuple[pa.RecordBatch, str, int]]:
    """Image or audio folders: one row per file (a reference, not the bytes), a label from the folder
    name when files sit in class folders, and the columns of ``metadata.csv``/``.jsonl`` joined by file_name."""
    column = "image" if config.builder == "imagefolder" else "audio"
    media_files = [f for f in split.files if PurePosixPath(f).name not in METADATA_FILES]
    metadata = _metadata(hub, git, files, config, scratch)
    label_names = config.options.get("label_names")
    if label_names is None and not metadata:
        all_parents = sorted(
            {
                PurePosixPath(f).parent.name
                for s in config.splits
                for f in s.files
                if PurePosixPath(f).name not in METADATA_FILES
            }
        )
        label_names = all_parents if len(all_parents) > 1 else []
        config.options["label_names"] = label_names
    rows: list[dict[str, Any]] = []
    for path in media_files:
        row: dict[str, Any] = {column: {"bytes": None, "path": path}}
        if label_names:
            row["label"] = label_names.index(PurePosixPath(path).parent.name)
        row.update(metadata.get(path, {}))
        rows.append(row)
        if len(rows) >= BATCH_ROWS:
            yield _media_batch(rows, column), path, 0
            rows = []
    if rows:
        yield _media_batch(rows, column), media_files[-1], sum(files[f].size for f in split.files)


def _media_batch(rows: list[dict[str, Any]], column: str) -> pa.RecordBatch:
    batch = pa.RecordBatch.from_pylist(rows)
    index = batch.schema.get_field_index(column)
    return batch.set_column(index, pa.field(column, MEDIA_STRUCT), batch.column(index).cast(MEDIA_STRUCT))


def _metadata(
    hub: Hub, git: GitRepo, files: dict[str, FileInfo], config: ConfigPlan, scratch: Path
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for meta in config.options.get("metadata", []):
        info = files[meta]
        local, temporary = _local_file(hub, git, info, scratch)
        builder = "csv" if meta.endswith(".csv") else "json"
        folder = str(PurePosixPath(meta).parent)
        try:
            for batch in read_batches(local, builder, {}, meta):
                for row in batch.to_pylist():
                    name = row.pop("file_name", None)
                    if isinstance(name, str):
                        out[f"{folder}/{name}" if folder != "." else name] = row
        finally:
            if temporary:
                local.unlink(missing_ok=True)
    return out


# --- committing and analysing ---------------------------------------------------------------------


def _commit_shards(hub: Hub, repo_pk: int, git: GitRepo, results: list[SplitResult], source_commit: str) -> str:
    """Move every shard into the blob store and commit them all to ``refs/convert/parquet``."""
    for result in results:
        for shard in result.files:
            digest = hashlib.sha256()
            with open(shard.local, "rb") as handle:
                while chunk := handle.read(8 * 1024 * 1024):
                    digest.update(chunk)
            shard.oid, shard.size = digest.hexdigest(), shard.local.stat().st_size
            if hub.blobs.exists(shard.oid):
                shard.local.unlink()
            else:
                hub.blobs.put_file(shard.oid, shard.local)
    with repo_write_lock(git.path, CONVERT_REF):  # commits to the repo's branches go on meanwhile
        fresh = GitRepo(git.path)
        editor = fresh.editor(None)
        editor.put_file(".gitattributes", fresh.write_blob(GITATTRIBUTES))
        for result in results:
            for shard in result.files:
                editor.put_file(shard.path, fresh.write_blob(LfsPointer(oid=shard.oid, size=shard.size).to_bytes()))
        tree = editor.write(fresh.repo)
        parent = fresh.branch_head(CONVERT_REF)
        message = f"Update parquet files\n\nConverted from {source_commit}\n"
        commit = fresh.write_commit(
            tree=tree,
            parents=[parent] if parent else [],
            message=message,
            author=Author(name="hubstead", email=f"parquet-converter@{hub.settings.git_author_email_domain}"),
        )
        fresh.update_ref(CONVERT_REF, commit, message="parquet conversion")
    with hub.db.session() as session:
        record_lfs_objects(session, repo_pk, {shard.oid: shard.size for result in results for shard in result.files})
    return str(commit)


def _analyze(hub: Hub, storage_key: str, parquet_commit: str, result: SplitResult) -> None:
    from hubstead.viewer.search import build_search_index
    from hubstead.viewer.statistics import compute_statistics

    paths = [readable_path(hub.blobs, f.oid) for f in result.files]
    local = [p for p in paths if p is not None]
    started = time.monotonic()
    label = f"{result.config}/{result.split}"
    if result.progress:
        result.progress(0.0, f"Column statistics of {label}")
    try:
        result.statistics = compute_statistics(local, result.features)
    except Exception as exc:  # noqa: BLE001 - rows stay viewable without statistics
        log.exception("statistics of %s/%s failed", result.config, result.split)
        result.statistics_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    target = safe_join(
        hub.settings.data_dir / "viewer", storage_key, parquet_commit, result.config, f"{result.split}.duckdb"
    )
    if result.progress:
        result.progress(0.15, f"Search and filter index of {label} ({result.num_rows:,} rows; the longest step)")
    try:
        build_search_index(local, result.features, target)
        result.search_index = os.path.relpath(target, hub.settings.data_dir)
    except Exception as exc:  # noqa: BLE001 - rows stay viewable without search and filter
        log.exception("indexing %s/%s failed", result.config, result.split)
        result.index_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    log.info("analyzed %s/%s in %.1fs", result.config, result.split, time.monotonic() - started)


def _remove_stale_indexes(hub: Hub, storage_key: str, parquet_commit: str) -> None:
    """Earlier conversions' DuckDB files (about the size of the data each) go once the new one is recorded."""
    root = hub.settings.data_dir / "viewer" / storage_key
    for child in root.iterdir() if root.is_dir() else []:
        if child.name != parquet_commit:
            shutil.rmtree(child, ignore_errors=True)
