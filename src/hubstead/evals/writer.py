"""Writing an evaluation's results into the model repo, as the Hub keeps them: one ``.eval_results/<benchmark id,
"/" → "__">.yaml`` file per benchmark (one entry per task, signed by the hub: ``verifyToken``) and the same results
in the card's ``model-index`` (the older form, kept for the tools that read only it), in ONE commit on main by the
evaluator when they may write the model, else as a pull request.

The hub commits, never the job: the job's token cannot write someone else's model, and only the hub holds the key
that makes an entry "verified". ``build_*`` are pure (text in, text out); ``write_results`` commits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pygit2
import yaml
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.discussions import pulls
from hubstead.evals import signing
from hubstead.repos.cards import card_header, load_card_header, parse_card_yaml
from hubstead.repos.commits import prepare_blobs
from hubstead.repos.git import GitRepo
from hubstead.repos.models import Repo
from hubstead.repos.service import can_write, open_git

RESULTS_DIR = ".eval_results"
SOURCE_NAME = "Hubstead evaluation"
README = "README.md"
_READ_LIMIT = 4 * 2**20  # a larger old results file or card is not merged: the card loader refuses it anyway
# The model-index task type of each framework (hubstead and custom tasks say theirs in ``task_type``).
_FRAMEWORK_TASK_TYPES = {"mteb": "feature-extraction", "lm-eval": "text-generation"}


def results_path(benchmark_id: str) -> str:
    """The file the hub writes a benchmark's results to: ``.eval_results/<id with "/" → "__">.yaml``."""
    return f"{RESULTS_DIR}/{benchmark_id.replace('/', '__')}.yaml"


def label_value(repo_id: str) -> str:
    """A repo id as a job label's value (``/`` → ``__``)."""
    return repo_id.replace("/", "__")


@dataclass(frozen=True)
class TaskResult:
    """One task measured: ``task`` is the spec's task (``BenchmarkTask.as_json()``), ``value`` its metric."""

    task: dict[str, Any]
    value: float


@dataclass(frozen=True)
class Evaluation:
    """What a completed evaluation job measured, and who and what it was."""

    model_repo_pk: int
    model_id: str
    model_sha: str
    benchmark_id: str
    benchmark_sha: str
    benchmark_name: str
    framework: str
    job_id: str
    job_url: str
    evaluator: str
    date: str
    results: tuple[TaskResult, ...]
    limit: int | None = None
    num_fewshot: int | None = None


def notes(evaluation: Evaluation) -> str | None:
    parts = []
    if evaluation.limit is not None:
        parts.append(f"limit={evaluation.limit}")
    if evaluation.num_fewshot is not None:
        parts.append(f"num_fewshot={evaluation.num_fewshot}")
    return ", ".join(parts) or None


def entries(secret_key: str, evaluation: Evaluation) -> list[dict[str, Any]]:
    """The ``.eval_results`` entries of an evaluation (the client's ``eval_result_entries_to_yaml`` shape), each
    with the hub's ``verifyToken`` on it."""
    out = []
    note = notes(evaluation)
    for result in evaluation.results:
        task_id = str(result.task["id"])
        claims = signing.Claims(
            model_repo_pk=evaluation.model_repo_pk, model_id=evaluation.model_id, model_sha=evaluation.model_sha,
            dataset_id=evaluation.benchmark_id, task_id=task_id, value=result.value, job_id=evaluation.job_id,
            date=evaluation.date,
        )  # fmt: skip
        entry: dict[str, Any] = {
            "dataset": {"id": evaluation.benchmark_id, "task_id": task_id, "revision": evaluation.benchmark_sha},
            "value": result.value,
            "verifyToken": signing.sign(secret_key, claims),
            "date": evaluation.date,
            "source": {"url": evaluation.job_url, "name": SOURCE_NAME, "user": evaluation.evaluator},
        }
        if note:
            entry["notes"] = note
        out.append(entry)
    return out


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def build_results_file(old: bytes | None, secret_key: str, evaluation: Evaluation) -> str:
    """The results file after this evaluation: its entries replace those of the same benchmark and task; every
    other entry of the old file is kept as it was (a file that does not read as a YAML list is replaced)."""
    new = entries(secret_key, evaluation)
    measured = {(evaluation.benchmark_id, entry["dataset"]["task_id"]) for entry in new}
    kept: list[Any] = []
    if old:
        try:
            existing = load_card_header(old.decode("utf-8", errors="replace"))
        except Exception:  # noqa: BLE001 - an unreadable old file is replaced, never a reason to lose results
            existing = None
        for entry in existing if isinstance(existing, list) else []:
            dataset = entry.get("dataset") if isinstance(entry, dict) else None
            key = (dataset.get("id"), dataset.get("task_id")) if isinstance(dataset, dict) else None
            if key not in measured:
                kept.append(entry)
    return _dump(kept + new)


def task_type(framework: str, task: dict[str, Any]) -> str:
    """The model-index ``task.type`` of a benchmark task."""
    return str(task.get("task_type") or _FRAMEWORK_TASK_TYPES.get(framework) or "text-classification")


def model_index_results(evaluation: Evaluation) -> list[dict[str, Any]]:
    """The evaluation's results in the card's ``model-index`` shape (``results`` items)."""
    out = []
    for result in evaluation.results:
        task = result.task
        name = task.get("name") or f"{evaluation.benchmark_name} ({task['id']})"
        out.append({
            "task": {"type": task_type(evaluation.framework, task)},
            "dataset": {"name": name, "type": evaluation.benchmark_id, "config": task.get("config") or "default",
                        "split": task.get("split"), "revision": evaluation.benchmark_sha,
                        # The benchmark's task: a config may hold several tasks (the index reads it back from here).
                        "args": {"task_id": task["id"]}},
            "metrics": [{"type": task.get("metric") or "score", "value": result.value,
                         "name": f"{task.get('metric') or 'score'} ({task['id']})"}],
            "source": {"name": SOURCE_NAME, "url": evaluation.job_url},
        })
    return out


def _result_key(result: Any) -> tuple[Any, ...] | None:
    if not isinstance(result, dict):
        return None
    task, dataset = result.get("task"), result.get("dataset")
    if not isinstance(task, dict) or not isinstance(dataset, dict):
        return None
    return (task.get("type"), dataset.get("type"), dataset.get("name"), dataset.get("config"), dataset.get("split"))


def merge_model_index(model_index: Any, model_name: str, new: list[dict[str, Any]]) -> list[Any]:
    """``model-index`` with ``new`` results in it: a result of the same task type and dataset (name, type, config,
    split) has its metrics of the same type replaced; any other result, metric or model entry is kept."""
    index: list[Any] = [dict(entry) if isinstance(entry, dict) else entry
                        for entry in (model_index if isinstance(model_index, list) else [])]
    target = next((entry for entry in index if isinstance(entry, dict)), None)
    if target is None:
        target = {"name": model_name, "results": []}
        index.append(target)
    target.setdefault("name", model_name)
    results = [r for r in target.get("results") or []] if isinstance(target.get("results"), list) else []
    for item in new:
        key = _result_key(item)
        existing = next((r for r in results if _result_key(r) == key), None)
        if existing is None:
            results.append(item)
            continue
        at = results.index(existing)
        replaced = dict(existing)
        types = {metric["type"] for metric in item["metrics"]}
        old_metrics = existing.get("metrics") if isinstance(existing.get("metrics"), list) else []
        replaced["metrics"] = [m for m in old_metrics if not (isinstance(m, dict) and m.get("type") in types)]
        replaced["metrics"] += item["metrics"]
        replaced["source"] = item["source"]
        replaced["dataset"] = item["dataset"]
        results[at] = replaced
    target["results"] = results
    return index


def _split_card(readme: str) -> tuple[str | None, str]:
    """(the header's text or None, the body after it)."""
    header = card_header(readme)
    if header is None:
        return None, readme
    lines = readme.lstrip("\ufeff").splitlines(keepends=True)
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return header, "".join(lines[index + 1:])
    return None, readme


def build_card(readme: str | None, evaluation: Evaluation) -> str | None:
    """The card with the evaluation in its ``model-index`` (the rest of the header and the body kept), or None when
    its YAML header does not read as a mapping (it is the author's to fix; the card is left alone)."""
    text = readme or ""
    header, body = _split_card(text)
    if header is not None:
        data = parse_card_yaml(text)
        if data is None and header.strip():
            return None
        data = dict(data or {})
    else:
        data = {}
    name = evaluation.model_id.split("/")[-1]
    data["model-index"] = merge_model_index(data.get("model-index"), name, model_index_results(evaluation))
    if not body.strip():
        body = f"\n# {name}\n"
    return f"---\n{_dump(data)}---\n{body if body.startswith(chr(10)) else chr(10) + body}"


def _blob_bytes(git: GitRepo, commit: pygit2.Commit, path: str) -> bytes | None:
    obj = git.entry(commit, path)
    return obj.data if isinstance(obj, pygit2.Blob) and obj.size <= _READ_LIMIT else None


@dataclass(frozen=True)
class Written:
    """Where the results landed: a commit on main, or a pull request (``pull_request`` its number)."""

    commit: str
    url: str
    pull_request: int | None = None


def write_results(hub: Hub, session: Session, evaluator: Principal, model: Repo, evaluation: Evaluation,
                  ) -> tuple[Written, list[str]]:
    """Commit the results file and the card (one commit on main when ``evaluator`` may write the model, else a
    pull request), through the one commit path (``discussions.pulls.land``). Returns where it landed and what
    was left out, in words (a card whose header does not parse)."""
    git = open_git(hub, model)
    head = git.resolve("main")
    old_bytes = _blob_bytes(git, head, results_path(evaluation.benchmark_id))
    files = [(results_path(evaluation.benchmark_id),
              git.write_blob(build_results_file(old_bytes, hub.settings.secret_key, evaluation).encode()))]
    skipped: list[str] = []
    readme = _blob_bytes(git, head, README)
    card = build_card(readme.decode("utf-8", errors="replace") if readme is not None else None, evaluation)
    if card is None:
        skipped.append("model-index not updated: the card's YAML header does not parse")
    else:
        files.append((README, git.write_blob(card.encode())))
    writer = can_write(session, evaluator, model.namespace)
    summary = f"Evaluation results on {evaluation.benchmark_id}"
    description = (f"Measured by {evaluation.job_url} on commit {evaluation.model_sha} "
                   f"(benchmark revision {evaluation.benchmark_sha}).")
    outcome = pulls.land(
        hub, session, evaluator, repo=model, revision="main", create_pr=not writer,
        prepare=lambda: prepare_blobs(hub, evaluator, git, files=files, lfs_objects={}, summary=summary,
                                      description=description),
    )  # fmt: skip
    base = f"{hub.settings.external_url}/{model.repo_id}"
    if outcome.pull is not None and not writer:
        return Written(commit=outcome.result.commit_oid, url=f"{base}/discussions/{outcome.pull.num}",
                       pull_request=outcome.pull.num), skipped
    return Written(commit=outcome.result.commit_oid, url=f"{base}/commit/{outcome.result.commit_oid}"), skipped


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
