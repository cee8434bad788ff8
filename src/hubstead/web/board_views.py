"""What the leaderboard pages show, from ``evals.leaderboard``'s boards: the table's rows (rank, model, score,
per-task or per-benchmark columns with their ranks, badges, human sizes, links), the sort links, the scatter, the
list of benchmarks and the comparison of chosen models. No queries of its own beyond the leaderboard functions,
no HTTP: ``routes_board_pages`` parses the request and renders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError
from hubstead.evals import leaderboard, ranking
from hubstead.evals.leaderboard import Board, BoardRow
from hubstead.evals.models import EvalBenchmark, EvalResult
from hubstead.evals.plots import Point, human_params, scatter_svg
from hubstead.repos.models import Repo
from hubstead.repos.service import get_readable_repo

PER_PAGE = 100
COMPARE_MAX = 8
# The board's own sorts (``leaderboard.SORTS``) are done by the board; these columns are sorted here, over the
# whole board, before the page is cut: a task's (or benchmark's) value, the badge, the author, the base model.
PAGE_SORTS = ("verified", "author", "base")
METHODS = {"borda": "Borda count (as MTEB: rank per task, points, sum)",
           "normalized-mean": "Normalised mean (as the Open LLM Leaderboard: baseline-normalised, averaged)",
           "mean": "Mean of the benchmarks' scores"}


def is_benchmark(session: Session, repo: Repo) -> bool:
    """Whether a dataset is a benchmark (has an ``eval.yaml``, valid or not): its header shows a Leaderboard tab."""
    return repo.repo_type == "dataset" and session.get(EvalBenchmark, repo.pk) is not None


def score_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"


@dataclass
class Cell:
    value: str
    rank: int | None = None
    best: bool = False


@dataclass
class RowView:
    rank: int
    model_id: str
    href: str
    score: str
    cells: list[Cell]
    verified: bool
    stale: bool
    private: bool
    params: int | None
    size: str
    license: str
    base_models: list[str]
    date: str
    author: dict[str, Any]
    source_url: str | None
    pull_request: int | None
    notes: str


@dataclass
class SortLink:
    key: str
    label: str
    href: str
    active: bool
    descending: bool
    numeric: bool = False


@dataclass
class BoardView:
    board: Board
    rows: list[RowView]
    columns: list[dict[str, Any]]
    sorts: dict[str, SortLink]
    scatter: str
    page: int
    pages: int
    total: int
    metric: str
    higher_is_better: bool
    picked: list[str] = field(default_factory=list)


def _row_view(row: BoardRow, columns: list[leaderboard.Column], column_ranks: dict[str, dict[str, int]],
              best: dict[str, float]) -> RowView:
    cells = []
    for column in columns:
        value = row.per_task.get(column.key)
        cells.append(Cell(score_text(value), column_ranks.get(column.key, {}).get(row.model_id),
                          value is not None and best.get(column.key) == value))
    source = row.source or {}
    url = source.get("url") if isinstance(source.get("url"), str) else None
    return RowView(
        rank=row.rank, model_id=row.model_id, href=f"/{row.model_id}", score=score_text(row.value), cells=cells,
        verified=row.verified, stale=row.stale, private=row.private, params=row.params,
        size=human_params(row.params), license=row.license or "", base_models=list(row.base_models),
        date=(row.date or "")[:10], author=row.author,
        source_url=url if url and url.startswith(("http://", "https://", "/")) else None,
        pull_request=row.pull_request, notes=row.notes or "",
    )


def _column_stats(board: Board) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """Per column: every model's rank on it (the shared ranking rule) and the best value (marked in the table),
    over the whole board's values of the column (``Board.column_values``: every row after the filters)."""
    ranks: dict[str, dict[str, int]] = {}
    best: dict[str, float] = {}
    for column in board.columns:
        values = board.column_values.get(column.key, {})
        ranks[column.key] = ranking.ranked(values, column.higher_is_better)
        if values:
            best[column.key] = (max if column.higher_is_better else min)(values.values())
    return ranks, best


def _page_sort(rows: list[BoardRow], key: str, descending: bool, board: Board) -> list[BoardRow]:
    """``rows`` (in rank order) sorted by a column the board does not sort: stable, so ties keep their rank order
    both ways; a model with no value in the column comes last both ways."""
    if key == "verified":
        return sorted(rows, key=lambda r: (not r.verified, r.stale), reverse=descending)
    if key == "author":
        return sorted(rows, key=lambda r: str(r.author.get("name", "")).lower(), reverse=descending)
    if key == "base":
        with_base = sorted((r for r in rows if r.base_models), key=lambda r: [b.lower() for b in r.base_models],
                           reverse=descending)
        return with_base + [r for r in rows if not r.base_models]
    column = key.removeprefix("col:")
    spec = next((c for c in board.columns if c.key == column), None)
    if spec is None:
        raise BadRequestError(f"no column {column!r} to sort by")
    sign = -1 if spec.higher_is_better else 1  # best first, as the board ranks
    valued = sorted((r for r in rows if column in r.per_task), key=lambda r: sign * r.per_task[column],
                    reverse=descending)
    return valued + [r for r in rows if column not in r.per_task]


def _sort_links(url_with: Any, sort: str, board: Board) -> dict[str, SortLink]:
    current = sort.removeprefix("-")
    descending = sort.startswith("-")
    links = {}
    keys = [("rank", "Rank", True), ("model", "Model", False), ("params", "Size", True),
            ("license", "License", False), ("date", "Date", False), ("verified", "Verified", False),
            ("author", "Author", False), ("base", "Base model", False)]
    keys += [(f"col:{c.key}", c.label, True) for c in board.columns]
    for key, label, numeric in keys:
        active = key == current or (key == "rank" and current == "value")
        target = ("" if descending else "-") + key if active else key
        links[key] = SortLink(key, label, url_with(sort=None if target == "rank" else target, p=None), active,
                              active and descending, numeric)
    return links


def board_view(board_of: Any, *, sort: str, page: int, url_with: Any, per_page: int = PER_PAGE) -> BoardView:
    """The page ``page`` of a board: ``board_of(sort=, page=, per_page=)`` is a partial of ``benchmark_board`` or
    ``aggregate_board``. Its own sorts it does and pages itself; the others (``PAGE_SORTS``, a column's value) are
    done here over the whole board. Each column's ranks and best value are over the whole board (the board's
    ``column_values``); the scatter shows this page's models."""
    key = sort.removeprefix("-")
    if key in PAGE_SORTS or key.startswith("col:"):
        board: Board = board_of(sort="rank", page=0, per_page=None)
        rows = _page_sort(board.rows, key, sort.startswith("-"), board)
        shown = rows[page * per_page:(page + 1) * per_page]
    else:  # the board sorts and cuts the page itself (it makes only the page's rows)
        board = board_of(sort=sort, page=page, per_page=per_page)
        shown = board.rows
    # one column is the score itself: its ranks are the board's, no cells to mark
    column_ranks, best = _column_stats(board) if len(board.columns) > 1 else ({}, {})
    views = [_row_view(row, board.columns, column_ranks, best) for row in shown]
    metric = board.columns[0].metric if len(board.columns) == 1 else (
        METHODS.get(board.method, board.method).split(" (")[0].lower() if board.method else "score")
    points = [Point(r.model_id, r.params, r.value, f"/{r.model_id}", r.verified) for r in shown]
    svg = scatter_svg(points, 760, 360, title=f"{board.name}: score by model size", y_label=metric,
                      higher_is_better=board.higher_is_better) if board.error is None else ""
    columns = [{"key": c.key, "label": c.label, "metric": c.metric, "higher_is_better": c.higher_is_better}
               for c in board.columns]
    return BoardView(board=board, rows=views, columns=columns, sorts=_sort_links(url_with, sort, board),
                     scatter=svg, page=page, pages=max(1, math.ceil(board.total / per_page)), total=board.total,
                     metric=metric, higher_is_better=board.higher_is_better)


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class CompareRow:
    benchmark_id: str
    benchmark_name: str
    task_id: str
    metric: str
    higher_is_better: bool
    cells: list[Cell]


def compare(hub: Hub, session: Session, principal: Principal, model_ids: list[str],
            benchmark_ids: list[str]) -> dict[str, Any]:
    """The chosen models side by side: a row per benchmark task (the benchmarks named, else every benchmark any of
    them has a valid result on), a column per model, the best value in each row marked; their facts."""
    if not model_ids:
        raise BadRequestError("name the models to compare (models=namespace/name,...)")
    if len(model_ids) > COMPARE_MAX:
        raise BadRequestError(f"compare at most {COMPARE_MAX} models")
    repos = [get_readable_repo(session, principal, repo_type="model", repo_id=model_id) for model_id in model_ids]
    results = {repo.repo_id: leaderboard.model_results(session, principal, repo) for repo in repos}
    wanted = list(dict.fromkeys(benchmark_ids)) or list(dict.fromkeys(
        r["benchmark_id"] for rows in results.values() for r in rows if r["benchmark_id"] and r["error"] is None))
    tasks: dict[tuple[str, str], tuple[str, str, bool]] = {}
    for benchmark_id in wanted:
        board = leaderboard.benchmark_board(hub, session, principal, benchmark_id, per_page=1)
        if board.benchmark is None:
            continue
        for task in board.benchmark.tasks:
            tasks[(board.dataset_ids[0], task.id)] = (board.name, task.metric, task.higher_is_better)
    rows = []
    for (benchmark_id, task_id), (name, metric, higher) in tasks.items():
        values: list[float | None] = []
        for repo in repos:
            found = [r for r in results[repo.repo_id] if r["benchmark_id"] == benchmark_id and r["task_id"] == task_id
                     and r["error"] is None and r["value"] is not None]
            # the entry the board ranks: verified first (the board's preference), then the first written
            found.sort(key=lambda r: (not (r["verified"] and not r["stale"]), not r["verified"]))
            values.append(found[0]["value"] if found else None)
        present = [v for v in values if v is not None]
        best = (max if higher else min)(present) if present else None
        cells = [Cell(score_text(v), None, v is not None and len(present) > 1 and v == best) for v in values]
        ranks = ranking.ranked({i: v for i, v in enumerate(values) if v is not None}, higher)
        for index, cell in enumerate(cells):
            cell.rank = ranks.get(index)
        rows.append(CompareRow(benchmark_id, name, task_id, metric, higher, cells))
    models = [{"id": repo.repo_id, "href": f"/{repo.repo_id}", "license": repo.license or "",
               "base_models": list(repo.base_models or []), "private": repo.private,
               "size": human_params(_params_of(session, repo))} for repo in repos]
    return {"models": models, "rows": rows, "benchmarks": wanted}


def _params_of(session: Session, repo: Repo) -> int | None:
    """The model's parameter count as the results index read it (from its safetensors headers)."""
    return session.scalar(select(EvalResult.model_params).where(EvalResult.model_repo_pk == repo.pk,
                                                                EvalResult.model_params.is_not(None)).limit(1))
