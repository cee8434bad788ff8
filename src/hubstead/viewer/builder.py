"""The viewer page's filter builder: (column, operator, value) conditions -> one safe WHERE clause.

The page's filter builder sends conditions as three parallel lists (``fc``, ``fo``, ``fv``). Each column must be one
of the split's columns, each operator one of ``OPERATORS``, and the value is checked against the column's type and
bound as a ``?`` parameter: the SQL is made only of our double-quoted known column names, fixed operator text and
placeholders. Conditions are joined with AND, and with the SQL box's ``where`` (compiled by ``viewer.filters``).
Anything else is a ``FilterError`` whose message says what to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hubstead.viewer.filters import Compiled, FilterError, compile_where

MAX_CONDITIONS = 20
MAX_VALUE = 1000

# operator key -> (label shown in the page, needs a value)
OPERATORS: dict[str, tuple[str, bool]] = {
    "eq": ("=", True),
    "ne": ("≠", True),
    "lt": ("<", True),
    "le": ("≤", True),
    "gt": (">", True),
    "ge": ("≥", True),
    "contains": ("contains", True),
    "starts": ("starts with", True),
    "null": ("is null", False),
    "notnull": ("is not null", False),
}
_COMPARE = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_TEXT_ONLY = ("contains", "starts")
_NUMERIC = frozenset(
    "TINYINT SMALLINT INTEGER INT BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT "
    "FLOAT REAL DOUBLE DECIMAL NUMERIC".split()
)
_INTEGER = frozenset("TINYINT SMALLINT INTEGER INT BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT".split())
_TEXT = frozenset({"VARCHAR", "TEXT", "STRING", "JSON"})


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: str = ""

    @property
    def label(self) -> str:
        text, needs_value = OPERATORS.get(self.op, (self.op, True))
        return f"{self.column} {text} {self.value}" if needs_value else f"{self.column} {text}"


def _base(type_name: str) -> str:
    return type_name.split("(")[0].strip().upper()


def _kind(type_name: str) -> str:
    base = _base(type_name)
    if type_name.endswith("]") or base.startswith(("STRUCT", "MAP", "UNION", "LIST")):
        return "nested"
    if base in _NUMERIC:
        return "number"
    if base in _TEXT or base.startswith("ENUM"):
        return "text"
    if base in ("BOOLEAN", "BOOL"):
        return "boolean"
    return "other"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions_from(columns: list[str], ops: list[str], values: list[str]) -> list[Condition]:
    """Parallel lists (as a form or URL sends them) -> conditions. The builder's new row, left empty (no column
    and no value: its operator select always has one), is skipped."""
    out = []
    for i, column in enumerate(columns):
        op = ops[i] if i < len(ops) else ""
        value = values[i] if i < len(values) else ""
        if column.strip() or value.strip():
            out.append(Condition(column, op.strip(), value))
    return out


def _value(condition: Condition, kind: str, type_name: str) -> object:
    text = condition.value.strip()
    if not text:
        raise FilterError(f"The condition on {condition.column!r} needs a value")
    if len(text) > MAX_VALUE:
        raise FilterError(f"The value for {condition.column!r} is too long ({MAX_VALUE} characters at most)")
    if condition.op in _TEXT_ONLY:
        return condition.value
    if kind == "number":
        try:
            number = int(text) if _base(type_name) in _INTEGER and text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise FilterError(f"Column {condition.column!r} holds numbers: {text!r} is not a number") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise FilterError(f"Column {condition.column!r}: {text!r} is not a finite number")
        return number
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise FilterError(f"Column {condition.column!r} holds true/false: {text!r} is neither")
        return text.lower() == "true"
    return condition.value


def build_condition(condition: Condition, columns: dict[str, str]) -> Compiled:
    """One condition as SQL over a known column, with its value bound."""
    if condition.column not in columns:
        known = ", ".join(list(columns)[:20])
        raise FilterError(f"Unknown column {condition.column!r}; columns: {known}")
    if condition.op not in OPERATORS:
        raise FilterError(f"Unknown operator {condition.op!r}; operators: {', '.join(OPERATORS)}")
    column = _quote(condition.column)
    if condition.op == "null":
        return Compiled(f"{column} IS NULL", [])
    if condition.op == "notnull":
        return Compiled(f"{column} IS NOT NULL", [])
    type_name = columns[condition.column]
    kind = _kind(type_name)
    if kind == "nested":
        raise FilterError(f"Column {condition.column!r} is a list or record: only 'is null' / 'is not null' apply")
    if condition.op in _TEXT_ONLY and kind != "text":
        raise FilterError(f"{OPERATORS[condition.op][0]!r} applies to text columns; {condition.column!r} is not text")
    value = _value(condition, kind, type_name)
    if condition.op == "contains":
        return Compiled(f"{column} ILIKE ? ESCAPE '\\'", ["%" + _like_escape(str(value)) + "%"])
    if condition.op == "starts":
        return Compiled(f"{column} ILIKE ? ESCAPE '\\'", [_like_escape(str(value)) + "%"])
    return Compiled(f"{column} {_COMPARE[condition.op]} ?", [value])


def build_where(where: str, conditions: list[Condition], columns: dict[str, str]) -> Compiled | None:
    """The SQL box's ``where`` AND every builder condition; None when there is neither."""
    if len(conditions) > MAX_CONDITIONS:
        raise FilterError(f"Too many conditions ({MAX_CONDITIONS} at most)")
    parts: list[Compiled] = []
    if where.strip():
        parts.append(compile_where(where, columns))
    parts.extend(build_condition(c, columns) for c in conditions)
    if not parts:
        return None
    return Compiled(" AND ".join(f"({p.sql})" for p in parts), [value for p in parts for value in p.params])
