"""Streaming readers: a data file in, Arrow record batches out, in bounded memory.

CSV and JSON Lines are read block by block with pyarrow. Their column types are inferred from the
first block, so a column that changes type later (numbers, then text) fails mid-file: the file is then
read again with that column as text. To make that retry safe, each file is read completely (into a
spill file on disk) before any of its rows reach the split's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

BATCH_ROWS = 10_000
BLOCK_BYTES = 4 * 1024 * 1024
# A .json file holding one array must be parsed whole; past this size that would not fit in bounded
# memory, so such files are refused with a pointer to JSON Lines (which streams).
MAX_JSON_ARRAY_BYTES = 512 * 1024 * 1024
# JSON nested deeper than this is refused before a parser sees it: pyarrow's JSON reader recurses per
# level and a 200 KB line of 100,000 brackets crashed the job process (SIGSEGV). Real datasets nest a
# handful of levels; Arrow types 100 deep are already unusable.
MAX_JSON_DEPTH = 100


class SourceError(ValueError):
    """A data file that cannot be read, with the file and the place in it."""


def read_batches(path: Path, builder: str, options: dict[str, Any], name: str) -> Iterator[pa.RecordBatch]:
    """Batches of ``path`` (``name`` is its path in the repo, for messages)."""
    try:
        if builder == "csv":
            yield from _csv(path, options.get("sep", ","), name)
        elif builder == "json":
            yield from _json(path, name)
        elif builder == "parquet":
            # pre_buffer=False: pyarrow would otherwise read whole column chunks ahead (a 637 MiB file held
            # 645 MiB); reading page by page keeps the job's memory flat.
            parquet = pq.ParquetFile(path, buffer_size=BLOCK_BYTES, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
        elif builder == "arrow":
            yield from _arrow(path)
        elif builder == "text":
            yield from _text(path, name)
        else:
            raise SourceError(f"{name}: no reader for {builder}")
    except SourceError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{name}: {_clean(exc)}") from exc


def _clean(exc: Exception) -> str:
    return str(exc).split("\n")[0][:500]


_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")


def _csv(path: Path, sep: str, name: str) -> Iterator[pa.RecordBatch]:
    if path.stat().st_size == 0:
        return
    forced: dict[str, pa.DataType] = {}
    for _ in range(256):
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types=forced, strings_can_be_null=True),
            )
            yield from _spilled(reader)
            return
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "Empty CSV file" in message:
                return
            found = _CSV_COLUMN.search(message)
            if not found or "conversion error" not in message:
                raise SourceError(f"{name}: {_clean(exc)}") from exc
            names = pacsv.open_csv(
                path, parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
            ).schema.names
            forced[names[int(found.group(1))]] = pa.string()  # mixed types: keep the column as text
    raise SourceError(f"{name}: too many columns with mixed types")


def _spilled(reader: Any) -> Iterator[pa.RecordBatch]:
    """Read ``reader`` to the end into a temporary Arrow file, then yield its batches from disk."""
    import tempfile

    with tempfile.TemporaryFile() as spill:
        sink = pa.PythonFile(spill, mode="w")
        writer = None
        for batch in reader:
            if writer is None:
                writer = ipc.new_stream(sink, batch.schema)
            writer.write_batch(batch)
        if writer is None:
            return
        writer.close()
        spill.seek(0)
        stream = ipc.open_stream(pa.PythonFile(spill, mode="r"))
        yield from stream


_JSON_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def check_json_depth(path: Path, name: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON or JSON Lines file nested deeper than ``limit``, reading it line by line (a string
    never spans lines in JSON). A line that cannot reach the limit (few enough brackets) is skipped after
    two counts; only the others are scanned bracket by bracket, with strings removed first."""
    depth = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            opening = line.count(b"[") + line.count(b"{")
            if depth + opening <= limit:
                if depth == 0 and opening == line.count(b"]") + line.count(b"}"):
                    continue  # balanced and shallow: the usual JSON Lines row
                if not depth and not opening:
                    continue
            for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", line)):
                depth += 1 if bracket.group() in (b"[", b"{") else -1
                if depth > limit:
                    raise SourceError(
                        f"{name}, line {number}: nested more than {limit} levels deep; the viewer reads "
                        f"JSON nested at most {limit} levels"
                    )
            depth = max(depth, 0)


def _json(path: Path, name: str) -> Iterator[pa.RecordBatch]:
    if path.stat().st_size == 0:
        return
    check_json_depth(path, name)
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith(b"["):
        yield from _json_array(path, name)
        return
    try:
        reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=BLOCK_BYTES))
        yield from _spilled(reader)
    except pa.ArrowInvalid as exc:
        if "changed from" not in str(exc) and "conversion" not in str(exc).lower():
            raise SourceError(f"{name}: {_clean(exc)}") from exc
        yield from _json_lines_python(path, name)  # a field changes type: read it as text where it must


def _json_lines_python(path: Path, name: str) -> Iterator[pa.RecordBatch]:
    rows: list[dict[str, Any]] = []
    mixed: set[str] = _mixed_json_fields(path, name)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            rows.append(_stringify(_parse_line(line, name, number), mixed))
            if len(rows) >= BATCH_ROWS:
                yield _to_batch(rows, name)
                rows = []
    if rows:
        yield _to_batch(rows, name)


def _parse_line(line: str, name: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{name}, line {number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise SourceError(f"{name}, line {number}: each line must be a JSON object")
    return value


def _mixed_json_fields(path: Path, name: str) -> set[str]:
    kinds: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                for key, value in _parse_line(line, name, number).items():
                    if value is not None:
                        kinds.setdefault(key, set()).add(_kind(value))
    return {key for key, seen in kinds.items() if len(seen) > 1}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _stringify(row: dict[str, Any], mixed: set[str]) -> dict[str, Any]:
    for key in mixed & row.keys():
        value = row[key]
        if value is not None and not isinstance(value, str):
            row[key] = json.dumps(value, ensure_ascii=False)
    return row


def _to_batch(rows: list[dict[str, Any]], name: str) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SourceError(f"{name}: {_clean(exc)}") from exc


def _json_array(path: Path, name: str) -> Iterator[pa.RecordBatch]:
    """A file holding one JSON array of objects."""
    size = path.stat().st_size
    if size > MAX_JSON_ARRAY_BYTES:
        raise SourceError(
            f"{name} is a {size / 2**30:.1f} GiB JSON array, which must be read whole; files over "
            f"{MAX_JSON_ARRAY_BYTES // 2**20} MiB must be JSON Lines (one object per line) to be converted"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{name}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise SourceError(f"{name}: nested too deeply to be read") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SourceError(f"{name}: a .json file must hold a list of objects (or use JSON Lines)")
    kinds: dict[str, set[str]] = {}
    for row in data:
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add(_kind(value))
    mixed = {key for key, seen in kinds.items() if len(seen) > 1}
    for start in range(0, len(data), BATCH_ROWS):
        yield _to_batch([_stringify(dict(r), mixed) for r in data[start : start + BATCH_ROWS]], name)


def _arrow(path: Path) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    source = pa.memory_map(str(path))
    if magic == b"ARROW1":
        file_reader = ipc.open_file(source)
        for index in range(file_reader.num_record_batches):
            yield file_reader.get_batch(index)
    else:  # the streaming format, which `datasets` writes
        yield from ipc.open_stream(source)


def _text(path: Path, name: str) -> Iterator[pa.RecordBatch]:
    lines: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            lines.append(line.rstrip("\n").rstrip("\r"))
            if len(lines) >= BATCH_ROWS:
                yield pa.RecordBatch.from_pydict({"text": lines})
                lines = []
    if lines:
        yield pa.RecordBatch.from_pydict({"text": lines})
