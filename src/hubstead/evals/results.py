"""Reading evaluation results the way the Hub keeps them in a model repo (pure: text in, entries out).

Two forms, both read by ``evals.index`` at the head of a model's main:

- ``.eval_results/*.yaml``: each a YAML list of entries ``{dataset: {id, task_id, revision?}, value,
  verifyToken?, date?, source?: {url, name?, user?, org?}, notes?}`` (``huggingface_hub._eval_results``);
- the card's ``model-index`` (the older, self-reported form): each result's ``dataset.type`` is the dataset id,
  ``dataset.config`` (or "default") the task id, and its first metric's value the value.

Nothing here raises on what a user wrote: a file that does not parse is ONE entry with ``error`` set, an entry
that is wrong is kept with ``error`` (the reason, in words) so pages can show it as "invalid: <reason>", and it
never ranks. Bounds: 64 KiB a file, 1,000 entries a file, the card loader's bounds on YAML (aliases, depth).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hubstead.repos.cards import CardHeaderError, load_card_header

RESULTS_DIR = ".eval_results"
CARD_FILENAME = "README.md"
MAX_FILE_BYTES = 64 * 1024
MAX_ENTRIES = 1000
MAX_ABS_VALUE = 1e15
_ID_PART = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}"
_REPO_ID = re.compile(rf"^(?:{_ID_PART}/)?{_ID_PART}$")
_TEXT_LIMIT = 4000
_SHORT_LIMIT = 200


@dataclass
class ParsedEntry:
    """One entry of a results file (or of the card's ``model-index``), checked. ``entry`` is the entry as the
    Hub writes it, normalised (JSON-safe: dates as ISO text), or None when the entry is invalid."""

    filename: str
    position: int
    dataset_id: str | None = None
    task_id: str | None = None
    value: float | None = None
    revision: str | None = None
    verify_token: str | None = None
    date: str | None = None
    source: dict[str, Any] | None = None
    notes: str | None = None
    error: str | None = None
    entry: dict[str, Any] | None = field(default=None)

    @property
    def valid(self) -> bool:
        return self.error is None


def is_results_path(path: str) -> bool:
    """A results file: ``.eval_results/<name>.yaml`` (or ``.yml``) directly in the folder."""
    if not path.startswith(RESULTS_DIR + "/"):
        return False
    name = path[len(RESULTS_DIR) + 1:]
    return "/" not in name and name.endswith((".yaml", ".yml")) and not name.startswith(".")


def _invalid_file(filename: str, reason: str) -> list[ParsedEntry]:
    return [ParsedEntry(filename=filename, position=0, error=reason)]


def parse_results_file(filename: str, text: str | bytes) -> list[ParsedEntry]:
    """The entries of one ``.eval_results/*.yaml`` file; never raises."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            return _invalid_file(filename, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
        text = text.decode("utf-8", errors="replace")
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        return _invalid_file(filename, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = load_card_header(text)
    except CardHeaderError as exc:
        return _invalid_file(filename, str(exc.message).replace("The YAML header of README.md", "the file"))
    except Exception as exc:  # noqa: BLE001 - any YAML error is the author's to fix, in words
        first = (str(exc).splitlines() or ["unreadable"])[0]
        return _invalid_file(filename, f"the file is not valid YAML ({first})")
    if data is None:
        return []
    if not isinstance(data, list):
        return _invalid_file(filename, "the file must be a YAML list of entries")
    if len(data) > MAX_ENTRIES:
        return _invalid_file(filename, f"the file has more than {MAX_ENTRIES} entries ({len(data)})")
    return [check_entry(filename, position, item) for position, item in enumerate(data)]


def _string(value: Any, where: str, *, limit: int, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{where} is missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {_kind(value)}")
    if required and not value.strip():
        raise ValueError(f"{where} is empty")
    if len(value) > limit:
        raise ValueError(f"{where} is longer than {limit} characters")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def check_value(value: Any) -> float:
    """The score as a float, or ValueError saying why it cannot be one (booleans, text, NaN, infinities and
    values beyond ±1e15 are not scores)."""
    if value is None:
        raise ValueError("value is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"value must be a number, not {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("value is too large") from None
    if math.isnan(number):
        raise ValueError("value is not a number (NaN)")
    if math.isinf(number):
        raise ValueError("value is infinite")
    if abs(number) > MAX_ABS_VALUE:
        raise ValueError(f"value is beyond ±{MAX_ABS_VALUE:g}")
    return number


def _check_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as one
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("date must be an ISO-8601 date or datetime")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date {value!r} is not ISO-8601") from None
    return value


def _check_source(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"source must be a mapping with a url, not {_kind(value)}")
    url = _string(value.get("url"), "source.url", limit=2048, required=True)
    source: dict[str, Any] = {"url": url}
    for key in ("name", "user", "org"):
        text = _string(value.get(key), f"source.{key}", limit=_SHORT_LIMIT, required=False)
        if text is not None:
            source[key] = text
    return source


def check_entry(filename: str, position: int, item: Any) -> ParsedEntry:
    """One entry checked; an invalid one keeps what could be read and the first reason it is invalid."""
    parsed = ParsedEntry(filename=filename, position=position)
    try:
        if not isinstance(item, dict):
            raise ValueError(f"an entry must be a mapping, not {_kind(item)}")
        dataset = item.get("dataset")
        if not isinstance(dataset, dict):
            raise ValueError("dataset must be a mapping with id and task_id")
        dataset_id = _string(dataset.get("id"), "dataset.id", limit=_SHORT_LIMIT, required=True)
        if dataset_id is not None and _REPO_ID.match(dataset_id):
            parsed.dataset_id = dataset_id
        else:
            raise ValueError(f"dataset.id {dataset_id!r} is not a repo id")
        parsed.task_id = _string(dataset.get("task_id"), "dataset.task_id", limit=_SHORT_LIMIT, required=True)
        parsed.revision = _string(dataset.get("revision"), "dataset.revision", limit=_SHORT_LIMIT, required=False)
        parsed.value = check_value(item.get("value"))
        parsed.verify_token = _string(item.get("verifyToken"), "verifyToken", limit=4096, required=False)
        parsed.date = _check_date(item.get("date"))
        parsed.source = _check_source(item.get("source"))
        parsed.notes = _string(item.get("notes"), "notes", limit=_TEXT_LIMIT, required=False)
    except ValueError as exc:
        parsed.value = None
        parsed.error = str(exc)
        return parsed
    parsed.entry = entry_dict(parsed)
    return parsed


def entry_dict(parsed: ParsedEntry) -> dict[str, Any]:
    """The entry in the Hub's ``.eval_results`` shape (what ``eval_result_entries_to_yaml`` writes)."""
    dataset: dict[str, Any] = {"id": parsed.dataset_id, "task_id": parsed.task_id}
    if parsed.revision is not None:
        dataset["revision"] = parsed.revision
    out: dict[str, Any] = {"dataset": dataset, "value": parsed.value}
    if parsed.verify_token is not None:
        out["verifyToken"] = parsed.verify_token
    if parsed.date is not None:
        out["date"] = parsed.date
    if parsed.source is not None:
        out["source"] = parsed.source
    if parsed.notes is not None:
        out["notes"] = parsed.notes
    return out


def entries_from_model_index(card_data: Any) -> list[ParsedEntry]:
    """The card's ``model-index`` results as entries (self-reported; ``verifyToken`` is never read from a
    card). A result that cannot be read is an entry with ``error``; a card without ``model-index`` has none."""
    if not isinstance(card_data, dict) or "model-index" not in card_data:
        return []
    model_index = card_data["model-index"]
    if not isinstance(model_index, list):
        return _invalid_file(CARD_FILENAME, "model-index must be a list")
    out: list[ParsedEntry] = []
    for model in model_index:
        results = model.get("results") if isinstance(model, dict) else None
        if not isinstance(results, list):
            out.append(ParsedEntry(filename=CARD_FILENAME, position=len(out),
                                   error="a model-index item must have a list of results"))
            continue
        for result in results:
            if len(out) >= MAX_ENTRIES:
                return out
            out.append(_model_index_entry(len(out), result))
    return out


def _model_index_entry(position: int, result: Any) -> ParsedEntry:
    parsed = ParsedEntry(filename=CARD_FILENAME, position=position)
    try:
        if not isinstance(result, dict):
            raise ValueError(f"a model-index result must be a mapping, not {_kind(result)}")
        dataset = result.get("dataset")
        if not isinstance(dataset, dict):
            raise ValueError("model-index result has no dataset mapping")
        metrics = result.get("metrics")
        if not isinstance(metrics, list) or not metrics or not isinstance(metrics[0], dict):
            raise ValueError("model-index result has no metrics")
        # The benchmark task: ``dataset.args.task_id`` where the hub wrote the result (a config may hold several
        # tasks), else the dataset's config, else "default".
        args = dataset.get("args")
        task_id = args.get("task_id") if isinstance(args, dict) and isinstance(args.get("task_id"), str) else None
        item: dict[str, Any] = {
            "dataset": {"id": dataset.get("type"), "task_id": task_id or dataset.get("config") or "default"},
            "value": metrics[0].get("value"),
        }
        if dataset.get("revision") is not None:
            item["dataset"]["revision"] = dataset.get("revision")
        source = result.get("source")
        if isinstance(source, dict) and source.get("url") is not None:
            item["source"] = {k: source[k] for k in ("url", "name") if k in source}
    except ValueError as exc:
        parsed.error = str(exc)
        return parsed
    return check_entry(CARD_FILENAME, position, item)
