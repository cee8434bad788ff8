"""Per-column statistics of a split, in the dataset viewer's shapes, computed by DuckDB over the shards.

Numbers: nulls, min, max, mean, median, std and a 10-bin histogram (integer bins for integers). Class
labels: counts per label name (every name, zero counts included) and rows without a label. Strings are
labels (counts) when they have at most 10 distinct values, or at most 1000 that are no more than a fifth
of the rows (the Hub's rule); other text gets statistics of its length. Booleans: counts. Lists: length
statistics. Each statistic is one aggregate query streamed over the Parquet files, in bounded memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hubstead.viewer.features import kind_of
from hubstead.viewer.records import ColumnStatistics, ColumnStats, Histogram
from hubstead.viewer.search import connect

MAX_STRING_LABELS = 1000
ALWAYS_LABEL_UNIQUE = 10
MAX_LABEL_PROPORTION = 0.2
BINS = 10


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(paths: list[Path]) -> str:
    return "read_parquet([" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "])"


def compute_statistics(paths: list[Path], features: dict[str, Any]) -> list[ColumnStatistics]:
    if not paths:
        return []
    connection = connect()
    source = _files(paths)
    try:
        total_row = connection.execute(f"SELECT count(*) FROM {source}").fetchone()
        total = int(total_row[0]) if total_row else 0
        out: list[ColumnStatistics] = []
        for name, feature in features.items():
            kind = kind_of(feature)
            column = _quote(name)
            if kind in ("int", "float"):
                stats = _numeric(connection, source, column, total, integer=kind == "int")
                out.append({"column_name": name, "column_type": kind, "column_statistics": stats})
            elif kind == "class_label":
                out.append(
                    {
                        "column_name": name,
                        "column_type": "class_label",
                        "column_statistics": _class_label(connection, source, column, total, feature.get("names", [])),
                    }
                )
            elif kind == "bool":
                out.append(
                    {
                        "column_name": name,
                        "column_type": "bool",
                        "column_statistics": _frequencies(connection, source, column, total, as_text=True),
                    }
                )
            elif kind == "string":
                unique = _distinct(connection, source, column)
                if unique <= ALWAYS_LABEL_UNIQUE or (
                    unique <= MAX_STRING_LABELS and unique <= MAX_LABEL_PROPORTION * total
                ):
                    stats = _frequencies(connection, source, column, total)
                    out.append({"column_name": name, "column_type": "string_label", "column_statistics": stats})
                else:
                    stats = _numeric(connection, source, f"length({column})", total, integer=True, nulls_of=column)
                    out.append({"column_name": name, "column_type": "string_text", "column_statistics": stats})
            elif kind == "list":
                stats = _numeric(connection, source, f"len({column})", total, integer=True, nulls_of=column)
                out.append({"column_name": name, "column_type": "list", "column_statistics": stats})
            elif kind in ("image", "audio", "datetime"):
                nulls = connection.execute(f"SELECT count(*) - count({column}) FROM {source}").fetchone()
                count = int(nulls[0]) if nulls else 0
                out.append(
                    {
                        "column_name": name,
                        "column_type": kind,
                        "column_statistics": {"nan_count": count, "nan_proportion": _ratio(count, total)},
                    }
                )
        return out
    finally:
        connection.close()


def _distinct(connection: Any, source: str, column: str) -> int:
    """Distinct values: HyperLogLog first (4x faster on long text); exact only near the label threshold."""
    approx = connection.execute(f"SELECT approx_count_distinct({column}) FROM {source}").fetchone()
    if approx and int(approx[0]) > 2 * MAX_STRING_LABELS:
        return int(approx[0])
    exact = connection.execute(f"SELECT count(DISTINCT {column}) FROM {source}").fetchone()
    return int(exact[0]) if exact else 0


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 5) if whole else 0.0


def _clean(value: Any, integer: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return int(value) if integer and float(value).is_integer() else round(float(value), 5)


def _numeric(
    connection: Any, source: str, expression: str, total: int, *, integer: bool, nulls_of: str | None = None
) -> ColumnStats:
    """min/max/mean/median/std and a histogram of ``expression`` (NaN counts as missing, as the Hub does)."""
    value = (
        f"(CASE WHEN isnan(({expression})::DOUBLE) THEN NULL ELSE ({expression}) END)" if not integer else expression
    )
    row = connection.execute(
        f"SELECT count(*) - count({value}), min({value}), max({value}), avg({value}), median({value}), "
        f"stddev_samp({value}) FROM {source}"
    ).fetchone()
    nan_count = int(row[0])
    low, high = row[1], row[2]
    stats: ColumnStats = {
        "nan_count": nan_count,
        "nan_proportion": _ratio(nan_count, total),
        "min": _clean(low, integer),
        "max": _clean(high, integer),
        "mean": _clean(row[3], False),
        "median": _clean(row[4], False),
        "std": _clean(row[5], False),
        "histogram": {"hist": [], "bin_edges": []},
    }
    if low is None or high is None:
        return stats
    stats["histogram"] = _histogram(connection, source, value, float(low), float(high), integer)
    return stats


def _histogram(
    connection: Any, source: str, value: str, low: float, high: float, integer: bool
) -> Histogram:
    width: float
    if integer:
        width = max(1, math.ceil((high - low + 1) / BINS))
        bins = max(1, math.ceil((high - low + 1) / width))
        edges: list[Any] = [int(low + i * width) for i in range(bins)] + [int(high)]
    else:
        width = (high - low) / BINS if high > low else 1.0
        bins = BINS if high > low else 1
        edges = [round(low + i * width, 5) for i in range(bins)] + [round(high, 5)]
    rows = connection.execute(
        f"SELECT least(CAST(floor((({value}) - ?) / ?) AS BIGINT), ?), count(*) FROM {source} "
        f"WHERE {value} IS NOT NULL GROUP BY 1",
        [low, width, bins - 1],
    ).fetchall()
    hist = [0] * bins
    for index, count in rows:
        hist[int(index)] += int(count)
    return {"hist": hist, "bin_edges": edges}


def _frequencies(connection: Any, source: str, column: str, total: int, *, as_text: bool = False) -> ColumnStats:
    rows = connection.execute(
        f"SELECT {column}, count(*) FROM {source} GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    nan_count = sum(int(n) for value, n in rows if value is None)
    frequencies = {(str(v) if as_text or not isinstance(v, str) else v): int(n) for v, n in rows if v is not None}
    stats: ColumnStats = {"nan_count": nan_count, "nan_proportion": _ratio(nan_count, total)}
    if not as_text:
        stats["n_unique"] = len(frequencies)
    stats["frequencies"] = frequencies
    return stats


def _class_label(connection: Any, source: str, column: str, total: int, names: list[str]) -> ColumnStats:
    rows = connection.execute(f"SELECT {column}, count(*) FROM {source} GROUP BY 1").fetchall()
    nan_count = sum(int(n) for v, n in rows if v is None)
    no_label = sum(int(n) for v, n in rows if v is not None and (v < 0 or v >= len(names)))
    counts = {int(v): int(n) for v, n in rows if v is not None and 0 <= v < len(names)}
    frequencies = {name: counts.get(index, 0) for index, name in enumerate(names)}
    return {
        "nan_count": nan_count,
        "nan_proportion": _ratio(nan_count, total),
        "no_label_count": no_label,
        "no_label_proportion": _ratio(no_label, total),
        "n_unique": len(names),
        "frequencies": frequencies,
    }
