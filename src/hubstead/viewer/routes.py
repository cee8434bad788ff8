"""HTTP: the dataset viewer API under ``/datasets-server/`` and the Hub's ``/api/datasets/{id}/parquet``.

Paths, parameters and JSON follow the Hugging Face dataset viewer. Handlers check access with the
hub's rules (a private dataset is a 404 to strangers), then call ``viewer.service``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_caller, get_hub
from hubstead.jobs.service import job_json
from hubstead.repos.models import Repo
from hubstead.repos.service import get_readable_repo, require_file_content_access
from hubstead.viewer import service
from hubstead.viewer.answers import (
    ConfigInfo,
    ConfigInfoAnswer,
    ConfigSize,
    DatasetInfoAnswer,
    DatasetSize,
    FirstRowsAnswer,
    HubParquetAnswer,
    IsValidAnswer,
    ParquetAnswer,
    ParquetEntry,
    ParquetTree,
    RowsAnswer,
    SizeAnswer,
    Sizes,
    SplitsAnswer,
    SplitSize,
    StatisticsAnswer,
    ViewerStatusAnswer,
)
from hubstead.viewer.records import ConfigRecord, SplitRecord
from hubstead.viewer.service import MAX_LENGTH, ViewerError, ViewerState, state_of
from hubstead.viewer.store import DatasetConversion

router = APIRouter(tags=["dataset viewer"])
CONVERT_REVISION = quote("refs/convert/parquet", safe="")


def _open(request: Request, session: Session, dataset: str | None) -> ViewerState:
    if not dataset or "/" not in dataset:
        raise ViewerError(
            "Parameter 'dataset' is required: the dataset id, e.g. org/name",
            status_code=422,
            code="MissingRequiredParameter",
        )
    principal = get_caller(request, session, browser="session")
    repo = get_readable_repo(session, principal, repo_type="dataset", repo_id=dataset)
    require_file_content_access(session, repo, principal)
    return state_of(session, repo)


def _int(request: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ViewerError(f"Parameter '{name}' must be an integer", status_code=422, code="InvalidParameter") from exc
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ViewerError(f"Parameter '{name}' must be {bound}", status_code=422, code="InvalidParameter")
    return value


async def _run(request: Request, work: Callable[[Session], object]) -> Response:
    """Run ``work(session)`` in the thread pool with a DB session; JSON out."""
    hub = get_hub(request)

    def call() -> object:
        with hub.db.session() as session:
            return work(session)

    return JSONResponse(await run_in_threadpool(call))


def _parquet_url(request: Request, repo: Repo, path: str) -> str:
    return f"{base_url(request)}/datasets/{repo.repo_id}/resolve/{CONVERT_REVISION}/{quote(path)}"


@router.get("/datasets-server/is-valid")
async def is_valid(request: Request, dataset: str | None = None) -> Response:
    def work(session: Session) -> IsValidAnswer:
        state = _open(request, session, dataset)
        ok = [s for s in state.splits() if s.ok]
        searchable = any(service.searchable(s) for s in ok)
        return {
            "preview": bool(ok),
            "viewer": bool(ok),
            "search": searchable,
            "filter": bool(ok),
            "statistics": bool(ok),
        }

    return await _run(request, work)


@router.get("/datasets-server/splits")
async def splits(request: Request, dataset: str | None = None, config: str | None = None) -> Response:
    def work(session: Session) -> SplitsAnswer:
        state, _ = _converted(request, session, dataset)
        if not state.splits():
            _conversion_failed(state)  # no split at all: the dataset's layout itself was refused
        listed = [s for s in state.splits() if config is None or s.config == config]
        if config is not None and not listed:
            raise ViewerError(f"Config {config!r} does not exist", code="ResponseNotFound")
        return {
            "splits": [{"dataset": state.repo.repo_id, "config": s.config, "split": s.split} for s in listed if s.ok],
            "pending": [],
            "failed": [
                {"dataset": state.repo.repo_id, "config": s.config, "split": s.split, "error": {"error": s.error}}
                for s in listed
                if not s.ok
            ],
        }

    return await _run(request, work)


def _converted(request: Request, session: Session, dataset: str | None) -> tuple[ViewerState, DatasetConversion]:
    """The dataset's state and its conversion, or the viewer's error for why there is none yet."""
    state = _open(request, session, dataset)
    if state.conversion is None:
        _not_ready(state)
    assert state.conversion is not None
    return state, state.conversion


def _not_ready(state: ViewerState) -> None:
    if state.pending:
        raise ViewerError(
            "The dataset is being converted; the response is not ready yet. Retry shortly.",
            status_code=500,
            code="ResponseNotReady",
        )
    if state.job is not None and state.job.status == "failed":
        raise ViewerError(
            f"The dataset could not be converted: {state.job.error}", status_code=500, code="DatasetConversionError"
        )
    raise ViewerError("The dataset has no viewer data yet", code="ResponseNotFound")


def _conversion_failed(state: ViewerState) -> None:
    if state.conversion is not None and state.conversion.status == "failed":
        raise ViewerError(
            f"The dataset could not be converted: {state.conversion.error}",
            status_code=500,
            code="DatasetConversionError",
        )


def _rows_answer(
    request: Request,
    state: ViewerState,
    split: SplitRecord,
    records: list[dict[str, Any]],
    row_ids: list[int],
    total: int,
) -> RowsAnswer:
    assert state.conversion is not None
    features = split.features
    return {
        "features": service.features_list(features),
        "rows": service.row_items(
            records,
            row_ids,
            features,
            base_url=base_url(request),
            repo=state.repo,
            source_commit=state.conversion.source_commit,
        ),
        "num_rows_total": total,
        "num_rows_per_page": MAX_LENGTH,
        "partial": False,
    }


@router.get("/datasets-server/first-rows")
async def first_rows(
    request: Request, dataset: str | None = None, config: str | None = None, split: str | None = None
) -> Response:
    def work(session: Session) -> FirstRowsAnswer:
        state = _open(request, session, dataset)
        _conversion_failed(state)
        chosen = state.split(config, split)
        hub = get_hub(request)
        table, ids = service.read_rows(hub, chosen, 0, service.FIRST_ROWS)
        assert state.conversion is not None
        rows = service.row_items(
            table.to_pylist() if ids else [],
            ids,
            chosen.features,
            base_url=base_url(request),
            repo=state.repo,
            source_commit=state.conversion.source_commit,
            truncate=True,
        )
        return {
            "dataset": state.repo.repo_id,
            "config": chosen.config,
            "split": chosen.split,
            "features": service.features_list(chosen.features),
            "rows": rows,
            "truncated": chosen.num_rows > len(rows),
        }

    return await _run(request, work)


@router.get("/datasets-server/rows")
async def rows(
    request: Request, dataset: str | None = None, config: str | None = None, split: str | None = None
) -> Response:
    offset = _int(request, "offset", 0, low=0)
    length = _int(request, "length", MAX_LENGTH, low=0, high=MAX_LENGTH)

    def work(session: Session) -> RowsAnswer:
        state = _open(request, session, dataset)
        _conversion_failed(state)
        chosen = state.split(config, split)
        table, ids = service.read_rows(get_hub(request), chosen, offset, length)
        return _rows_answer(request, state, chosen, table.to_pylist() if ids else [], ids, chosen.num_rows)

    return await _run(request, work)


@router.get("/datasets-server/search")
async def search(
    request: Request,
    dataset: str | None = None,
    config: str | None = None,
    split: str | None = None,
    query: str | None = None,
) -> Response:
    offset = _int(request, "offset", 0, low=0)
    length = _int(request, "length", MAX_LENGTH, low=0, high=MAX_LENGTH)
    if not query or not query.strip():
        raise ViewerError("Parameter 'query' is required", status_code=422, code="MissingRequiredParameter")
    if len(query) > 1000:
        raise ViewerError(
            "Parameter 'query' is too long (1000 characters at most)", status_code=422, code="InvalidParameter"
        )

    def work(session: Session) -> RowsAnswer:
        state = _open(request, session, dataset)
        _conversion_failed(state)
        chosen = state.split(config, split)
        records, ids, total = service.search_page(get_hub(request), chosen, query, offset, length)
        return _rows_answer(request, state, chosen, records, ids, total)

    return await _run(request, work)


@router.get("/datasets-server/filter")
async def filter_(
    request: Request,
    dataset: str | None = None,
    config: str | None = None,
    split: str | None = None,
    where: str | None = None,
    orderby: str | None = None,
) -> Response:
    offset = _int(request, "offset", 0, low=0)
    length = _int(request, "length", MAX_LENGTH, low=0, high=MAX_LENGTH)
    if not (where and where.strip()) and not (orderby and orderby.strip()):
        raise ViewerError("Give 'where' or 'orderby' (or both)", status_code=422, code="MissingRequiredParameter")

    def work(session: Session) -> RowsAnswer:
        state = _open(request, session, dataset)
        _conversion_failed(state)
        chosen = state.split(config, split)
        records, ids, total = service.filter_page(get_hub(request), chosen, where, orderby, offset, length)
        return _rows_answer(request, state, chosen, records, ids, total)

    return await _run(request, work)


@router.get("/datasets-server/statistics")
async def statistics(
    request: Request, dataset: str | None = None, config: str | None = None, split: str | None = None
) -> Response:
    def work(session: Session) -> StatisticsAnswer:
        state = _open(request, session, dataset)
        _conversion_failed(state)
        chosen = state.split(config, split)
        return {"num_examples": chosen.num_rows, "statistics": list(chosen.statistics), "partial": False}

    return await _run(request, work)


def _config_info(state: ViewerState, config: ConfigRecord) -> ConfigInfo:
    ok = [s for s in config.splits if s.ok]
    features = ok[0].features if ok else {}
    card = state.repo.card_data or {}
    return {
        "description": "",
        "citation": "",
        "homepage": "",
        "license": card.get("license", "") if isinstance(card.get("license"), str) else "",
        "features": features,
        "builder_name": config.builder,
        "dataset_name": state.repo.name,
        "config_name": config.config,
        "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0},
        "splits": {
            s.split: {
                "name": s.split,
                "num_bytes": s.num_bytes_memory,
                "num_examples": s.num_rows,
                "dataset_name": state.repo.name,
            }
            for s in ok
        },
        "download_size": sum(s.num_bytes_parquet_files for s in ok),
        "dataset_size": sum(s.num_bytes_memory for s in ok),
    }


@router.get("/datasets-server/info")
async def info(request: Request, dataset: str | None = None, config: str | None = None) -> Response:
    def work(session: Session) -> ConfigInfoAnswer | DatasetInfoAnswer:
        state, _ = _converted(request, session, dataset)
        configs = state.configs
        if config is not None:
            chosen = next((c for c in configs if c.config == config), None)
            if chosen is None:
                raise ViewerError(f"Config {config!r} does not exist", code="ResponseNotFound")
            return {"dataset_info": _config_info(state, chosen), "partial": False}
        return {
            "dataset_info": {c.config: _config_info(state, c) for c in configs},
            "pending": [],
            "failed": [],
            "partial": False,
        }

    return await _run(request, work)


@router.get("/datasets-server/size")
async def size(request: Request, dataset: str | None = None, config: str | None = None) -> Response:
    def work(session: Session) -> SizeAnswer:
        state, _ = _converted(request, session, dataset)
        repo_id = state.repo.repo_id
        configs = [c for c in state.configs if config is None or c.config == config]
        if config is not None and not configs:
            raise ViewerError(f"Config {config!r} does not exist", code="ResponseNotFound")
        split_sizes: list[SplitSize] = [
            {
                "dataset": repo_id,
                "config": c.config,
                "split": s.split,
                "num_bytes_parquet_files": s.num_bytes_parquet_files,
                "num_bytes_memory": s.num_bytes_memory,
                "num_rows": s.num_rows,
                "num_columns": s.num_columns,
            }
            for c in configs
            for s in c.splits
            if s.ok
        ]
        config_sizes: list[ConfigSize] = []
        for c in configs:
            mine = [s for s in split_sizes if s["config"] == c.config]
            config_sizes.append(
                {
                    "dataset": repo_id,
                    "config": c.config,
                    "num_bytes_original_files": None,
                    "num_bytes_parquet_files": sum(s["num_bytes_parquet_files"] for s in mine),
                    "num_bytes_memory": sum(s["num_bytes_memory"] for s in mine),
                    "num_rows": sum(s["num_rows"] for s in mine),
                    "num_columns": max((s["num_columns"] for s in mine), default=0),
                }
            )
        totals: DatasetSize = {
            "dataset": repo_id,
            "num_bytes_original_files": None,
            "num_bytes_parquet_files": sum(c["num_bytes_parquet_files"] for c in config_sizes),
            "num_bytes_memory": sum(c["num_bytes_memory"] for c in config_sizes),
            "num_rows": sum(c["num_rows"] for c in config_sizes),
        }
        body: Sizes = {"configs": config_sizes, "splits": split_sizes}
        if config is None:
            body["dataset"] = totals
        else:
            body["config"] = config_sizes[0]
        return {"size": body, "pending": [], "failed": [], "partial": False}

    return await _run(request, work)


def _parquet_entries(request: Request, state: ViewerState) -> list[ParquetEntry]:
    return [
        {
            "dataset": state.repo.repo_id,
            "config": s.config,
            "split": s.split,
            "url": _parquet_url(request, state.repo, f.path),
            "filename": f.filename,
            "size": f.size,
        }
        for s in state.splits()
        if s.ok
        for f in s.files
    ]


@router.get("/datasets-server/parquet")
async def parquet(request: Request, dataset: str | None = None, config: str | None = None) -> Response:
    def work(session: Session) -> ParquetAnswer:
        state, _ = _converted(request, session, dataset)
        entries = [e for e in _parquet_entries(request, state) if config is None or e["config"] == config]
        return {"parquet_files": entries, "pending": [], "failed": [], "partial": False}

    return await _run(request, work)


@router.get("/api/datasets/{namespace}/{name}/parquet")
async def hub_parquet(request: Request, namespace: str, name: str) -> Response:
    return await _hub_parquet(request, f"{namespace}/{name}", None, None)


@router.get("/api/datasets/{namespace}/{name}/parquet/{config}")
async def hub_parquet_config(request: Request, namespace: str, name: str, config: str) -> Response:
    return await _hub_parquet(request, f"{namespace}/{name}", config, None)


@router.get("/api/datasets/{namespace}/{name}/parquet/{config}/{split}")
async def hub_parquet_split(request: Request, namespace: str, name: str, config: str, split: str) -> Response:
    return await _hub_parquet(request, f"{namespace}/{name}", config, split)


@router.get("/api/datasets/{namespace}/{name}/parquet/{config}/{split}/{filename}")
async def hub_parquet_file(
    request: Request, namespace: str, name: str, config: str, split: str, filename: str
) -> Response:
    """``.../parquet/{config}/{split}/0.parquet`` (the Hub's numbering) redirects to the file on the branch."""
    stem = filename.removesuffix(".parquet")
    if not stem.isdigit():
        raise ViewerError("Expected a file name like 0.parquet", status_code=404, code="ResponseNotFound")
    target = f"{config}/{split}/{int(stem):04d}.parquet"
    return RedirectResponse(
        f"{base_url(request)}/datasets/{namespace}/{name}/resolve/{CONVERT_REVISION}/{quote(target)}", status_code=302
    )


async def _hub_parquet(request: Request, dataset: str, config: str | None, split: str | None) -> Response:
    def work(session: Session) -> HubParquetAnswer:
        state, _ = _converted(request, session, dataset)
        tree: ParquetTree = {}
        for entry in _parquet_entries(request, state):
            tree.setdefault(entry["config"], {}).setdefault(entry["split"], []).append(entry["url"])
        if config is None:
            return tree
        if config not in tree:
            raise ViewerError(f"Config {config!r} does not exist", code="ResponseNotFound")
        if split is None:
            return tree[config]
        if split not in tree[config]:
            raise ViewerError(f"Split {split!r} does not exist", code="ResponseNotFound")
        return tree[config][split]

    return await _run(request, work)


@router.get("/api/datasets/{namespace}/{name}/viewer-status")
async def viewer_status(request: Request, namespace: str, name: str) -> Response:
    """The conversion's state for the page (and operators): the job's progress and the result's summary."""

    def work(session: Session) -> ViewerStatusAnswer:
        state = _open(request, session, f"{namespace}/{name}")
        conversion = state.conversion
        return {
            "job": job_json(state.job) if state.job else None,
            "conversion": None
            if conversion is None
            else {
                "status": conversion.status,
                "error": conversion.error,
                "source_commit": conversion.source_commit,
                "parquet_commit": conversion.parquet_commit,
                "splits": [
                    {
                        "config": s.config,
                        "split": s.split,
                        "status": s.status,
                        "error": s.error,
                        "num_rows": s.num_rows,
                        "index_error": s.index_error,
                        "statistics_error": s.statistics_error,
                    }
                    for s in state.splits()
                ],
            },
        }

    return await _run(request, work)
