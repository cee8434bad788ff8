"""The dataset viewer API's answers, typed: one TypedDict per shape ``viewer.routes`` returns.

The shapes are the Hugging Face dataset viewer's (``/splits``, ``/first-rows``, ``/rows``, ``/search``,
``/filter``, ``/statistics``, ``/info``, ``/size``, ``/parquet``, ``/is-valid``), which the ``datasets``
library and scripts read; keys are spelled here once. ``pending`` and ``failed`` are always empty (a split
that failed to convert is listed by ``/splits`` only), hence ``list[Never]``.
"""

from __future__ import annotations

from typing import Any, Never, NotRequired, TypedDict

from hubstead.viewer.records import ColumnStatistics


class IsValidAnswer(TypedDict):
    preview: bool
    viewer: bool
    search: bool
    filter: bool
    statistics: bool


class SplitName(TypedDict):
    dataset: str
    config: str
    split: str


class ErrorBody(TypedDict):
    error: str | None


class FailedSplit(TypedDict):
    dataset: str
    config: str
    split: str
    error: ErrorBody


class SplitsAnswer(TypedDict):
    splits: list[SplitName]
    pending: list[Never]
    failed: list[FailedSplit]


class FeatureItem(TypedDict):
    feature_idx: int
    name: str
    type: Any  # the ``datasets`` feature JSON of the column


class RowItem(TypedDict):
    row_idx: int
    row: dict[str, Any]  # column name -> cell as the viewer shows it (``service.cell``)
    truncated_cells: list[str]


class FirstRowsAnswer(TypedDict):
    dataset: str
    config: str
    split: str
    features: list[FeatureItem]
    rows: list[RowItem]
    truncated: bool


class RowsAnswer(TypedDict):
    """``/rows``, ``/search`` and ``/filter``."""

    features: list[FeatureItem]
    rows: list[RowItem]
    num_rows_total: int
    num_rows_per_page: int
    partial: bool


class StatisticsAnswer(TypedDict):
    num_examples: int
    statistics: list[ColumnStatistics]
    partial: bool


class Version(TypedDict):
    version_str: str
    major: int
    minor: int
    patch: int


class SplitInfo(TypedDict):
    name: str
    num_bytes: int
    num_examples: int
    dataset_name: str


class ConfigInfo(TypedDict):
    """A config as ``datasets.DatasetInfo`` reads it."""

    description: str
    citation: str
    homepage: str
    license: str
    features: dict[str, Any]
    builder_name: str
    dataset_name: str
    config_name: str
    version: Version
    splits: dict[str, SplitInfo]
    download_size: int
    dataset_size: int


class ConfigInfoAnswer(TypedDict):
    """``/info?config=``."""

    dataset_info: ConfigInfo
    partial: bool


class DatasetInfoAnswer(TypedDict):
    """``/info`` without a config: every config by name."""

    dataset_info: dict[str, ConfigInfo]
    pending: list[Never]
    failed: list[Never]
    partial: bool


class SplitSize(TypedDict):
    dataset: str
    config: str
    split: str
    num_bytes_parquet_files: int
    num_bytes_memory: int
    num_rows: int
    num_columns: int


class ConfigSize(TypedDict):
    dataset: str
    config: str
    num_bytes_original_files: None
    num_bytes_parquet_files: int
    num_bytes_memory: int
    num_rows: int
    num_columns: int


class DatasetSize(TypedDict):
    dataset: str
    num_bytes_original_files: None
    num_bytes_parquet_files: int
    num_bytes_memory: int
    num_rows: int


class Sizes(TypedDict):
    """``dataset`` (the totals) without a config, ``config`` (its sizes) with one."""

    configs: list[ConfigSize]
    splits: list[SplitSize]
    dataset: NotRequired[DatasetSize]
    config: NotRequired[ConfigSize]


class SizeAnswer(TypedDict):
    size: Sizes
    pending: list[Never]
    failed: list[Never]
    partial: bool


class ParquetEntry(TypedDict):
    dataset: str
    config: str
    split: str
    url: str
    filename: str
    size: int


class ParquetAnswer(TypedDict):
    parquet_files: list[ParquetEntry]
    pending: list[Never]
    failed: list[Never]
    partial: bool


# ``/api/datasets/{id}/parquet[/{config}[/{split}]]``: URLs by config and split, one config's, or one split's.
ParquetTree = dict[str, dict[str, list[str]]]
HubParquetAnswer = ParquetTree | dict[str, list[str]] | list[str]


class SplitStatus(TypedDict):
    config: str
    split: str
    status: str
    error: str | None
    num_rows: int
    index_error: str | None
    statistics_error: str | None


class ConversionStatus(TypedDict):
    status: str
    error: str | None
    source_commit: str
    parquet_commit: str | None
    splits: list[SplitStatus]


class ViewerStatusAnswer(TypedDict):
    """``/api/datasets/{id}/viewer-status``: the conversion job's progress and the last result's summary."""

    job: dict[str, Any] | None  # ``jobs.service.job_json``
    conversion: ConversionStatus | None
