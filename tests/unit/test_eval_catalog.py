"""The benchmark catalog of ``hubstead import-benchmark``: every ``eval.yaml`` parses, its aggregate and baselines are
sane, and its ids, configs, splits and metrics are the ones the installed lm-eval and mteb use."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubstead.evals.benchmark import parse_benchmark
from hubstead.evals.catalog import CATALOG, MTEB, OPEN_LLM_V1, OPEN_LLM_V2, catalog_entry, catalog_lines


def test_every_entry_parses_with_sane_aggregate_and_baselines() -> None:
    """Each entry's eval.yaml, as the import writes it, is a valid benchmark; normalized-mean boards have a chance
    baseline in [0, 1) for every task, MTEB boards rank by Borda count, and the v2 set is the leaderboard's six."""
    assert {e.suite for e in CATALOG.values()} == {OPEN_LLM_V2, OPEN_LLM_V1, MTEB}
    for entry in CATALOG.values():
        benchmark = parse_benchmark(entry.eval_yaml_text())
        assert benchmark.framework == entry.framework
        assert [task.id for task in benchmark.tasks] == entry.task_ids
        assert all(task.higher_is_better for task in benchmark.tasks)
        if entry.suite == OPEN_LLM_V2:
            assert benchmark.aggregate == "normalized-mean", entry.name
            assert all(0 <= task.baseline < 1 for task in benchmark.tasks)
        elif entry.suite == MTEB:
            assert benchmark.aggregate == "borda" and benchmark.framework == "mteb"
            assert entry.revision and len(entry.revision) == 40
        else:
            assert benchmark.aggregate == "mean"
    v2 = {e.name for e in CATALOG.values() if e.suite == OPEN_LLM_V2}
    assert v2 == {"ifeval", "bbh", "math-hard", "gpqa", "musr", "mmlu-pro"}
    bbh = parse_benchmark(CATALOG["bbh"].eval_yaml_text())
    assert len(bbh.tasks) == 24
    assert bbh.task("boolean_expressions").baseline == 0.5  # type: ignore[union-attr]
    assert parse_benchmark(CATALOG["mmlu-pro"].eval_yaml_text()).tasks[0].baseline == 0.1
    assert {t.baseline for t in parse_benchmark(CATALOG["gpqa"].eval_yaml_text()).tasks} == {0.25}
    assert {t.baseline for t in parse_benchmark(CATALOG["math-hard"].eval_yaml_text()).tasks} == {0.0}


def test_lookup_and_listing() -> None:
    """A name is found by catalog name in any case or by Hub dataset id; --list shows each entry's id, framework,
    tasks."""
    assert catalog_entry("ARC-Challenge") is CATALOG["arc-challenge"]
    assert catalog_entry("mteb/stsbenchmark-sts") is CATALOG["stsbenchmark"]
    assert catalog_entry("no-such-benchmark") is None
    text = "\n".join(catalog_lines())
    for entry in CATALOG.values():
        line = next(line for line in text.splitlines() if line.split()[:1] == [entry.name])
        assert entry.dataset_id in line and entry.framework in line and entry.task_ids[0] in line


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _lm_eval_tasks() -> dict[str, dict[str, Any]]:
    """lm-eval's task configs by task name (``include`` resolved), for the task folders the catalog uses."""
    lm_eval = pytest.importorskip("lm_eval")
    root = Path(os.path.dirname(lm_eval.__file__)) / "tasks"
    folders = ["leaderboard/**", "arc", "hellaswag", "mmlu/default", "truthfulqa", "winogrande", "gsm8k"]
    raw: dict[Path, dict[str, Any]] = {}
    for folder in folders:
        for name in glob.glob(str(root / folder / "*yaml"), recursive=True):
            raw[Path(name)] = yaml.load(Path(name).read_text(), Loader=_Loader) or {}  # noqa: S506 - SafeLoader

    def resolved(path: Path) -> dict[str, Any]:
        data = dict(raw.get(path) or yaml.load(path.read_text(), Loader=_Loader) or {})  # noqa: S506
        include = data.pop("include", None)
        return {**resolved(path.parent / include), **data} if include else data

    tasks: dict[str, dict[str, Any]] = {}
    for path, data in raw.items():
        if isinstance(data.get("task"), str):
            tasks[data["task"]] = resolved(path)
        elif isinstance(data.get("group"), str):
            tasks[data["group"]] = {"group": True}
    return tasks


def test_lm_eval_entries_match_the_installed_lm_eval() -> None:
    """Each lm-eval task the catalog names exists in lm-eval with the catalog's dataset id, config, split and metric
    (and, for the v2 leaderboard tasks, few-shot count), and each BBH subtask's baseline is 1 / its number of
    choices."""
    known = _lm_eval_tasks()
    for entry in (e for e in CATALOG.values() if e.framework == "lm-eval"):
        for task in entry.eval_yaml["tasks"]:
            config = known.get(task["lm_eval_task"])
            assert config is not None, (entry.name, task["lm_eval_task"])
            if config.get("group"):
                continue
            assert config["dataset_path"] == entry.dataset_id, entry.name
            if config.get("dataset_name"):
                assert config["dataset_name"] == task.get("config", "default"), task
            split = config.get("test_split") or config.get("validation_split")
            assert split == task["split"], task
            if entry.suite == OPEN_LLM_V2:  # v1's few-shot counts are the leaderboard's, not lm-eval's defaults
                assert config.get("num_fewshot", 0) == task["num_fewshot"], task
            metrics = {m["metric"] for m in config.get("metric_list", [])}
            assert task["metric"] in metrics, (task, metrics)
            if entry.name == "bbh":
                assert task["baseline"] == round(1 / len(config["doc_to_choice"]), 6), task


def test_mteb_entries_match_the_installed_mteb() -> None:
    """Each MTEB entry's dataset id and pinned revision are mteb's metadata for that task, its split is one mteb
    evaluates and its metric mteb's main score."""
    mteb = pytest.importorskip("mteb")
    for entry in (e for e in CATALOG.values() if e.framework == "mteb"):
        (task,) = entry.eval_yaml["tasks"]
        metadata = mteb.get_task(task["mteb_task"]).metadata
        assert metadata.dataset["path"] == entry.dataset_id
        assert metadata.dataset["revision"] == entry.revision
        assert task["split"] in metadata.eval_splits
        assert task["metric"] == metadata.main_score


def test_the_snapshot_is_found_as_huggingface_hub_lays_it_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import reads the snapshot refs/main names (else the newest), in --cache-dir given as a hub cache or as an
    HF_HOME, else in $HF_HUB_CACHE or $HF_HOME/hub; a missing one names the folder looked at and the download."""
    from hubstead.errors import NotFoundError
    from hubstead.evals.importer import find_snapshot, hub_cache_dir

    entry = CATALOG["arc-challenge"]
    hub = tmp_path / "home" / "hub"
    folder = hub / "datasets--allenai--ai2_arc"
    for rev in ("a" * 40, "b" * 40):
        (folder / "snapshots" / rev).mkdir(parents=True)
    os.utime(folder / "snapshots" / ("a" * 40), (1, 1))
    assert find_snapshot(entry, hub) == (folder / "snapshots" / ("b" * 40), "b" * 40)  # no refs/main: the newest
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("a" * 40 + "\n")
    assert find_snapshot(entry, hub)[1] == "a" * 40
    assert find_snapshot(entry, tmp_path / "home")[1] == "a" * 40  # an HF_HOME holding hub/
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == hub
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(NotFoundError) as missing:
        find_snapshot(entry)
    assert str(tmp_path / "elsewhere" / "datasets--allenai--ai2_arc") in missing.value.message
    assert "huggingface-cli download --repo-type dataset allenai/ai2_arc" in missing.value.message
