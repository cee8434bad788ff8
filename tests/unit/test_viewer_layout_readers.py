"""Pure parts of the viewer: how configs and splits are found, and how readers cope with bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubstead.viewer import readers
from hubstead.viewer.layout import LayoutError, matches, plan
from hubstead.viewer.readers import SourceError, read_batches


def _splits(paths: list[str], card: dict | None = None) -> dict[str, list[str]]:  # type: ignore[type-arg]
    (config,) = plan(paths, card)
    return {s.name: s.files for s in config.splits}


def test_splits_follow_the_datasets_library_rules() -> None:
    assert _splits(["train.csv", "test.csv", "dev.csv"]) == {"train": ["train.csv"], "validation": ["dev.csv"], "test": ["test.csv"]}
    assert _splits(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]) == {
        "train": ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]}
    # Folder names beat file names; files with no split keyword all go to train.
    assert _splits(["test/a_train.csv", "train/b.csv"]) == {"train": ["train/b.csv"], "test": ["test/a_train.csv"]}
    assert _splits(["a.jsonl", "b.jsonl"]) == {"train": ["a.jsonl", "b.jsonl"]}
    assert _splits(["my-valid-2.jsonl", "x_training.jsonl"]) == {"train": ["x_training.jsonl"], "validation": ["my-valid-2.jsonl"]}
    assert matches("**/train[-._ 0-9]*", "sub/train-01.csv") and not matches("**/train[-._ 0-9]*", "constrain.csv")


def test_the_most_common_format_wins_and_tsv_gets_tabs() -> None:
    (config,) = plan(["a.tsv", "b.tsv", "README.md", "notes.txt"])
    assert config.builder == "csv" and config.options["sep"] == "\t"
    (images,) = plan(["train/cat/1.png", "train/dog/2.jpg", "train/metadata.csv"])
    assert images.builder == "imagefolder" and images.options["metadata"] == ["train/metadata.csv"]
    with pytest.raises(LayoutError, match="No data files"):
        plan(["README.md", "model.bin"])


def test_card_configs_win() -> None:
    card = {"configs": [{"config_name": "a", "data_files": [{"split": "train", "path": "x/*.csv"}, {"split": "test", "path": "y.csv"}]},
                        {"config_name": "b", "data_dir": "z"}]}
    configs = plan(["x/1.csv", "x/2.csv", "y.csv", "z/train.csv", "z/test.csv"], card)
    assert [(c.name, [(s.name, s.files) for s in c.splits]) for c in configs] == [
        ("a", [("train", ["x/1.csv", "x/2.csv"]), ("test", ["y.csv"])]),
        ("b", [("train", ["z/train.csv"]), ("test", ["z/test.csv"])]),
    ]
    with pytest.raises(LayoutError, match="no file matches"):
        plan(["a.csv"], {"configs": [{"config_name": "c", "data_files": "missing/*.csv"}]})


def test_readers_explain_bad_files(tmp_path: Path) -> None:
    ragged = tmp_path / "r.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(SourceError, match="r.csv"):
        list(read_batches(ragged, "csv", {}, "r.csv"))
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(SourceError, match="b.jsonl"):
        list(read_batches(broken, "json", {}, "b.jsonl"))
    mixed = tmp_path / "m.jsonl"
    mixed.write_text('{"a": 1}\n' * 3 + '{"a": "x"}\n')
    rows = [r for batch in read_batches(mixed, "json", {}, "m.jsonl") for r in batch.to_pylist()]
    assert rows == [{"a": "1"}, {"a": "1"}, {"a": "1"}, {"a": "x"}]
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert list(read_batches(empty, "csv", {}, "e.csv")) == []


def test_huge_json_arrays_are_refused_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    array = tmp_path / "big.json"
    array.write_text("[" + ",".join('{"a": 1}' for _ in range(2000)) + "]")
    monkeypatch.setattr(readers, "MAX_JSON_ARRAY_BYTES", 1000)
    with pytest.raises(SourceError, match="JSON Lines"):
        list(read_batches(array, "json", {}, "big.json"))
