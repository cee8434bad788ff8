"""The leaderboard pages: a benchmark's board (``/datasets/{ns}/{name}/leaderboard``, the dataset's "Leaderboard"
tab: sort, filters, 100 a page, the scatter, invalid entries with their reasons, pick models to compare), every
benchmark and the aggregate board over chosen ones (``/leaderboards``), and the side-by-side comparison of chosen
models (``/leaderboards/compare``). Thin: the boards come from ``evals.leaderboard``, the shaping from
``board_views``."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.errors import BadRequestError
from hubstead.evals import leaderboard
from hubstead.repos.service import get_readable_repo
from hubstead.web import board_views
from hubstead.web.pages import render, url_with, viewer
from hubstead.web.routes_repo import repo_context

router = APIRouter(include_in_schema=False)


def _page_number(request: Request) -> int:
    text = request.query_params.get("p", "1")
    if not text.isdigit() or int(text) < 1:
        raise BadRequestError("p must be a page number (1, 2, ...)")
    return int(text) - 1


def _per_page(request: Request) -> int:
    text = request.query_params.get("per_page", str(board_views.PER_PAGE))
    if not text.isdigit() or not 1 <= int(text) <= board_views.PER_PAGE:
        raise BadRequestError(f"per_page must be from 1 to {board_views.PER_PAGE}")
    return int(text)


def _ids(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "true", "on")


@router.get("/datasets/{namespace}/{name}/leaderboard", response_class=HTMLResponse)
def benchmark_page(namespace: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    repo = get_readable_repo(session, me.principal, repo_type="dataset", repo_id=f"{namespace}/{name}")
    query = request.query_params
    search, license, task_id = query.get("search") or None, query.get("license") or None, query.get("task") or None
    verified_only, base_model_only = _flag(request, "verified"), query.get("models") == "base"
    filters = {"search": search, "license": license, "task_id": task_id, "verified_only": verified_only,
               "base_model_only": base_model_only}
    board_of = partial(leaderboard.benchmark_board, request.app.state.hub, session, me.principal, repo.repo_id,
                       search=search, license=license, task_id=task_id, verified_only=verified_only,
                       base_model_only=base_model_only)
    try:
        view = board_views.board_view(board_of, sort=query.get("sort") or "rank", page=_page_number(request),
                                      url_with=partial(url_with, request), per_page=_per_page(request))
    except leaderboard.NotABenchmark as exc:  # the viewer may read the dataset: say why there is no board
        return render(request, "leaderboard.html", me, status_code=404, tab="leaderboard", view=None,
                      not_benchmark=exc.message, **repo_context(session, me, repo))
    return render(request, "leaderboard.html", me, tab="leaderboard", view=view, filters=filters,
                  picked=_ids(query.get("compare")), **repo_context(session, me, repo))


@router.get("/leaderboards", response_class=HTMLResponse)
def leaderboards_page(request: Request, session: Session = SessionDep) -> Response:
    """Every benchmark the viewer may read; with ``benchmarks=a/b,c/d`` (and ``method``), their aggregate board."""
    me = viewer(request, session)
    query = request.query_params
    if len(query.getlist("benchmarks")) > 1:  # the form's checkboxes: one comma list, so links keep every one
        params = {**dict(query), "benchmarks": ",".join(query.getlist("benchmarks"))}
        return RedirectResponse("/leaderboards?" + urlencode(params), status_code=303)
    chosen = _ids(query.get("benchmarks"))
    method = query.get("method") or "borda"
    view = None
    if chosen:
        board_of = partial(leaderboard.aggregate_board, request.app.state.hub, session, me.principal, chosen,
                           method=method, search=query.get("search") or None,
                           base_model_only=query.get("models") == "base", verified_only=_flag(request, "verified"))
        view = board_views.board_view(board_of, sort=query.get("sort") or "rank", page=_page_number(request),
                                      url_with=partial(url_with, request), per_page=_per_page(request))
    return render(request, "leaderboards.html", me, benchmarks=leaderboard.benchmarks(session, me.principal),
                  chosen=chosen, method=method, methods=board_views.METHODS, view=view)


@router.get("/leaderboards/compare", response_class=HTMLResponse)
def compare_page(request: Request, session: Session = SessionDep) -> Response:
    """``?models=a/b,c/d[&benchmarks=x/y,...]``: the models side by side (also ``models=a&models=b`` from the
    board's checkboxes)."""
    me = viewer(request, session)
    query = request.query_params
    models = [m for item in query.getlist("models") for m in _ids(item)]
    benchmarks = [b for item in query.getlist("benchmarks") for b in _ids(item)]
    comparison = board_views.compare(request.app.state.hub, session, me.principal, list(dict.fromkeys(models)),
                                     benchmarks)
    return render(request, "compare.html", me, **comparison)
