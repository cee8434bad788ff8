"""Leaderboards' API (thin: the rules are in ``evals.leaderboard``).

- ``GET /api/datasets/{namespace}/{name}/leaderboard``: as ``HfApi.get_dataset_leaderboard`` reads it, a list of
  ``{rank, modelId, value, filename, verified, source?, author: {name, type, fullname, avatarUrl}, pullRequest?,
  notes?}`` sorted by rank. ``base_model`` (default true, as the Hub) keeps only models that declare no base model;
  ``task`` ranks one task of a several-task benchmark. A dataset that is not a benchmark is a 404 saying so; an
  invalid ``eval.yaml`` a 409 with its reasons.
- ``GET /api/leaderboards?benchmarks=a/b,c/d&method=borda|normalized-mean|mean``: one board over several
  benchmarks, a column per benchmark; ``base_model`` (default false), ``verified``, ``search``, ``license``,
  ``sort``, ``page``, ``per_page``.
- ``GET /api/benchmarks``: every benchmark the caller may read, with its number of ranked models.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hubstead.api.deps import get_caller, get_hub, parse_bool
from hubstead.errors import BadRequestError
from hubstead.evals import leaderboard
from hubstead.evals.leaderboard import BenchmarkUnusable, Board, BoardRow

router = APIRouter(tags=["evals"])


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequestError(f"{name} must be a whole number, not {raw!r}") from None


def entry_json(row: BoardRow) -> dict[str, Any]:
    """A row as the Hub's leaderboard lists it (``DatasetLeaderboardEntry``'s keys; optional ones only when set)."""
    entry: dict[str, Any] = {"rank": row.rank, "modelId": row.model_id, "value": row.value,
                             "filename": row.filename, "verified": row.verified, "author": row.author}
    if row.source is not None:
        entry["source"] = row.source
    if row.pull_request is not None:
        entry["pullRequest"] = row.pull_request
    if row.notes is not None:
        entry["notes"] = row.notes
    return entry


def board_json(board: Board) -> dict[str, Any]:
    return {
        "benchmarks": board.dataset_ids, "name": board.name, "method": board.method,
        "higherIsBetter": board.higher_is_better, "total": board.total, "ranked": board.ranked,
        "page": board.page, "perPage": board.per_page,
        "columns": [{"id": c.key, "name": c.label, "metric": c.metric, "higherIsBetter": c.higher_is_better}
                    for c in board.columns],
        "rows": [{**entry_json(row), "scores": row.per_task, "stale": row.stale, "params": row.params,
                  "license": row.license, "baseModels": row.base_models, "date": row.date} for row in board.rows],
        "invalid": [{"modelId": item.model_id, "filename": item.filename, "taskId": item.task_id,
                     "reason": item.reason} for item in board.invalid],
    }


@router.get("/api/datasets/{namespace}/{name}/leaderboard", response_model=None)
def dataset_leaderboard(request: Request, namespace: str, name: str) -> JSONResponse:
    hub = get_hub(request)
    params = request.query_params
    base_model_only = parse_bool(params.get("base_model"), default=True)
    with hub.db.session() as session:
        board = leaderboard.benchmark_board(
            hub, session, get_caller(request, session), f"{namespace}/{name}", task_id=params.get("task") or None,
            base_model_only=base_model_only, verified_only=parse_bool(params.get("verified"), default=False),
            per_page=None,
        )
        if board.error is not None:
            raise BenchmarkUnusable(board.dataset_ids[0], board.reasons)
        return JSONResponse([entry_json(row) for row in board.rows])


@router.get("/api/leaderboards", response_model=None)
def aggregate_leaderboard(request: Request) -> JSONResponse:
    hub = get_hub(request)
    params = request.query_params
    with hub.db.session() as session:
        board = leaderboard.aggregate_board(
            hub, session, get_caller(request, session), (params.get("benchmarks") or "").split(","),
            method=params.get("method") or "borda",
            base_model_only=parse_bool(params.get("base_model"), default=False),
            verified_only=parse_bool(params.get("verified"), default=False), search=params.get("search") or None,
            license=params.get("license") or None, sort=params.get("sort") or "rank", page=_int(request, "page", 0),
            per_page=_int(request, "per_page", 100),
        )
        return JSONResponse(board_json(board))


@router.get("/api/benchmarks", response_model=None)
def list_benchmarks(request: Request) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        return JSONResponse(leaderboard.benchmarks(session, get_caller(request, session)))
