"""DuckDB for the viewer: one database file per split holding its rows and a BM25 full-text index.

DuckDB would download its ``fts`` extension at first use; there is no internet at our users' sites, so
the extension is loaded from the ``duckdb-ext-fts`` package (built for the pinned DuckDB version), and
automatic installing and loading are turned off on every connection. Connections that run user-driven
queries are read-only, have external access (files, network) disabled after the extension is loaded,
and lock their configuration: even a query that slipped past the filter parser could read nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import duckdb

from hubstead.viewer.features import kind_of

if TYPE_CHECKING:
    from hubstead.viewer.filters import Compiled

INDEX_COLUMN = "__hf_index_id"


class SearchUnavailable(RuntimeError):
    """The fts extension for this DuckDB version is not installed."""


def fts_extension_path() -> Path:
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise SearchUnavailable("Full-text search needs the duckdb-ext-fts package for this DuckDB version")
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), "amd64"
    )
    system = {"linux": "linux", "darwin": "osx", "windows": "windows"}[platform.system().lower()]
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / "extensions" / f"v{duckdb.__version__}" / f"{system}_{machine}" / "fts.duckdb_extension"
    if not path.is_file():
        raise SearchUnavailable(f"No fts extension for DuckDB {duckdb.__version__} at {path}")
    return path


def connect(
    database: str = ":memory:",
    *,
    read_only: bool = False,
    fts: bool = False,
    locked: bool = False,
    memory_limit: str = "1GB",
    temp_directory: str | None = None,
) -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": memory_limit,
        "threads": 2,
    }
    if temp_directory:
        config["temp_directory"] = temp_directory
    connection = duckdb.connect(database, read_only=read_only, config=config)
    if fts:
        connection.execute(f"LOAD '{fts_extension_path()}'")
    if locked:
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    return connection


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_search_index(parquet_files: list[Path], features: dict[str, Any], target: Path) -> bool:
    """Write ``target``: table ``data`` (row index + every column, in file order) and, when the split has
    text columns, a BM25 index over them. Returns whether full-text search is available."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".building")
    temporary.unlink(missing_ok=True)
    spill = target.parent / ".duckdb-tmp"
    connection = connect(str(temporary), temp_directory=str(spill), memory_limit=build_memory_limit())
    built = False
    try:
        offsets, total = [], 0
        for path in parquet_files:
            offsets.append((str(path), total))
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
        columns = ", ".join(_quote(c) for c in features)
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parquet_files) + "]"
        connection.execute("CREATE TEMP TABLE offsets (filename VARCHAR, start BIGINT)")
        connection.executemany("INSERT INTO offsets VALUES (?, ?)", offsets)
        connection.execute(
            f"CREATE TABLE data AS SELECT o.start + p.file_row_number AS {INDEX_COLUMN}, {columns} "
            f"FROM read_parquet({files}, filename = true, file_row_number = true) p "
            "JOIN offsets o ON o.filename = p.filename "
            f"ORDER BY {INDEX_COLUMN}"
        )
        text = [name for name, feature in features.items() if kind_of(feature) == "string"]
        searchable = False
        if text:
            connection.execute(f"LOAD '{fts_extension_path()}'")
            names = ", ".join("'" + c.replace("'", "''") + "'" for c in text)
            connection.execute(
                f"PRAGMA create_fts_index('data', '{INDEX_COLUMN}', {names}, stemmer = 'porter', "
                "stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)"
            )
            searchable = True
        connection.execute("CHECKPOINT")
        built = True
    finally:
        connection.close()
        shutil.rmtree(spill, ignore_errors=True)
        if not built:  # a failed build leaves nothing behind (it can be gigabytes)
            temporary.unlink(missing_ok=True)
            temporary.with_suffix(".building.wal").unlink(missing_ok=True)
    os.replace(temporary, target)
    return searchable


def build_memory_limit() -> str:
    """Building the full-text index needs memory in proportion to the text; DuckDB spills past the limit
    where it can, but the FTS pragma cannot, so the job gets a quarter of the machine (at least 2 GiB)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 2**30
    return f"{max(2 * 2**30, total // 4) // 2**20}MB"


_readers: dict[str, duckdb.DuckDBPyConnection] = {}
_readers_lock = threading.Lock()


def reader(index: Path) -> duckdb.DuckDBPyConnection:
    """A cursor on a shared read-only, locked connection to ``index`` (one per file, kept open: connecting
    and loading the extension cost ~75 ms per request). Each call gets its own cursor: thread-safe.

    One connection per file: DuckDB shares a database instance between connections to the same file in a
    process, so its (locked) configuration is set once, with the fts extension loaded for search."""
    key = str(index)
    with _readers_lock:
        connection = _readers.get(key)
        if connection is None:
            if len(_readers) > 64:
                for old in _readers.values():
                    old.close()
                _readers.clear()
            try:
                connection = connect(key, read_only=True, fts=True, locked=True)
            except SearchUnavailable:
                connection = connect(key, read_only=True, locked=True)  # filtering still works
            _readers[key] = connection
        return connection.cursor()


@dataclass(frozen=True)
class SearchTerms:
    """A search box's text: loose words and "quoted phrases". Every word and every phrase must match."""

    words: list[str]
    phrases: list[str]

    @property
    def text(self) -> str:
        """All words, the phrases' included, for the BM25 index (which ranks, and needs each word)."""
        return " ".join([*self.words, *self.phrases])


def parse_search(text: str) -> SearchTerms:
    """Split a query into words and phrases: ``"moving story" film`` -> phrases ["moving story"], words ["film"].
    A quote left open runs to the end; an empty pair of quotes is nothing."""
    words: list[str] = []
    phrases: list[str] = []
    parts = text.split('"')
    for i, part in enumerate(parts):
        if i % 2:  # inside quotes
            phrase = " ".join(part.split())
            if phrase:
                phrases.append(phrase)
        else:
            words.extend(part.split())
    return SearchTerms(words, phrases)


def phrase_pattern(phrase: str) -> str:
    """A case-insensitive RE2 pattern for ``phrase`` as whole words: its words in order, any whitespace between,
    not inside a longer word ("of" does not match "off"). Bound as a parameter, never pasted into SQL."""
    words = [re.escape(w) for w in phrase.split()]
    return r"(?is)(^|[^\w])" + r"\s+".join(words) + r"([^\w]|$)"


def search(
    index: Path, query: str, offset: int, length: int, text_columns: list[str] | None = None
) -> tuple[list[int], int]:
    """Row indices of the best BM25 matches (best first) and how many rows match in all: one pass over
    the index (the count rides along as a window), not one for the count and one for the page.

    Every word must match (after stemming; stopwords such as "the" are dropped, as the index dropped them),
    and every "quoted phrase" must appear as written (case-insensitive) in one of the text columns."""
    terms = parse_search(query)
    cursor = reader(index)
    try:
        if text_columns is None:
            text_columns = [name for name, kind in column_types_of(cursor).items() if kind == "VARCHAR"]
        tokens = cursor.execute(
            "SELECT list(t) FROM (SELECT unnest(fts_main_data.tokenize(?)) AS t) "
            "WHERE t <> '' AND t NOT IN (SELECT sw FROM fts_main_data.stopwords)",
            [terms.text],
        ).fetchone()
        words = " ".join(tokens[0] or []) if tokens else ""
        conditions, params = [], []
        for phrase in terms.phrases:
            conditions.append(
                "(" + " OR ".join(f"regexp_matches({_quote(c)}, ?)" for c in text_columns) + ")"
                if text_columns
                else "false"
            )
            params.extend([phrase_pattern(phrase)] * len(text_columns))
        phrase_clause = "".join(f" AND {c}" for c in conditions)
        if words:
            matches = (
                f"SELECT {INDEX_COLUMN} AS id, fts_main_data.match_bm25({INDEX_COLUMN}, ?, conjunctive := 1) AS score "
                f"FROM data WHERE true{phrase_clause}"
            )
            query_params = [words, *params]
        elif terms.phrases:  # only stopwords in the phrases ("to be"): the phrase alone decides, in row order
            matches = f"SELECT {INDEX_COLUMN} AS id, 0 AS score FROM data WHERE true{phrase_clause}"
            query_params = params
        else:
            return [], 0
        rows = cursor.execute(
            f"SELECT id, count(*) OVER () FROM ({matches}) WHERE score IS NOT NULL "
            "ORDER BY score DESC, id LIMIT ? OFFSET ?",
            [*query_params, length, offset],
        ).fetchall()
        if rows or offset == 0:
            return [int(r[0]) for r in rows], int(rows[0][1]) if rows else 0
        total = cursor.execute(f"SELECT count(*) FROM ({matches}) WHERE score IS NOT NULL", query_params).fetchone()
        return [], int(total[0]) if total else 0
    finally:
        cursor.close()


def filter_rows(
    index: Path, where: str | None, orderby: str | None, columns: dict[str, str] | None, offset: int, length: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    """Rows matching the (parsed, parameterized) ``where``, sorted by ``orderby``; with their row indices and
    the total count. ``where``/``orderby`` are compiled by ``viewer.filters``: no user text reaches SQL."""
    from hubstead.viewer.filters import compile_where

    types = columns or column_types(index)
    compiled = compile_where(where, types) if where and where.strip() else None
    return filter_compiled(index, compiled, orderby, types, offset, length)


def filter_compiled(
    index: Path, where: Compiled | None, orderby: str | None, columns: dict[str, str], offset: int, length: int
) -> tuple[list[dict[str, Any]], list[int], int]:
    """``filter_rows`` for a ``where`` already compiled (the page's SQL box and filter builder together)."""
    from hubstead.viewer.filters import compile_orderby

    clause, params = (f"WHERE {where.sql}", list(where.params)) if where else ("", [])
    order, params_order = "", []  # rows are stored in index order, and DuckDB keeps insertion order
    if orderby and orderby.strip():
        compiled_order = compile_orderby(orderby, columns)
        order = f"ORDER BY {compiled_order.sql}, {INDEX_COLUMN}"
        params_order = list(compiled_order.params)
    connection = reader(index)
    try:
        total = connection.execute(f"SELECT count(*) FROM data {clause}", params).fetchone()
        cursor = connection.execute(
            f"SELECT * FROM data {clause} {order} LIMIT ? OFFSET ?", [*params, *params_order, length, offset]
        )
        names = [d[0] for d in cursor.description]
        records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        connection.close()
    ids = [int(r.pop(INDEX_COLUMN)) for r in records]
    return records, ids, int(total[0]) if total else 0


STATISTICS_SAMPLE = 100_000
TOP_VALUES = 5


class FilteredColumn(TypedDict, total=False):
    """Statistics of one column over the rows a filter selects (``viewer_page`` draws them)."""

    name: str
    type: str
    count: int  # non-null values
    nulls: int
    min: Any
    max: Any
    mean: float | None
    top: list[tuple[str, int]]


def filtered_statistics(
    index: Path, where: Compiled | None, columns: dict[str, str], sample: int = STATISTICS_SAMPLE
) -> tuple[int, bool, list[FilteredColumn]]:
    """Per-column statistics of the first ``sample`` rows that ``where`` selects: (rows looked at, whether the
    sample cap cut them, the columns). Numbers: count, nulls, min/max/mean; text and booleans: the top values;
    other columns (lists, records, dates): count and nulls."""
    from hubstead.viewer.builder import _kind

    clause, params = (f"WHERE {where.sql}", list(where.params)) if where else ("", [])
    connection = reader(index)
    try:
        counted = connection.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM data {clause} LIMIT ?)", [*params, sample + 1]
        ).fetchone()
        rows = int(counted[0]) if counted else 0
        capped = rows > sample
        rows = min(rows, sample)
        source = f"(SELECT * FROM data {clause} LIMIT ?) AS s"
        base_params = [*params, sample]
        out: list[FilteredColumn] = []
        for name, type_name in columns.items():
            column = _quote(name)
            kind = _kind(type_name)
            item: FilteredColumn = {"name": name, "type": type_name, "min": None, "max": None, "mean": None, "top": []}
            if kind == "number":
                found = connection.execute(
                    f"SELECT count({column}), min({column}), max({column}), avg({column}) FROM {source}", base_params
                ).fetchone()
                assert found is not None
                item.update({"count": int(found[0]), "min": found[1], "max": found[2], "mean": found[3]})
            else:
                found = connection.execute(f"SELECT count({column}) FROM {source}", base_params).fetchone()
                assert found is not None
                item["count"] = int(found[0])
                if kind in ("text", "boolean"):
                    top = connection.execute(
                        f"SELECT CAST({column} AS VARCHAR) AS v, count(*) AS n FROM {source} "
                        f"WHERE {column} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT ?",
                        [*base_params, TOP_VALUES],
                    ).fetchall()
                    item["top"] = [(str(v), int(n)) for v, n in top]
            item["nulls"] = rows - item["count"]
            out.append(item)
    finally:
        connection.close()
    return rows, capped, out


def column_types(index: Path) -> dict[str, str]:
    connection = reader(index)
    try:
        return column_types_of(connection)
    finally:
        connection.close()


def column_types_of(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in connection.execute("DESCRIBE data").fetchall() if row[0] != INDEX_COLUMN}
