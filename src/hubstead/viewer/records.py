"""What a conversion keeps per config, split and Parquet file: the viewer's stored records, typed.

The conversion job (``viewer.conversion``) builds them, ``viewer.store`` keeps them as JSON in
``dataset_conversions.configs``, and the service, the API and the page read them back through these types.
``to_json`` writes exactly the shape the column has always held (key names and order), so rows written
by earlier versions load without a migration: ``from_json`` accepts them, including the first version's,
which had no ``statistics_error`` or ``index_error``.

``features`` is the ``datasets`` library's features JSON (nested, open-ended) and stays a plain dict; a
split's column statistics are in the dataset viewer's shapes (``ColumnStatistics``), answered as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


class Histogram(TypedDict):
    hist: list[int]
    bin_edges: list[int | float]


class ColumnStats(TypedDict, total=False):
    """One column's numbers; which keys are present depends on the column's kind (``viewer.statistics``)."""

    nan_count: int
    nan_proportion: float
    min: int | float | None
    max: int | float | None
    mean: float | None
    median: float | None
    std: float | None
    histogram: Histogram
    n_unique: int
    frequencies: dict[str, int]
    no_label_count: int
    no_label_proportion: float


class ColumnStatistics(TypedDict):
    column_name: str
    column_type: str  # int | float | class_label | bool | string_label | string_text | list | image | audio | datetime
    column_statistics: ColumnStats


@dataclass(frozen=True)
class ParquetFileRecord:
    """One shard on ``refs/convert/parquet``: its path there, LFS oid and size, rows, and rows per row group."""

    path: str
    oid: str
    size: int
    num_rows: int
    row_groups: tuple[int, ...]

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "oid": self.oid,
            "size": self.size,
            "num_rows": self.num_rows,
            "row_groups": list(self.row_groups),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParquetFileRecord:
        return cls(
            path=data["path"],
            oid=data["oid"],
            size=data["size"],
            num_rows=data["num_rows"],
            row_groups=tuple(data["row_groups"]),
        )


@dataclass(frozen=True)
class SplitRecord:
    """One split of one config: converted (``status`` ok, with files, features, statistics and the path of
    its DuckDB file under the data dir) or failed with the reason."""

    config: str
    split: str
    status: str  # ok | failed
    error: str | None
    num_rows: int
    num_columns: int
    num_bytes_parquet_files: int
    num_bytes_memory: int
    features: dict[str, Any]
    files: tuple[ParquetFileRecord, ...]
    statistics: tuple[ColumnStatistics, ...]
    search_index: str | None
    statistics_error: str | None = None
    index_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "split": self.split,
            "status": self.status,
            "error": self.error,
            "num_rows": self.num_rows,
            "num_columns": self.num_columns,
            "num_bytes_parquet_files": self.num_bytes_parquet_files,
            "num_bytes_memory": self.num_bytes_memory,
            "features": self.features,
            "files": [f.to_json() for f in self.files],
            "statistics": list(self.statistics),
            "search_index": self.search_index,
            "statistics_error": self.statistics_error,
            "index_error": self.index_error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SplitRecord:
        return cls(
            config=data["config"],
            split=data["split"],
            status=data["status"],
            error=data["error"],
            num_rows=data["num_rows"],
            num_columns=data["num_columns"],
            num_bytes_parquet_files=data["num_bytes_parquet_files"],
            num_bytes_memory=data["num_bytes_memory"],
            features=data["features"],
            files=tuple(ParquetFileRecord.from_json(f) for f in data["files"]),
            statistics=tuple(data["statistics"]),
            search_index=data["search_index"],
            statistics_error=data.get("statistics_error"),  # absent in the first version's rows
            index_error=data.get("index_error"),
        )


@dataclass(frozen=True)
class ConfigRecord:
    """One config (builder, whether it is the card's default) and its splits."""

    config: str
    builder: str
    default: bool
    splits: tuple[SplitRecord, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "builder": self.builder,
            "default": self.default,
            "splits": [s.to_json() for s in self.splits],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfigRecord:
        return cls(
            config=data["config"],
            builder=data["builder"],
            default=data["default"],
            splits=tuple(SplitRecord.from_json(s) for s in data["splits"]),
        )
