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
from hubstead.viewer.builder import OPERATORS, Condition, conditions_from
from hubstead.viewer.features import kind_of
from hubstead.viewer.records import ColumnStatistics, SplitRecord
from hubstead.viewer.service import state_of

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


def _page_numbers(page: int, pages: int, around: int = 2) -> list[int]:
    """A window of page numbers around ``page`` (first and last pages are links of their own)."""
    low = max(1, min(page - around, pages - 2 * around))
    return list(range(low, min(pages, low + 2 * around) + 1))


def viewer_context(request: Request, session: Session, repo: Repo, base: str) -> dict[str, Any]:
    """The viewer's state from the URL (``config split q where orderby fc fo fv page row stats``) and what it
    shows. ``canonical_url`` is that state's shareable URL; ``status`` is 400 when the filter is refused."""
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
    conditions = conditions_from(params.getlist("fc"), params.getlist("fo"), params.getlist("fv"))
    jump = _int(params.get("row"), 0)  # 1-based position in the current view
    page = _int(params.get("page"), 1) or 1
    if jump:
        page = (jump - 1) // PAGE_ROWS + 1
    elif params.get("offset"):  # older links
        page = _int(params.get("offset"), 0) // PAGE_ROWS + 1
    offset = (page - 1) * PAGE_ROWS
    keep: list[tuple[str, str]] = [("config", str(config)), ("split", str(split_name))]
    keep += [(k, v) for k, v in (("q", query), ("where", where), ("orderby", orderby)) if v]
    view = keep + _encoded(conditions)

    def url(**extra: Any) -> str:
        return f"{base}/viewer?" + urlencode(view + [(k, str(v)) for k, v in extra.items() if v])

    filtered = bool(where or orderby or conditions)
    context.update(
        configs=configs,
        config=config,
        splits=names,
        split=split_name,
        q=query,
        where=where,
        orderby=orderby,
        conditions=[
            {"c": c, "remove_url": f"{base}/viewer?" + urlencode(keep + _encoded(conditions[:i] + conditions[i + 1 :]))}
            for i, c in enumerate(conditions)
        ],
        operators=OPERATORS,
        offset=offset,
        page=page,
        jump=jump,
        page_rows=PAGE_ROWS,
        searchable=service.searchable(chosen),
        filtered=filtered,
        clear_url=f"{base}/viewer?" + urlencode(keep[:2]),
        canonical_url=url(row=jump) if jump else url(page=page if page > 1 else None, stats=params.get("stats") and 1),
    )
    # An htmx swap puts the view's URL in the address bar (the progress poll's refreshes do not).
    context["push_url"] = None if params.get("poll") else context["canonical_url"]
    try:
        records, ids, total = _page(request, chosen, query, where, conditions, orderby, offset)
    except HubError as exc:
        records, ids, total = [], [], 0
        context["query_error"] = exc.message
        context["status"] = 400 if exc.status_code in (400, 422) else exc.status_code
    if params.get("stats") and "query_error" not in context:
        try:
            sampled, capped, columns = service.page_statistics(
                request.app.state.hub, chosen, "" if query else where, [] if query else conditions
            )
            context["stats"] = {"rows": sampled, "capped": capped, "columns": columns}
        except HubError as exc:
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
        {"idx": r["row_idx"], "position": offset + i + 1, "cells": [_cell(r["row"][n], f) for n, f in features.items()]}
        for i, r in enumerate(rows)
    ]
    context["total"] = total
    context["num_rows"] = chosen.num_rows
    pages = max(1, -(-total // PAGE_ROWS))
    context["pages"] = pages
    context["page_links"] = [(n, url(page=n)) for n in _page_numbers(page, pages)]
    context["first_url"], context["last_url"] = url(page=1), url(page=pages)
    context["stats_url"] = url(page=page if page > 1 else None, stats=1)
    context["jump_keep"] = view
    if page > 1:
        context["prev_url"] = url(page=page - 1)
    if page < pages:
        context["next_url"] = url(page=page + 1)
    return context


def _encoded(conditions: list[Condition]) -> list[tuple[str, str]]:
    return [pair for c in conditions for pair in (("fc", c.column), ("fo", c.op), ("fv", c.value))]


def _page(
    request: Request,
    chosen: SplitRecord,
    query: str,
    where: str,
    conditions: list[Condition],
    orderby: str,
    offset: int,
) -> tuple[list[dict[str, Any]], list[int], int]:
    hub = request.app.state.hub
    if query:
        return service.search_page(hub, chosen, query, offset, PAGE_ROWS)
    if where or orderby or conditions:
        return service.page_filter(hub, chosen, where, conditions, orderby, offset, PAGE_ROWS)
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
