"""The viewer's stored records (``viewer.records``) read and write the JSON the conversion has always stored.

``STORED`` is what the code before the typed records wrote to ``dataset_conversions.configs`` (produced by that
code's ``SplitResult.as_json`` on a three-row CSV split plus a failed split, and copied here), so rows already in
users' databases load, unchanged, without a migration.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hubstead.db import Database
from hubstead.repos.models import Repo
from hubstead.viewer.conversion import ConvertedFile, SplitResult
from hubstead.viewer.records import ColumnStatistics, ConfigRecord, ParquetFileRecord, SplitRecord
from hubstead.viewer.store import DatasetConversion, load_conversion

FEATURES: dict[str, Any] = {
    "text": {"dtype": "string", "_type": "Value"},
    "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
    "score": {"dtype": "float64", "_type": "Value"},
}
STATISTICS: list[ColumnStatistics] = [
    {
        "column_name": "text",
        "column_type": "string_label",
        "column_statistics": {
            "nan_count": 0,
            "nan_proportion": 0.0,
            "n_unique": 3,
            "frequencies": {"bad film": 1, "fine": 1, "good film": 1},
        },
    },
    {
        "column_name": "label",
        "column_type": "class_label",
        "column_statistics": {
            "nan_count": 0,
            "nan_proportion": 0.0,
            "no_label_count": 0,
            "no_label_proportion": 0.0,
            "n_unique": 2,
            "frequencies": {"neg": 1, "pos": 2},
        },
    },
    {
        "column_name": "score",
        "column_type": "float",
        "column_statistics": {
            "nan_count": 1,
            "nan_proportion": 0.33333,
            "min": 0.5,
            "max": 2.0,
            "mean": 1.25,
            "median": 1.25,
            "std": 1.06066,
            "histogram": {
                "hist": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "bin_edges": [0.5, 0.65, 0.8, 0.95, 1.1, 1.25, 1.4, 1.55, 1.7, 1.85, 2.0],
            },
        },
    },
]
STORED: list[dict[str, Any]] = [
    {
        "config": "default",
        "builder": "csv",
        "default": True,
        "splits": [
            {
                "config": "default",
                "split": "train",
                "status": "ok",
                "error": None,
                "num_rows": 3,
                "num_columns": 3,
                "num_bytes_parquet_files": 1234,
                "num_bytes_memory": 82,
                "features": FEATURES,
                "files": [
                    {
                        "path": "default/train/0000.parquet",
                        "oid": "ab" * 32,
                        "size": 1234,
                        "num_rows": 3,
                        "row_groups": [2, 1],
                    }
                ],
                "statistics": STATISTICS,
                "search_index": "viewer/0a1b/0123abcd/default/train.duckdb",
                "statistics_error": None,
                "index_error": None,
            },
            {
                "config": "default",
                "split": "test",
                "status": "failed",
                "error": "test.csv: line 3: expected 2 fields, saw 3",
                "num_rows": 0,
                "num_columns": 0,
                "num_bytes_parquet_files": 0,
                "num_bytes_memory": 0,
                "features": {},
                "files": [],
                "statistics": [],
                "search_index": None,
                "statistics_error": None,
                "index_error": None,
            },
        ],
    }
]


def test_a_stored_conversion_loads_into_the_types_and_serialises_back_identically() -> None:
    """The records read every field of a stored row, and ``to_json`` gives back the same JSON text (same keys,
    same order), so a row rewritten by the new code is byte-for-byte what the old code wrote."""
    records = [ConfigRecord.from_json(c) for c in STORED]
    (config,) = records
    train, test = config.splits
    assert (config.config, config.builder, config.default) == ("default", "csv", True)
    assert train.ok and not test.ok and test.error == "test.csv: line 3: expected 2 fields, saw 3"
    assert train.files == (
        ParquetFileRecord(path="default/train/0000.parquet", oid="ab" * 32, size=1234, num_rows=3, row_groups=(2, 1)),
    )
    assert train.files[0].filename == "0000.parquet"
    assert [s["column_name"] for s in train.statistics] == ["text", "label", "score"]
    assert train.search_index == "viewer/0a1b/0123abcd/default/train.duckdb" and test.search_index is None
    assert train.features == FEATURES
    assert json.dumps([c.to_json() for c in records]) == json.dumps(STORED)


def test_rows_of_the_first_version_load_without_the_later_keys() -> None:
    """The first viewer release stored splits without ``statistics_error`` and ``index_error``; such a row loads
    (both None) and is written back with the two keys as null, everything else unchanged."""
    old = copy.deepcopy(STORED)
    for split in old[0]["splits"]:
        del split["statistics_error"], split["index_error"]
    (config,) = [ConfigRecord.from_json(c) for c in old]
    assert all(s.statistics_error is None and s.index_error is None for s in config.splits)
    assert config.to_json() == STORED[0]


def test_the_conversion_writes_the_stored_shape() -> None:
    """The conversion job's results (``SplitResult.record``) serialise to exactly what the old ``as_json`` wrote."""
    train = SplitResult(
        "default",
        "train",
        num_rows=3,
        num_bytes_memory=82,
        features=copy.deepcopy(FEATURES),
        files=[ConvertedFile("default/train/0000.parquet", Path("/unused"), 3, [2, 1], oid="ab" * 32, size=1234)],
        statistics=copy.deepcopy(STATISTICS),
        search_index="viewer/0a1b/0123abcd/default/train.duckdb",
    )
    test = SplitResult("default", "test", status="failed", error="test.csv: line 3: expected 2 fields, saw 3")
    config = ConfigRecord(config="default", builder="csv", default=True, splits=(train.record(), test.record()))
    assert json.dumps(config.to_json()) == json.dumps(STORED[0])
    assert SplitRecord.from_json(train.record().to_json()) == train.record()


def test_a_row_in_the_database_reads_back_as_records(tmp_path: Path) -> None:
    """A ``dataset_conversions`` row holding the old JSON, in a migrated SQLite database, loads through
    ``load_conversion(...).records()`` and its column still holds the old JSON untouched."""
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    db.migrate()
    with db.session() as session:
        repo = Repo(repo_type="dataset", namespace="alice", name="films", id_key="alice/films", storage_key="k1")
        session.add(repo)
        session.flush()
        session.add(DatasetConversion(repo_pk=repo.pk, source_commit="c" * 40, status="partial", configs=STORED))
        pk = repo.pk
    with db.session() as session:
        row = load_conversion(session, pk)
        assert row is not None
        assert [c.to_json() for c in row.records()] == STORED
        assert row.records()[0].splits[0].files[0].row_groups == (2, 1)
    with db.engine.connect() as connection:
        (raw,) = connection.exec_driver_sql("SELECT configs FROM dataset_conversions").one()
    assert json.loads(raw) == STORED
