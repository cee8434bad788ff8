"""The dataset viewer on the dataset's pages: pickers, a paged table of typed cells, search, filter,
column statistics, and the conversion's progress while it runs. Server-rendered; htmx swaps the
viewer in place for every pick, page, search and filter (and polls while a conversion runs)."""

from __future__ import annotations

import json
from typing import Any, TypedDict
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy.orm import Session

from hubstead.api.deps import base_url
from hubstead.errors import HubError
from hubstead.repos.models import Repo
from hubstead.viewer import service
from hubstead.viewer.features import kind_of
from hubstead.viewer.records import ColumnStatistics, SplitRecord
from hubstead.viewer.service import ViewerState, state_of

PAGE_ROWS = 25
FOLD_CHARS = 240


class Bar(TypedDict):
    height: int  # percent of the tallest bin
    count: int
    label: str


class Share(TypedDict):
    value: str
    share: float  # percent


class Column(TypedDict, total=False):
    """A column header: name, kind, label names, and a small chart of its statistics when there are some."""

    name: str
    kind: str
    labels: list[str] | None
    stat_type: str
    bars: list[Bar]
    range: tuple[int | float | None, int | float | None]
    top: list[Share]
    n_unique: int
    nulls: int


class Cell(TypedDict, total=False):
    """A table cell as the template draws it (``kind`` picks how; the other keys depend on it)."""

    kind: str  # null | image | audio | label | number | bool | text | json
    src: str | None
    type: str | None
    value: Any
    name: str | None
    fold: bool
    short: str


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value or default), 0)
    except ValueError:
        return default


def viewer_context(request: Request, session: Session, repo: Repo, base: str) -> dict[str, Any]:
    state = state_of(session, repo)
    params = request.query_params
    context: dict[str, Any] = {"viewer_url": f"{base}/viewer", "job": state.job, "conversion": state.conversion}
    if state.pending:
        context["progress"] = round(100 * (state.job.progress if state.job else 0))
    if state.conversion is None:
        return context
    ok = [s for s in state.splits() if s.ok]
    context["failed_splits"] = [s for s in state.splits() if not s.ok]
    if not ok:
        return context
    configs = list(dict.fromkeys(s.config for s in ok))
    config = params.get("config") if params.get("config") in configs else configs[0]
    names = [s.split for s in ok if s.config == config]
    default_split = "train" if "train" in names else names[0]
    split_name = params.get("split") if params.get("split") in names else default_split
    chosen = state.split(config, split_name)
    query, where, orderby = (
        (params.get("q") or "").strip(),
        (params.get("where") or "").strip(),
        (params.get("orderby") or "").strip(),
    )
    offset = _int(params.get("offset"), 0)
    context.update(
        configs=configs,
        config=config,
        splits=names,
        split=split_name,
        q=query,
        where=where,
        orderby=orderby,
        offset=offset,
        page_rows=PAGE_ROWS,
        searchable=service.searchable(chosen),
    )
    try:
        records, ids, total = _page(request, state, chosen, query, where, orderby, offset)
    except HubError as exc:
        records, ids, total = [], [], 0
        context["query_error"] = exc.message
    if chosen.index_error:
        context["index_error"] = chosen.index_error
    features = chosen.features
    statistics = {s["column_name"]: s for s in chosen.statistics}
    context["columns"] = [_column(name, feature, statistics.get(name)) for name, feature in features.items()]
    assert state.conversion is not None
    rows = service.row_items(
        records, ids, features, base_url=base_url(request), repo=repo, source_commit=state.conversion.source_commit
    )
    context["rows"] = [
        {"idx": r["row_idx"], "cells": [_cell(r["row"][n], f) for n, f in features.items()]} for r in rows
    ]
    context["total"] = total
    context["num_rows"] = chosen.num_rows
    keep = {"config": config, "split": split_name, "q": query, "where": where, "orderby": orderby}
    keep = {k: v for k, v in keep.items() if v}
    if offset > 0:
        context["prev_url"] = f"{base}/viewer?" + urlencode({**keep, "offset": max(offset - PAGE_ROWS, 0)})
    if offset + PAGE_ROWS < total:
        context["next_url"] = f"{base}/viewer?" + urlencode({**keep, "offset": offset + PAGE_ROWS})
    return context


def _page(
    request: Request, state: ViewerState, chosen: SplitRecord, query: str, where: str, orderby: str, offset: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    hub = request.app.state.hub
    if query:
        return service.search_page(hub, chosen, query, offset, PAGE_ROWS)
    if where or orderby:
        return service.filter_page(hub, chosen, where, orderby, offset, PAGE_ROWS)
    table, ids = service.read_rows(hub, chosen, offset, PAGE_ROWS)
    return (table.to_pylist() if ids else []), ids, chosen.num_rows


def _column(name: str, feature: Any, stats: ColumnStatistics | None) -> Column:
    kind = kind_of(feature)
    column: Column = {
        "name": name,
        "kind": kind,
        "labels": feature.get("names") if isinstance(feature, dict) else None,
    }
    if stats:
        numbers = stats["column_statistics"]
        column["stat_type"] = stats["column_type"]
        histogram = numbers.get("histogram")
        if histogram and histogram.get("hist"):
            peak = max(histogram["hist"]) or 1
            column["bars"] = [
                {
                    "height": round(100 * h / peak),
                    "count": h,
                    "label": f"{histogram['bin_edges'][i]} – {histogram['bin_edges'][i + 1]}",
                }
                for i, h in enumerate(histogram["hist"])
            ]
            column["range"] = (numbers.get("min"), numbers.get("max"))
        elif numbers.get("frequencies"):
            total = sum(numbers["frequencies"].values()) or 1
            column["top"] = [
                {"value": v, "share": round(100 * n / total, 1)} for v, n in list(numbers["frequencies"].items())[:3]
            ]
            column["n_unique"] = numbers.get("n_unique", len(numbers["frequencies"]))
        if numbers.get("nan_count"):
            column["nulls"] = numbers["nan_count"]
    return column


def _cell(value: Any, feature: Any) -> Cell:
    kind = kind_of(feature)
    if value is None:
        return {"kind": "null"}
    if kind == "image":
        return {"kind": "image", "src": value.get("src") if isinstance(value, dict) else None}
    if kind == "audio":
        first = value[0] if isinstance(value, list) and value else {}
        return {"kind": "audio", "src": first.get("src"), "type": first.get("type")}
    if kind == "class_label":
        names = feature.get("names") or []
        return {
            "kind": "label",
            "value": value,
            "name": names[value] if isinstance(value, int) and 0 <= value < len(names) else None,
        }
    if kind in ("int", "float"):
        return {"kind": "number", "value": value}
    if kind == "bool":
        return {"kind": "bool", "value": value}
    if isinstance(value, str):
        return {"kind": "text", "value": value, "fold": len(value) > FOLD_CHARS, "short": value[:FOLD_CHARS]}
    text = json.dumps(value, ensure_ascii=False)
    return {"kind": "json", "value": text, "fold": len(text) > FOLD_CHARS, "short": text[:FOLD_CHARS]}
