"""Leaderboards: the results index (``eval_results``) read for one benchmark, or several, and ranked.

Two indexed queries per board. The lean one ranks: every result of the benchmark's dataset id, joined to the
model repos the caller may see, only what ranking, filters and sorts need (model, task, value, flags, size, date,
license). Then everything in Python: the best entry per model and task, the invalid ones set aside with their
reasons, the ranking (``evals.ranking``), filters, sort and page; only then are rows made, for the page alone, and
the second query reads what they show (source, notes, pull request, base models, the owner's user or org row) for
those rows' entries only. Never a query per row, and nothing decoded or shaped for a row not shown, so a board of
10,000 results answers its first page in milliseconds.

Rules:
- A benchmark is a dataset repo with a row in ``eval_benchmarks``; a private one is a 404 (the repo's not-found)
  to whoever may not read it, a dataset with no ``eval.yaml`` is ``NotABenchmark`` (404), an invalid ``eval.yaml``
  answers a board with ``error``/``reasons`` and no rows (the API turns it into a 409).
- Results of a private model appear only to callers who may read that model (``repos.visibility``).
- An entry is invalid (not ranked, listed in ``Board.invalid`` with the reason) when the index found it wrong
  (``error``), when it has no finite value, or when its task is not one of the benchmark's.
- One entry per model and task ranks: verified and current first, then verified but stale, then an
  ``.eval_results`` file over the card's ``model-index``, then the latest date.
- One task (or ``task_id`` given): the task's value, ranked by its ``higher_is_better``. Several: the
  benchmark's ``aggregate`` over its tasks, for the models that have every task.
- ``base_model_only`` and ``verified_only`` decide who is on the board (ranks are computed after them);
  ``search`` and ``license`` only narrow the view (rows keep their rank on the board).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ConflictError, NotFoundError
from hubstead.evals import ranking
from hubstead.evals.benchmark import Benchmark, BenchmarkTask
from hubstead.evals.models import EvalBenchmark, EvalResult
from hubstead.repos.models import Repo
from hubstead.repos.service import get_readable_repo
from hubstead.repos.visibility import can_read, visible_filter

SORTS = ("rank", "model", "value", "params", "date", "license")
MAX_PER_PAGE = 1000
MAX_AGGREGATE = 20  # benchmarks on one aggregate board
README = "README.md"


class NotABenchmark(NotFoundError):
    """The dataset exists (and the caller may see it) but has no ``eval.yaml``: it has no leaderboard."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"{dataset_id} is not a benchmark: it has no eval.yaml at the root of its main branch, "
                         "so it has no leaderboard")


class BenchmarkUnusable(ConflictError):
    """The benchmark's ``eval.yaml`` is invalid: no board until it is fixed (``reasons`` says why)."""

    def __init__(self, dataset_id: str, reasons: Sequence[str]) -> None:
        super().__init__(f"The eval.yaml of {dataset_id} is invalid, so it has no leaderboard: " + "; ".join(reasons))
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Column:
    """A column of scores: a benchmark's task (``key`` is the task id) or, on an aggregate board, a benchmark."""

    key: str
    label: str
    metric: str
    higher_is_better: bool


@dataclass(slots=True)
class BoardRow:
    rank: int
    model_id: str
    value: float
    per_task: dict[str, float]
    verified: bool
    stale: bool
    filename: str
    author: dict[str, Any]
    params: int | None
    license: str | None
    base_models: list[str]
    date: str | None
    source: dict[str, Any] | None
    pull_request: int | None
    notes: str | None
    private: bool


def _json(text: str, default: Any) -> Any:
    """JSON as stored, decoded (orjson: a full board decodes thousands of sources; what orjson refuses, such as
    NaN, gets the standard library's reading)."""
    if text == "null" or text == "[]":
        return default if text == "null" else []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(text)
        except ValueError:
            return default
    return default if value is None else value


@dataclass(frozen=True)
class InvalidEntry:
    model_id: str
    filename: str
    task_id: str | None
    reason: str


@dataclass
class Board:
    """A leaderboard: what it ranks (``columns``, ``method``, ``higher_is_better``), the rows of this page and
    how many there are, and the entries left out as invalid."""

    dataset_ids: list[str]
    name: str
    benchmark: Benchmark | None
    error: str | None
    reasons: list[str]
    columns: list[Column]
    method: str  # the task id ranked alone, or the aggregate: mean | borda | normalized-mean
    higher_is_better: bool
    rows: list[BoardRow] = field(default_factory=list)
    total: int = 0  # rows after every filter, before the page
    ranked: int = 0  # models on the board (before search/license)
    invalid: list[InvalidEntry] = field(default_factory=list)
    private: bool = False
    page: int = 0
    per_page: int | None = None
    task_id: str | None = None
    # on a board of several columns: each column's values by model id, over every row after the filters (not only
    # this page's), so that a page can rank its cells without asking for the whole board
    column_values: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[Column]:
        return self.columns


# Every model and entry of a board is a plain tuple of plain values, not an object: the garbage collector stops
# tracking such tuples at its first look, while 10,000s of live objects per request made it run full collections
# of the whole process (100+ ms each) every board or two.
#
# An entry is a row of ``_results`` as the driver gives it; its columns:
(_ID, _PK, _FILENAME, _POSITION, _DATASET, _TASK, _VALUE, _VERIFIED, _STALE, _DATE, _ERROR, _PARAMS, _MODEL,
 _LICENSE, _HAS_BASE, _PRIVATE) = range(16)
Entry = tuple[Any, ...]
# A model: (model id, model id lowercased, license, has base models, private).
_MODEL_ID: Final = 0
_MODEL_KEY: Final = 1
_MODEL_LICENSE: Final = 2
_MODEL_HAS_BASE: Final = 3
_MODEL_PRIVATE: Final = 4
Model = tuple[str, str, str | None, bool, bool]


def _preference(entry: Entry) -> tuple[bool, bool, bool, str, int]:
    """Which of a model's entries on one task ranks (the greatest): verified and current, verified, an
    ``.eval_results`` file over the card's ``model-index``, the latest date, the first written."""
    verified = bool(entry[_VERIFIED])
    return (verified and not entry[_STALE], verified, entry[_FILENAME] != README, entry[_DATE] or "",
            -entry[_POSITION])


@dataclass
class _Standings:
    """The models on a board, before any is a row: their rank and score, their ranked entries (first: the one
    whose file, notes and source a row shows) and the scores of each column by model."""

    models: dict[int, Model]
    ranks: dict[int, int]
    scores: dict[int, float]
    entries: Callable[[int], Sequence[Entry]]
    columns: dict[str, dict[int, float]]

    def per_task(self, pk: int) -> dict[str, float]:
        return {key: column[pk] for key, column in self.columns.items() if pk in column}

    def params(self, pk: int) -> int | None:
        entries = self.entries(pk)
        if len(entries) == 1:  # the common case, without the generator
            return entries[0][_PARAMS]
        return next((e[_PARAMS] for e in entries if e[_PARAMS] is not None), None)

    def date(self, pk: int) -> str | None:
        entries = self.entries(pk)
        if len(entries) == 1:
            return entries[0][_DATE]
        return max((e[_DATE] for e in entries if e[_DATE]), default=None)


# ---------------------------------------------------------------------------------------------- reading


def _benchmark_of(session: Session, principal: Principal, dataset_id: str) -> tuple[Repo, EvalBenchmark]:
    repo = get_readable_repo(session, principal, repo_type="dataset", repo_id=dataset_id)
    row = session.get(EvalBenchmark, repo.pk)
    if row is None:
        raise NotABenchmark(repo.repo_id)
    return repo, row


def _spec(row: EvalBenchmark) -> tuple[Benchmark | None, list[str]]:
    """The benchmark a row holds, or the reasons it is invalid."""
    if row.spec is None:
        text = row.error or "eval.yaml is invalid"
        text = text.removeprefix("eval.yaml is invalid: ")
        return None, [part for part in text.split("; ") if part] or [text]
    spec = row.spec
    tasks = tuple(
        BenchmarkTask(
            id=str(task["id"]), split=str(task.get("split") or ""), config=str(task.get("config") or "default"),
            metric=str(task.get("metric") or "score"), higher_is_better=bool(task.get("higher_is_better", True)),
            baseline=float(task.get("baseline") or 0.0), name=task.get("name"),
            options={k: v for k, v in task.items()
                     if k not in ("id", "split", "config", "metric", "higher_is_better", "baseline", "name")},
        )
        for task in spec.get("tasks") or []
    )
    return Benchmark(
        name=str(spec.get("name") or row.name), framework=str(spec.get("evaluation_framework") or row.framework),
        tasks=tasks, description=str(spec.get("description") or ""), aggregate=str(spec.get("aggregate") or "mean"),
        reevaluate=bool(spec.get("reevaluate", False)),
    ), []


def _id_variants(repo: Repo, asked: Iterable[str] = ()) -> set[str]:
    """The spellings an entry may use for the benchmark's dataset id (entries are matched as written)."""
    return {repo.repo_id, repo.repo_id.lower(), *asked}


def _results(session: Session, principal: Principal, dataset_ids: Iterable[str]) -> Sequence[Any]:
    """Every result entry naming one of ``dataset_ids``, of a model repo the caller may read, with what ranking,
    filters and sorts need (no JSON but the base models' emptiness, no owner rows): one query (the index on
    ``dataset_id``), no ORM objects. ``_shown`` reads the rest for the rows on the page."""
    base_text = func.coalesce(cast(Repo.base_models, Text), "[]")
    query = (
        select(
            EvalResult.id, EvalResult.model_repo_pk, EvalResult.filename, EvalResult.position, EvalResult.dataset_id,
            EvalResult.task_id, EvalResult.value, EvalResult.verified, EvalResult.stale, EvalResult.date,
            EvalResult.error, EvalResult.model_params, (Repo.namespace + "/" + Repo.name).label("model_id"),
            Repo.license,
            base_text.not_in(["[]", "", "null"]).label("has_base"), Repo.private,
        )
        .join(Repo, Repo.pk == EvalResult.model_repo_pk)
        .where(EvalResult.dataset_id.in_(sorted(set(dataset_ids))), Repo.repo_type == "model",
               visible_filter(session, principal))
    )
    return _fetch(session, query)


SHOWN_CHUNK = 2000  # entry ids per query of ``_shown`` (well under every driver's limit on parameters)


def _shown(session: Session, entries: Iterable[Entry]) -> dict[int, tuple[Any, ...]]:
    """What rows show of ``entries`` beyond their ranking: per entry id, (source JSON text, notes, pull request,
    base models JSON text, namespace, org name, org full name, user full name)."""
    ids = sorted({entry[_ID] for entry in entries})
    owner_key = func.lower(Repo.namespace)
    shown: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(ids), SHOWN_CHUNK):
        query = (
            select(EvalResult.id, cast(EvalResult.source, Text), EvalResult.notes, EvalResult.pull_request,
                   cast(Repo.base_models, Text), Repo.namespace, Org.name, Org.fullname, User.fullname)
            .join(Repo, Repo.pk == EvalResult.model_repo_pk)
            .outerjoin(Org, Org.name_key == owner_key)
            .outerjoin(User, User.name_key == owner_key)
            .where(EvalResult.id.in_(ids[start:start + SHOWN_CHUNK]))
        )
        for entry_id, *fields in _fetch(session, query):
            shown[entry_id] = tuple(fields)
    return shown


def _fetch(session: Session, query: Any) -> Sequence[Any]:
    """The rows of ``query`` as the database driver gives them (tuples of plain values: SQLite's booleans
    are 0/1, JSON cast to text stays text), skipping SQLAlchemy's per-value result processing: on a board of
    10,000 results that processing was most of the time."""
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    cursor = connection.connection.cursor()  # the transaction's own DBAPI connection
    try:
        cursor.execute(compiled.string, args)
        return cursor.fetchall()
    finally:
        cursor.close()


def _author(namespace: str, org_name: str | None, org_fullname: str | None,
            user_fullname: str | None) -> dict[str, Any]:
    if org_name is not None:
        return {"name": namespace, "type": "org", "fullname": org_fullname or namespace, "avatarUrl": ""}
    return {"name": namespace, "type": "user", "fullname": user_fullname or namespace, "avatarUrl": ""}


def _unknown_task(task_id: str | None, dataset: str, task_ids: Iterable[str]) -> str:
    """Why an entry naming a task its benchmark does not have is invalid (boards and model pages alike)."""
    return f"task {task_id!r} is not a task of {dataset} ({', '.join(sorted(task_ids))})"


def _split(
    rows: Sequence[Entry], canonical: dict[str, str], tasks_of: dict[str, set[str]],
) -> tuple[dict[int, Model], dict[tuple[str, str], dict[int, Entry]], list[InvalidEntry]]:
    """Models, the best valid entry per (benchmark, task) and model, and the invalid entries with reasons.

    ``canonical`` maps each spelling of a dataset id to the benchmark's id; ``tasks_of`` gives its task ids."""
    models: dict[int, Model] = {}
    best: dict[tuple[str, str], dict[int, Entry]] = {}
    invalid: list[InvalidEntry] = []
    for entry in rows:
        pk = entry[_PK]
        model = models.get(pk)
        if model is None:
            model_id = entry[_MODEL]
            model = models[pk] = (model_id, model_id.lower(), entry[_LICENSE], bool(entry[_HAS_BASE]),
                                  bool(entry[_PRIVATE]))
        dataset = canonical.get(entry[_DATASET])
        if dataset is None:
            continue
        value, task_id = entry[_VALUE], entry[_TASK]
        reason = entry[_ERROR]
        if reason is None and (value is None or not math.isfinite(value)):
            reason = "the entry has no numeric value"
        if reason is None and task_id not in tasks_of[dataset]:
            reason = _unknown_task(task_id, dataset, tasks_of[dataset])
        if reason is not None:
            invalid.append(InvalidEntry(model[_MODEL_ID], entry[_FILENAME], task_id, reason))
            continue
        column = best.setdefault((dataset, task_id), {})
        held = column.get(pk)
        if held is None or _preference(entry) > _preference(held):
            column[pk] = entry
    invalid.sort(key=lambda item: (item.model_id.lower(), item.filename, item.task_id or ""))
    return models, best, invalid


# ---------------------------------------------------------------------------------------------- shaping


def _row(standings: _Standings, pk: int, shown: dict[int, tuple[Any, ...]],
         authors: dict[str, dict[str, Any]]) -> BoardRow:
    """The row of a model on the page: its ranked entries' facts and what ``_shown`` read for them (``authors``:
    one owner dict per namespace, shared by its rows)."""
    entries, model = standings.entries(pk), standings.models[pk]
    first = entries[0]
    source_text, notes, pull, base_text, namespace, org_name, org_fullname, user_fullname = shown[first[_ID]]
    author = authors.get(namespace)
    if author is None:
        author = authors[namespace] = _author(namespace, org_name, org_fullname, user_fullname)
    if len(entries) == 1:
        verified, stale = first[_VERIFIED], first[_STALE]
    else:
        verified, stale = all(e[_VERIFIED] for e in entries), any(e[_STALE] for e in entries)
        if pull is None:
            pull = next((shown[e[_ID]][2] for e in entries if shown[e[_ID]][2] is not None), None)
    return BoardRow(standings.ranks[pk], model[_MODEL_ID], standings.scores[pk], standings.per_task(pk),
                    bool(verified), bool(stale), first[_FILENAME],
                    author, standings.params(pk),
                    model[_MODEL_LICENSE], _json(base_text or "[]", []), standings.date(pk),
                    _json(source_text, None) if source_text else None, pull, notes, model[_MODEL_PRIVATE])


def _keep(model: Model, entries: Iterable[Entry], *, base_model_only: bool, verified_only: bool) -> bool:
    if base_model_only and model[_MODEL_HAS_BASE]:
        return False
    return not (verified_only and not all(entry[_VERIFIED] for entry in entries))


def _order(pks: list[int], standings: _Standings, sort: str) -> list[int]:
    """The models ``pks`` in the order ``sort`` asks (``-`` for descending). Ties keep rank order (then the model
    id) both ways, and a model with no value in the column (size, date, license) comes last both ways."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise BadRequestError(f"sort must be one of {', '.join(SORTS)} (with '-' for descending), not {sort!r}")
    ranks, models = standings.ranks, standings.models
    # rank order, the order of every sort's ties: by model id, then (stable) by rank; two sorts on plain keys
    # cost less than one on tuples
    model_keys = {pk: models[pk][_MODEL_KEY] for pk in pks}
    pks.sort(key=model_keys.__getitem__)
    if key == "model":
        if descending:
            pks.reverse()  # model ids are unique
        return pks
    pks.sort(key=ranks.__getitem__, reverse=descending and key in ("rank", "value"))
    if key in ("rank", "value"):
        return pks
    value_of: Callable[[int], Any] = {"params": standings.params, "date": standings.date,
                                      "license": lambda pk: models[pk][_MODEL_LICENSE]}[key]
    values = {pk: value_of(pk) for pk in pks}
    present = [pk for pk in pks if values[pk] is not None]
    present.sort(key=values.__getitem__, reverse=descending)
    return present + [pk for pk in pks if values[pk] is None]


def _view(board: Board, standings: _Standings | None, session: Session, *, search: str | None,
          license: str | None, sort: str, page: int, per_page: int | None) -> Board:
    """Filter, sort and cut the page of the models on the board, then make the page's rows, reading what they show
    in one more query."""
    if page < 0:
        raise BadRequestError("page must be 0 or more")
    if per_page is not None and not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequestError(f"per_page must be from 1 to {MAX_PER_PAGE}")
    if standings is None:
        standings = _Standings({}, {}, {}, lambda pk: (), {})
    models = standings.models
    pks = list(standings.scores)
    board.ranked = len(pks)
    if search:
        needle = search.strip().lower()
        pks = [pk for pk in pks if needle in models[pk][_MODEL_KEY]]
    if license:
        wanted = license.lower()
        pks = [pk for pk in pks if (models[pk][_MODEL_LICENSE] or "").lower() == wanted]
    pks = _order(pks, standings, sort)
    board.total = len(pks)
    board.page, board.per_page = page, per_page
    if len(board.columns) > 1:
        board.column_values = {key: {models[pk][_MODEL_ID]: column[pk] for pk in pks if pk in column}
                               for key, column in standings.columns.items()}
    on_page = pks if per_page is None else pks[page * per_page:(page + 1) * per_page]
    shown = _shown(session, (entry for pk in on_page for entry in standings.entries(pk))) if on_page else {}
    authors: dict[str, dict[str, Any]] = {}
    board.rows = [_row(standings, pk, shown, authors) for pk in on_page]
    return board


def _standings(models: dict[int, Model], columns: dict[str, dict[int, Entry]], values: dict[str, dict[int, float]],
               scores: dict[int, float], higher: bool) -> _Standings:
    """The standings of a benchmark's board: ``columns`` are its ranked tasks' entries by model, ``values`` their
    values."""
    ranks = ranking.ranked(scores, higher)
    if len(columns) == 1:
        [column] = columns.values()
        return _Standings(models, ranks, scores, lambda pk: (column[pk],), values)
    entries = {pk: tuple(column[pk] for column in columns.values() if pk in column) for pk in scores}
    return _Standings(models, ranks, scores, entries.__getitem__, values)


# ---------------------------------------------------------------------------------------------- boards


def benchmark_board(
    hub: Hub, session: Session, principal: Principal, dataset_id: str, *, task_id: str | None = None,
    base_model_only: bool = False, verified_only: bool = False, search: str | None = None,
    license: str | None = None, sort: str = "rank", page: int = 0, per_page: int | None = 100,
) -> Board:
    """The leaderboard of one benchmark (see the module docstring for the rules). ``per_page=None``: every row.

    Raises:
        RepoNotFoundError: no such dataset, or a private one the caller may not read.
        NotABenchmark: the dataset has no ``eval.yaml``.
        BadRequestError: an unknown ``task_id``, ``sort`` or page bounds.
    """
    return _benchmark_board(session, principal, dataset_id, task_id=task_id, base_model_only=base_model_only,
                            verified_only=verified_only, search=search, license=license, sort=sort, page=page,
                            per_page=per_page)


def _benchmark_board(
    session: Session, principal: Principal, dataset_id: str, *, task_id: str | None, base_model_only: bool,
    verified_only: bool, search: str | None, license: str | None, sort: str, page: int, per_page: int | None,
) -> Board:
    repo, row = _benchmark_of(session, principal, dataset_id)
    benchmark, reasons = _spec(row)
    board = Board(dataset_ids=[repo.repo_id], name=benchmark.name if benchmark else row.name, benchmark=benchmark,
                  error=None if benchmark else "; ".join(reasons), reasons=reasons, columns=[], method="",
                  higher_is_better=True, private=repo.private, task_id=task_id)
    if benchmark is None:
        return _view(board, None, session, search=None, license=None, sort=sort, page=page, per_page=per_page)
    tasks = list(benchmark.tasks)
    board.columns = [Column(task.id, task.name or task.id, task.metric, task.higher_is_better) for task in tasks]
    if task_id is not None:
        chosen = benchmark.task(task_id)
        if chosen is None:
            raise BadRequestError(f"{repo.repo_id} has no task {task_id!r} (its tasks: "
                                  f"{', '.join(task.id for task in tasks)})")
        tasks = [chosen]
    variants = _id_variants(repo, [dataset_id])
    models, best, board.invalid = _split(_results(session, principal, variants),
                                         dict.fromkeys(variants, repo.repo_id),
                                         {repo.repo_id: {task.id for task in benchmark.tasks}})
    columns = {task.id: best.get((repo.repo_id, task.id), {}) for task in tasks}
    # Who is on the board: the filters that define it, applied to each model's entries on the ranked tasks.
    if len(tasks) == 1:
        [(key, column)] = columns.items()
        if base_model_only or verified_only:
            columns = {key: {pk: e for pk, e in column.items()
                             if not (base_model_only and models[pk][_MODEL_HAS_BASE])
                             and not (verified_only and not e[_VERIFIED])}}
    else:
        complete = set.intersection(*(set(c) for c in columns.values()))
        on_board = {pk for pk in complete
                    if _keep(models[pk], [c[pk] for c in columns.values()], base_model_only=base_model_only,
                             verified_only=verified_only)}
        columns = {key: {pk: e for pk, e in column.items() if pk in on_board} for key, column in columns.items()}
    values = {key: {pk: float(e[_VALUE]) for pk, e in column.items()} for key, column in columns.items()}
    if len(tasks) == 1:
        board.method, board.higher_is_better = tasks[0].id, tasks[0].higher_is_better
        scores = values[tasks[0].id]
    else:
        board.method = benchmark.aggregate
        scores, board.higher_is_better = ranking.aggregate(
            benchmark.aggregate, values, {t.id: t.higher_is_better for t in tasks}, {t.id: t.baseline for t in tasks})
    return _view(board, _standings(models, columns, values, scores, board.higher_is_better), session, search=search,
                 license=license, sort=sort, page=page, per_page=per_page)


def aggregate_board(
    hub: Hub, session: Session, principal: Principal, dataset_ids: Sequence[str], *, method: str = "borda",
    base_model_only: bool = False, verified_only: bool = False, search: str | None = None,
    license: str | None = None, sort: str = "rank", page: int = 0, per_page: int | None = 100,
) -> Board:
    """One board over several benchmarks, a column per benchmark (its task's value, or the mean of its tasks;
    under ``normalized-mean`` the mean of its tasks' normalised scores), ranked by ``method``:

    - ``borda``: MTEB's Borda count over every task of every benchmark (a missing result earns 0 points);
    - ``normalized-mean``: the Open LLM Leaderboard's mean of per-benchmark normalised scores (each task
      normalised by its ``baseline``; models missing a benchmark are left out);
    - ``mean``: the mean of the benchmark columns (models missing one are left out).
    """
    if method not in ranking.AGGREGATES:
        raise BadRequestError(f"method must be one of {', '.join(ranking.AGGREGATES)}, not {method!r}")
    ids = list(dict.fromkeys(item.strip() for item in dataset_ids if item.strip()))
    if not ids:
        raise BadRequestError("name at least one benchmark (benchmarks=namespace/name,...)")
    if len(ids) > MAX_AGGREGATE:
        raise BadRequestError(f"at most {MAX_AGGREGATE} benchmarks on one board")
    benchmarks: dict[str, Benchmark] = {}
    canonical: dict[str, str] = {}
    private = False
    for asked in ids:
        repo, row = _benchmark_of(session, principal, asked)
        benchmark, reasons = _spec(row)
        if benchmark is None:
            raise BenchmarkUnusable(repo.repo_id, reasons)
        if repo.repo_id in benchmarks:
            continue
        benchmarks[repo.repo_id] = benchmark
        private = private or repo.private
        canonical.update(dict.fromkeys(_id_variants(repo, [asked]), repo.repo_id))
    models, best, invalid = _split(_results(session, principal, canonical), canonical,
                                   {bid: {task.id for task in b.tasks} for bid, b in benchmarks.items()})
    board = Board(dataset_ids=list(benchmarks), name=" + ".join(b.name for b in benchmarks.values()),
                  benchmark=None, error=None, reasons=[], method=method, higher_is_better=True, invalid=invalid,
                  columns=[Column(bid, b.name, "score" if len(b.tasks) > 1 else b.tasks[0].metric,
                                  all(t.higher_is_better for t in b.tasks)) for bid, b in benchmarks.items()],
                  private=private)

    entries_of: dict[int, list[Entry]] = {}  # each model's entries, gathered in one pass
    for column in best.values():
        for pk, entry in column.items():
            entries_of.setdefault(pk, []).append(entry)
    keep = {pk for pk, entries in entries_of.items()
            if _keep(models[pk], entries, base_model_only=base_model_only, verified_only=verified_only)}
    task_values = {key: {pk: float(e[_VALUE]) for pk, e in column.items() if pk in keep}
                   for key, column in best.items()}
    higher = {(bid, t.id): t.higher_is_better for bid, b in benchmarks.items() for t in b.tasks}
    per_benchmark: dict[str, dict[int, float]] = {}
    for bid, b in benchmarks.items():
        own = {t.id: task_values.get((bid, t.id), {}) for t in b.tasks}
        if method == "normalized-mean":
            per_benchmark[bid] = ranking.normalized_mean(own, {t.id: t.baseline for t in b.tasks},
                                                         {t.id: t.higher_is_better for t in b.tasks})
        else:
            per_benchmark[bid] = ranking.mean(own)
    if method == "borda":
        scores = ranking.borda({key: values for key, values in task_values.items() if values}, higher)
    else:
        scores = ranking.mean(per_benchmark)
        board.higher_is_better = method == "normalized-mean" or set(higher.values()) != {False}
    ranks = ranking.ranked(scores, board.higher_is_better)
    standings = _Standings(models, ranks, scores, entries_of.__getitem__,
                           {bid: {pk: value for pk, value in column.items() if pk in scores}
                            for bid, column in per_benchmark.items()})
    return _view(board, standings, session, search=search, license=license, sort=sort, page=page,
                 per_page=per_page)


# ---------------------------------------------------------------------------------------------- lists


def model_results(session: Session, principal: Principal, repo: Repo) -> list[dict[str, Any]]:
    """What a model page lists: every result entry of ``repo`` (the caller may read it), with its benchmark's
    name and, for a valid entry on a benchmark the caller may read, its rank on that task's board (every model
    the caller may see, derived ones included) and how many models that board ranks."""
    entries = session.scalars(
        select(EvalResult).where(EvalResult.model_repo_pk == repo.pk)
        .order_by(EvalResult.filename, EvalResult.position)
    ).all()
    boards: dict[tuple[str, str], tuple[int | None, int]] = {}
    names: dict[str, tuple[str | None, str | None, frozenset[str]]] = {}
    answers = []
    for entry in entries:
        dataset = entry.dataset_id or ""
        if dataset and dataset not in names:
            names[dataset] = _benchmark_name(session, principal, dataset)
        canonical, name, task_ids = names.get(dataset, (None, None, frozenset()))
        rank, total, error = None, 0, entry.error
        if canonical and error is None and entry.task_id not in task_ids:
            error = _unknown_task(entry.task_id, canonical, task_ids)
        if canonical and error is None and entry.task_id and entry.value is not None:
            key = (canonical, entry.task_id)
            if key not in boards:
                boards[key] = _rank_on(session, principal, canonical, entry.task_id, repo.repo_id)
            rank, total = boards[key]
        answers.append({
            "dataset_id": dataset or None, "benchmark_name": name, "benchmark_id": canonical,
            "task_id": entry.task_id, "value": entry.value, "rank": rank, "ranked": total,
            "verified": entry.verified, "stale": entry.stale, "error": error, "filename": entry.filename,
            "source": entry.source, "date": entry.date, "notes": entry.notes, "pull_request": entry.pull_request,
        })
    return answers


def _benchmark_name(session: Session, principal: Principal,
                    dataset_id: str) -> tuple[str | None, str | None, frozenset[str]]:
    """(the benchmark's repo id, its name, its task ids) when ``dataset_id`` is a valid benchmark the caller may
    read, else (None, None, {})."""
    nothing: tuple[None, None, frozenset[str]] = (None, None, frozenset())
    if dataset_id.count("/") != 1:
        return nothing
    repo = session.scalar(select(Repo).where(Repo.repo_type == "dataset", Repo.id_key == dataset_id.lower()))
    if repo is None or not can_read(session, principal, repo):
        return nothing
    row = session.get(EvalBenchmark, repo.pk)
    if row is None or row.spec is None:
        return nothing
    tasks = frozenset(str(task.get("id")) for task in row.spec.get("tasks") or [])
    return repo.repo_id, str(row.spec.get("name") or row.name), tasks


def _rank_on(session: Session, principal: Principal, dataset_id: str, task_id: str,
             model_id: str) -> tuple[int | None, int]:
    try:
        # searched for the model: ranks are the whole board's (search only narrows the rows made)
        board = _benchmark_board(session, principal, dataset_id, task_id=task_id, base_model_only=False,
                                 verified_only=False, search=model_id, license=None, sort="rank", page=0,
                                 per_page=None)
    except (NotFoundError, BadRequestError):
        return None, 0
    rank = next((row.rank for row in board.rows if row.model_id == model_id), None)
    return rank, board.ranked


def benchmarks(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Every benchmark the caller may read (valid or not), with how many valid results it has from models the
    caller may see: two queries."""
    rows = session.execute(
        select(Repo.namespace, Repo.name, Repo.private, EvalBenchmark)
        .join(EvalBenchmark, EvalBenchmark.repo_pk == Repo.pk)
        .where(Repo.repo_type == "dataset", visible_filter(session, principal))
        .order_by(func.lower(Repo.namespace), func.lower(Repo.name))
    ).all()
    spellings: dict[str, str] = {}
    for namespace, name, _private, _row in rows:
        repo_id = f"{namespace}/{name}"
        spellings[repo_id] = spellings[repo_id.lower()] = repo_id
    counts: dict[str, int] = dict.fromkeys(spellings.values(), 0)
    if spellings:
        for dataset, count in session.execute(
            select(EvalResult.dataset_id, func.count(func.distinct(EvalResult.model_repo_pk)))
            .join(Repo, Repo.pk == EvalResult.model_repo_pk)
            .where(EvalResult.dataset_id.in_(sorted(spellings)), EvalResult.error.is_(None),
                   EvalResult.value.is_not(None), Repo.repo_type == "model", visible_filter(session, principal))
            .group_by(EvalResult.dataset_id)
        ).all():
            counts[spellings[str(dataset)]] += count
    answer = []
    for namespace, name, private, row in rows:
        repo_id = f"{namespace}/{name}"
        spec = row.spec or {}
        answer.append({
            "id": repo_id, "name": str(spec.get("name") or row.name), "description": spec.get("description") or "",
            "framework": row.framework, "aggregate": spec.get("aggregate"),
            "tasks": [task.get("id") for task in spec.get("tasks") or []], "private": private,
            "error": row.error, "valid": row.spec is not None, "models": counts[repo_id],
        })
    return answer
