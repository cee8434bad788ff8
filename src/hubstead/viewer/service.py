"""Reading a converted dataset: splits, pages of rows, search, filter, statistics, sizes.

Rows come straight from the Parquet shards: the row-group sizes recorded at conversion say which
group holds a given row, so a page reads one or two ~1 MB row groups whatever the dataset's size.
Search and filter run in the split's DuckDB file (``viewer.search``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import mimetypes
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.errors import HubError
from hubstead.jobs.kinds import DATASET_CONVERSION
from hubstead.jobs.models import Job
from hubstead.jobs.service import latest
from hubstead.repos.models import Repo
from hubstead.storage.base import readable_path
from hubstead.viewer.answers import FeatureItem, RowItem
from hubstead.viewer.records import ConfigRecord, ParquetFileRecord, SplitRecord
from hubstead.viewer.store import DatasetConversion, load_conversion

if TYPE_CHECKING:
    from hubstead.viewer.builder import Condition
    from hubstead.viewer.filters import Compiled
    from hubstead.viewer.search import FilteredColumn

MAX_LENGTH = 100
FIRST_ROWS = 100
FIRST_ROWS_MAX_BYTES = 1_000_000
CELL_TRUNCATE_BYTES = 10_000


class ViewerError(HubError):
    """A viewer request that cannot be answered; ``error_code`` follows the Hub's viewer API."""

    def __init__(self, message: str, *, status_code: int = 404, code: str = "ResponseNotFound") -> None:
        super().__init__(message, status_code=status_code)
        self.error_code = code


@dataclass
class ViewerState:
    repo: Repo
    conversion: DatasetConversion | None
    job: Job | None
    configs: list[ConfigRecord]  # the conversion's records (none without one)

    @property
    def pending(self) -> bool:
        return self.job is not None and self.job.status in ("queued", "running")

    def splits(self) -> list[SplitRecord]:
        return [s for c in self.configs for s in c.splits]

    def split(self, config: str | None, split: str | None) -> SplitRecord:
        if not config or not split:
            raise ViewerError(
                "Parameters 'config' and 'split' are required", status_code=422, code="MissingRequiredParameter"
            )
        if self.conversion is None:
            if self.pending:
                raise ViewerError(
                    "The dataset is being converted; retry shortly", status_code=500, code="ResponseNotReady"
                )
            raise ViewerError("The dataset has not been converted", code="ResponseNotFound")
        for candidate in self.splits():
            if candidate.config == config and candidate.split == split:
                if not candidate.ok:
                    raise ViewerError(
                        f"The split could not be converted: {candidate.error}",
                        status_code=500,
                        code="SplitConversionError",
                    )
                return candidate
        configs = {c.config for c in self.configs}
        if config not in configs:
            raise ViewerError(f"Not found: config {config!r} does not exist; configs: {', '.join(sorted(configs))}")
        raise ViewerError(f"Not found: split {split!r} does not exist in config {config!r}")


def state_of(session: Session, repo: Repo) -> ViewerState:
    conversion = load_conversion(session, repo.pk)
    return ViewerState(
        repo=repo,
        conversion=conversion,
        job=latest(session, kind=DATASET_CONVERSION, repo_pk=repo.pk),
        configs=conversion.records() if conversion is not None else [],
    )


# --- rows ------------------------------------------------------------------------------------------


def _files(hub: Hub, split: SplitRecord) -> list[tuple[Path, ParquetFileRecord]]:
    out = []
    for entry in split.files:
        local = readable_path(hub.blobs, entry.oid)
        if local is None:
            raise ViewerError(
                "A Parquet file of this split is missing from storage", status_code=500, code="UnexpectedError"
            )
        out.append((local, entry))
    return out


def read_rows(hub: Hub, split: SplitRecord, offset: int, length: int) -> tuple[pa.Table, list[int]]:
    """Rows ``offset``..``offset+length`` of the split, reading only the row groups that hold them."""
    starts: list[tuple[int, Path, int]] = []  # (first row, file, row group)
    position = 0
    for local, entry in _files(hub, split):
        for group, count in enumerate(entry.row_groups):
            starts.append((position, local, group))
            position += count
    total = position
    end = min(offset + length, total)
    if offset >= total or length <= 0:
        return pa.table({}), []
    first = bisect_right([s[0] for s in starts], offset) - 1
    pieces = []
    index = first
    opened: dict[Path, pq.ParquetFile] = {}
    while index < len(starts) and starts[index][0] < end:
        start, local, group = starts[index]
        parquet = opened.setdefault(local, pq.ParquetFile(local))
        table = parquet.read_row_group(group)
        low = max(offset - start, 0)
        high = min(end - start, table.num_rows)
        pieces.append(table.slice(low, high - low))
        index += 1
    table = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
    return table, list(range(offset, end))


def take_rows(hub: Hub, split: SplitRecord, row_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Specific rows by index (search results), grouped by row group so each group is read once."""
    wanted = sorted(set(row_ids))
    out: dict[int, dict[str, Any]] = {}
    starts, position = [], 0
    for local, entry in _files(hub, split):
        for group, count in enumerate(entry.row_groups):
            starts.append((position, count, local, group))
            position += count
    cursor = 0
    opened: dict[Path, pq.ParquetFile] = {}
    for start, count, local, group in starts:
        inside = []
        while cursor < len(wanted) and wanted[cursor] < start + count:
            if wanted[cursor] >= start:
                inside.append(wanted[cursor])
            cursor += 1
        if not inside:
            continue
        parquet = opened.setdefault(local, pq.ParquetFile(local))
        table = parquet.read_row_group(group)
        for row_id in inside:
            out[row_id] = table.slice(row_id - start, 1).to_pylist()[0]
    return out


# --- search and filter (the API and the page share these) -------------------------------------------


def has_text(split: SplitRecord) -> bool:
    from hubstead.viewer.features import kind_of

    return any(kind_of(f) == "string" for f in split.features.values())


def searchable(split: SplitRecord) -> bool:
    """Whether full-text search can run on the split: it has a query index and a text column."""
    return bool(split.search_index) and has_text(split)


def index_of(hub: Hub, split: SplitRecord) -> Path:
    """The split's DuckDB file, or why search and filter are unavailable."""
    if not split.search_index:
        reason = split.index_error or "the split has no query index"
        raise ViewerError(
            f"Search and filter are unavailable for this split: {reason}", status_code=501, code="UnexpectedError"
        )
    return hub.settings.data_dir / split.search_index


def search_page(
    hub: Hub, split: SplitRecord, query: str, offset: int, length: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    """The best BM25 matches: (rows, their indices, how many match)."""
    from hubstead.viewer.features import kind_of
    from hubstead.viewer.search import search

    index = index_of(hub, split)
    if not has_text(split):
        raise ViewerError("This split has no text column to search", status_code=501, code="FeaturesError")
    text_columns = [name for name, feature in split.features.items() if kind_of(feature) == "string"]
    ids, total = search(index, query, offset, length, text_columns)
    found = take_rows(hub, split, ids)
    return [found[i] for i in ids], ids, total


def filter_page(
    hub: Hub, split: SplitRecord, where: str | None, orderby: str | None, offset: int, length: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    """Rows matching ``where`` sorted by ``orderby``; a filter that does not parse or apply is a 422."""
    import duckdb

    from hubstead.viewer.filters import FilterError
    from hubstead.viewer.search import filter_rows

    index = index_of(hub, split)
    try:
        return filter_rows(index, where, orderby, None, offset, length)
    except FilterError as exc:
        raise ViewerError(f"Invalid filter: {exc}", status_code=422, code="InvalidParameter") from exc
    except duckdb.Error as exc:  # type errors (text compared with a number, ...) are the caller's
        raise ViewerError(
            f"The filter cannot be applied: {str(exc).splitlines()[0]}", status_code=422, code="InvalidParameter"
        ) from exc


def _page_where(index: Path, where: str, conditions: list[Condition]) -> tuple[dict[str, str], Compiled | None]:
    from hubstead.viewer.builder import build_where
    from hubstead.viewer.filters import FilterError
    from hubstead.viewer.search import column_types

    columns = column_types(index)
    try:
        return columns, build_where(where, conditions, columns)
    except FilterError as exc:
        raise ViewerError(f"Invalid filter: {exc}", status_code=400, code="InvalidParameter") from exc


def page_filter(
    hub: Hub, split: SplitRecord, where: str, conditions: list[Condition], orderby: str, offset: int, length: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    """The viewer page's rows: the SQL box's ``where`` AND the filter builder's conditions, sorted by
    ``orderby``. Input that does not parse, names no column or does not fit the column's type is a 400."""
    import duckdb

    from hubstead.viewer.filters import FilterError
    from hubstead.viewer.search import filter_compiled

    index = index_of(hub, split)
    columns, compiled = _page_where(index, where, conditions)
    try:
        return filter_compiled(index, compiled, orderby, columns, offset, length)
    except FilterError as exc:
        raise ViewerError(f"Invalid sort: {exc}", status_code=400, code="InvalidParameter") from exc
    except duckdb.Error as exc:
        raise ViewerError(
            f"The filter cannot be applied: {str(exc).splitlines()[0]}", status_code=400, code="InvalidParameter"
        ) from exc


def page_statistics(
    hub: Hub, split: SplitRecord, where: str, conditions: list[Condition]
) -> tuple[int, bool, list[FilteredColumn]]:
    """Statistics of the rows the page's filter selects (a bounded sample: ``search.STATISTICS_SAMPLE``)."""
    import duckdb

    from hubstead.viewer.search import filtered_statistics

    index = index_of(hub, split)
    columns, compiled = _page_where(index, where, conditions)
    try:
        return filtered_statistics(index, compiled, columns)
    except duckdb.Error as exc:
        raise ViewerError(
            f"The filter cannot be applied: {str(exc).splitlines()[0]}", status_code=400, code="InvalidParameter"
        ) from exc


# --- shaping ---------------------------------------------------------------------------------------


def features_list(features: dict[str, Any]) -> list[FeatureItem]:
    return [{"feature_idx": i, "name": name, "type": feature} for i, (name, feature) in enumerate(features.items())]


def _asset_url(base_url: str, repo: Repo, commit: str, path: str) -> str:
    return f"{base_url}/datasets/{repo.repo_id}/resolve/{commit}/{quote(path)}"


def cell(value: Any, feature: Any, *, base_url: str, repo: Repo, source_commit: str) -> Any:
    """A value as the viewer API shows it: media as URLs, bytes as base64, dates as ISO strings."""
    kind = feature.get("_type") if isinstance(feature, dict) else None
    if kind == "Image" and isinstance(value, dict):
        if value.get("path"):
            return {"src": _asset_url(base_url, repo, source_commit, value["path"]), "height": None, "width": None}
        if value.get("bytes"):
            return {
                "src": "data:image/png;base64," + base64.b64encode(value["bytes"]).decode(),
                "height": None,
                "width": None,
            }
        return None
    if kind == "Audio" and isinstance(value, dict):
        path = value.get("path")
        if path:
            mime = mimetypes.guess_type(path)[0] or "audio/wav"
            return [{"src": _asset_url(base_url, repo, source_commit, path), "type": mime}]
        return None
    if isinstance(value, dict):
        sub = feature if isinstance(feature, dict) and "_type" not in feature else {}
        return {
            k: cell(v, sub.get(k), base_url=base_url, repo=repo, source_commit=source_commit) for k, v in value.items()
        }
    if isinstance(value, list):
        inner = feature.get("feature") if isinstance(feature, dict) else None
        return [cell(v, inner, base_url=base_url, repo=repo, source_commit=source_commit) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def row_items(
    records: list[dict[str, Any]],
    row_ids: list[int],
    features: dict[str, Any],
    *,
    base_url: str,
    repo: Repo,
    source_commit: str,
    truncate: bool = False,
) -> list[RowItem]:
    out: list[RowItem] = []
    for row_id, record in zip(row_ids, records, strict=True):
        row: dict[str, Any] = {}
        truncated: list[str] = []
        for name, feature in features.items():
            value = cell(record.get(name), feature, base_url=base_url, repo=repo, source_commit=source_commit)
            if truncate and isinstance(value, str) and len(value.encode()) > CELL_TRUNCATE_BYTES:
                value = value.encode()[:CELL_TRUNCATE_BYTES].decode("utf-8", "ignore")
                truncated.append(name)
            row[name] = value
        out.append({"row_idx": row_id, "row": row, "truncated_cells": truncated})
    return out
