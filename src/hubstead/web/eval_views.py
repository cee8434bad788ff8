"""What the evaluation pages show, from what ``evals.service`` and ``evals.leaderboard`` answer: the form's fields as
``submit_evaluation``'s form, a benchmark choice as the picker lists it, a run's tasks with their progress, a
score in a few digits, and a model's results as its card's box lists them (pure: no database, no requests)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hubstead.evals.spec import LABEL, MAX_FEWSHOT, MAX_LIMIT

# The form's fields that go to ``submit_evaluation`` as typed (numbers are its to check, in words).
TEXT_FIELDS = ("revision", "benchmark", "flavor", "namespace")
NUMBER_FIELDS = ("limit", "num_fewshot", "batch_size", "timeout")
STATUS_LABELS = {
    "verified": ("Verified", "ok", "Measured by this hub's evaluation job: its signature checks"),
    "self-reported": ("Self-reported", "idle", "Written by a user, not measured by this hub"),
    "stale": ("Stale", "busy", "Verified on an earlier commit: the model's main has moved since"),
    "invalid": ("Invalid", "error", "This entry cannot be read"),
}


def _number(text: str) -> int | float | str:
    """A typed number as a number (what the service bounds and refuses in words), else the text as typed."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def form_to_request(model_id: str, fields: dict[str, str], tasks: list[str]) -> dict[str, Any]:
    """The page's fields as ``submit_evaluation``'s form (empty fields left out: the service's defaults apply)."""
    form: dict[str, Any] = {"model": model_id}
    for key in TEXT_FIELDS:
        value = (fields.get(key) or "").strip()
        if value:
            form[key] = value
    for key in NUMBER_FIELDS:
        value = (fields.get(key) or "").strip()
        if value:
            form[key] = _number(value)
    chosen = [task.strip() for task in tasks if task.strip()]
    if chosen:
        form["tasks"] = chosen
    return form


def score(value: Any) -> str:
    """A score in at most four significant digits (``0.8125``, ``71.25``), or a dash when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def percent(done: Any, total: Any) -> int:
    """How far a task is, 0..100 (0 when nothing is known yet)."""
    if not isinstance(done, int | float) or not isinstance(total, int | float) or total <= 0:
        return 0
    return max(0, min(100, int(round(100 * done / total))))


def choice(entry: dict[str, Any]) -> dict[str, Any]:
    """One benchmark as the picker lists it: id, name, framework, its tasks, and why it does not fit (if so)."""
    tasks = [task if isinstance(task, dict) else {"id": str(task)} for task in entry.get("tasks") or []]
    return {
        "id": entry.get("id") or entry.get("benchmark") or "",
        "name": entry.get("name") or entry.get("id") or "",
        "framework": entry.get("framework") or entry.get("evaluation_framework") or "",
        "description": entry.get("description") or "",
        "tasks": tasks,
        "reason": entry.get("reason") or entry.get("unfit") or entry.get("error"),
        "private": bool(entry.get("private")),
    }


def task_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's tasks with their progress bar's width and their score as text."""
    rows = []
    for task in view.get("tasks") or []:
        done, total = task.get("done"), task.get("total")
        value = task.get("value")
        finished = value is not None
        rows.append({**task, "percent": 100 if finished else percent(done, total), "score": score(value),
                     "finished": finished})
    return rows


# The hub's last word on a completed run's results, in its log (``evals.service.finish``, or ``compute.ends`` when
# the follower raised): until one is there, the results are still being written.
RESULTS_SETTLED = ("==> Results ", f"==> {LABEL}: ")
SETTLE_WAIT = timedelta(minutes=5)
RESULTS_FOLDER = ".eval_results/"
CARD_FILE = "README.md"


def writing_results(view: dict[str, Any], finished_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a COMPLETED run's results are still being written into the model (the hub does it just after the
    job's stage is stored): the run page keeps following it until the commit or pull request, or the reason none
    was written, is in the log; at most ``SETTLE_WAIT`` after the end (a hub stopped in between never says)."""
    if view.get("stage") != "COMPLETED" or view.get("results"):
        return False
    if any(line.startswith(RESULTS_SETTLED) for line in view.get("logTail") or []):
        return False
    if finished_at is None:
        return False
    ended = finished_at if finished_at.tzinfo else finished_at.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - ended < SETTLE_WAIT


def status_of(result: dict[str, Any]) -> str:
    """``invalid``, ``stale``, ``verified`` or ``self-reported``: the one word a result's badge says."""
    if result.get("error"):
        return "invalid"
    if result.get("verified") and result.get("stale"):
        return "stale"
    if result.get("verified"):
        return "verified"
    return "self-reported"


def result_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A model's results as its card's box lists them: benchmark (and its leaderboard's link), task, score, rank,
    and the badge (verified / self-reported / stale / invalid with its reason); ``results`` are
    ``evals.leaderboard.model_results``'s. A benchmark the viewer may not read is named as the file names it, with
    no link and no rank. Where ``.eval_results/`` holds a benchmark's results, the card's ``model-index`` entries
    for that benchmark (the same results in the older form the hub also writes) are not listed again."""
    rows = []
    measured = {r.get("dataset_id") for r in results if str(r.get("filename") or "").startswith(RESULTS_FOLDER)}
    for result in results:
        if result.get("filename") == CARD_FILE and result.get("dataset_id") in measured:
            continue  # the card's model-index is the older form of the same results: listed once, from the file
        status = status_of(result)
        label, kind, hint = STATUS_LABELS[status]
        dataset = result.get("dataset_id") or ""
        board = result.get("benchmark_id")  # None unless a benchmark the viewer may read
        rows.append({
            "dataset": dataset,
            "benchmark_name": result.get("benchmark_name") or dataset or "?",
            "board_url": f"/datasets/{board}/leaderboard" if board else None,
            "task": result.get("task_id") or "",
            "score": score(result.get("value")),
            "rank": result.get("rank"),
            "ranked": result.get("ranked"),
            "status": status,
            "label": label,
            "kind": kind,
            "hint": result.get("error") if status == "invalid" else hint,
            "source": result.get("source") or {},
            "pull_request": result.get("pull_request"),
        })
    return rows


def limits() -> dict[str, int]:
    """The form's bounds (the service checks them again: these only guide the inputs)."""
    return {"limit": MAX_LIMIT, "num_fewshot": MAX_FEWSHOT}
