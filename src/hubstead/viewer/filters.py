"""Safe ``where`` and ``orderby`` for the dataset viewer's ``/filter`` endpoint.

Users send SQL-like text (``"age" > 30 AND "name" LIKE 'A%'``, ``"age" DESC, "name"``), as they do to the Hugging
Face dataset viewer. None of that text ever reaches DuckDB: it is tokenized and parsed here against a small grammar,
and we render fresh SQL from what we parsed. Identifiers in the output are only the known column names, double-quoted
by us; every literal becomes a ``?`` parameter. So nothing a user writes can add a statement, a function call, a
subquery, a cast or a comment, whatever DuckDB's own parser would make of it.

Grammar of ``where`` (keywords are case-insensitive)::

    expr      := or
    or        := and (OR and)*
    and       := not (AND not)*
    not       := NOT not | predicate
    predicate := '(' expr ')'
               | operand cmp operand
               | operand [NOT] LIKE string | operand [NOT] ILIKE string
               | operand IS [NOT] NULL
               | operand [NOT] IN '(' literal (',' literal)* ')'
               | operand [NOT] BETWEEN operand AND operand
               | operand                     -- only a BOOLEAN column, TRUE or FALSE
    operand   := column | literal
    column    := "double-quoted name" ("" for a quote) | bare name [A-Za-z_][A-Za-z0-9_]*
    literal   := number | 'single-quoted string' ('' for a quote) | TRUE | FALSE | NULL
    cmp       := = | == | != | <> | < | <= | > | >=

Choices worth knowing:

* Column names match like DuckDB's do: exactly, else case-insensitively when that picks one column. A bare word that
  is a keyword of the grammar (``AND``, ``NULL``, ``IN``…) is the keyword; such a column must be double-quoted.
* LIKE and ILIKE are refused on columns that are not text (VARCHAR, ENUM, JSON): DuckDB has no implicit cast there
  and would fail with a binder error; the user gets a plain message instead. The pattern has no escape character.
* A few type mismatches between a column and a literal are refused here with a plain message (a text column against
  a number, a numeric column against text that is not a number, any comparison on a LIST/STRUCT/MAP column other
  than IS [NOT] NULL). Others (a TIMESTAMP against ``'soon'``, one column against another of another type) are left
  to DuckDB, which raises ``duckdb.ConversionException`` or ``duckdb.BinderException`` when the query runs: the
  endpoint should answer those as a bad request too.
* Nesting depth counts both parentheses and NOTs.
* Positions in messages are 1-based character positions in the text the user sent.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

MAX_LENGTH = 4000
MAX_DEPTH = 50

_WHITESPACE = " \t\r\n\f\v"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Longest first, so that '<=' is not read as '<' then '='.
_COMPARISONS = ("<=", ">=", "<>", "!=", "==", "=", "<", ">")
_CANONICAL_COMPARISON = {"==": "=", "!=": "<>"}
_ARITHMETIC = "+-*/%|&^~!"

# Keywords of the where grammar: as bare words they are never column names.
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IS", "NULL", "IN", "BETWEEN", "TRUE", "FALSE"})
# Keywords after which a '+' or '-' can only be the sign of a number (after an operand it would be arithmetic).
_OPERATOR_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IS", "IN", "BETWEEN"})
# Words that start a statement or a subquery: named in the message, since users who type them expect SQL.
_STATEMENT_WORDS = frozenset(
    "SELECT WITH FROM VALUES TABLE UNION DROP INSERT UPDATE DELETE CREATE ALTER ATTACH DETACH COPY PRAGMA INSTALL "
    "LOAD CALL SET EXPORT IMPORT EXECUTE PREPARE".split()
)
_TEXT_TYPES = frozenset({"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "NVARCHAR", "ENUM", "JSON"})
_NUMERIC_TYPES = frozenset(
    "TINYINT SMALLINT INTEGER INT BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT INT1 INT2 INT4 INT8 "
    "FLOAT FLOAT4 FLOAT8 REAL DOUBLE DECIMAL NUMERIC VARINT BIGNUM".split()
)
_BOOLEAN_TYPES = frozenset({"BOOLEAN", "BOOL", "LOGICAL"})
_NESTED_PREFIXES = ("STRUCT", "MAP", "UNION", "LIST")
# Text that DuckDB can cast to a number; used only to refuse obvious mismatches early.
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)\s*", re.IGNORECASE)
_SHOWN_COLUMNS = 20

TypeKind = Literal["text", "number", "boolean", "nested", "other"]
TokenKind = Literal["word", "ident", "number", "string", "op", "lparen", "rparen", "comma", "end", "error"]


class FilterError(ValueError):
    """A ``where`` or ``orderby`` the viewer refuses; the message says what is wrong and where, for the user.

    ``position`` is the 1-based character position the message names, or None when it names none.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class Compiled:
    """SQL built only from quoted known columns, keywords and ``?`` placeholders, with the values for them in order.

    A compiled ``where`` is a boolean expression that can be joined to others with AND as it is.
    """

    sql: str
    params: list[object]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str  # as written, for messages
    value: object  # the word, the unquoted name, the number or the string
    pos: int  # 1-based

    @property
    def keyword(self) -> str | None:
        """The upper-cased word when this is a keyword of the where grammar."""
        if self.kind == "word" and isinstance(self.value, str) and self.value.upper() in _KEYWORDS:
            return self.value.upper()
        return None

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and isinstance(self.value, str) and self.value.upper() in words


@dataclass(frozen=True)
class _Operand:
    """One side of a predicate: a resolved column, or a literal that will be a parameter."""

    token: _Token
    column: str | None = None  # the name as in ``columns``
    type_name: str = ""
    value: object = None

    @property
    def kind(self) -> TypeKind:
        return _type_kind(self.type_name) if self.column is not None else "other"

    def describe(self, capital: bool = False) -> str:
        """Name the operand for a message: "column 'age' (BIGINT)" or "the value '5'"."""
        if self.column is not None:
            text = f"column {_show(self.column)} ({self.type_name})"
        else:
            text = f"the value {_show(self.token.text)}"
        return text[0].upper() + text[1:] if capital else text


def _printable(text: str) -> str:
    """Escape control characters, so that a message can go into a header or a log line as it is."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _clip(text: str, limit: int = 40) -> str:
    """A piece of user text (or a column name) fit for a message: printable, and cut short so it cannot be huge."""
    text = _printable(text)
    return text[: limit - 1] + "…" if len(text) > limit else text


def _show(text: str) -> str:
    return f"'{_clip(text)}'"


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _type_kind(type_name: str) -> TypeKind:
    """Sort a DuckDB type name as DESCRIBE writes it into the few kinds the checks here care about."""
    upper = type_name.strip().upper()
    if upper.endswith("]") or upper.startswith(_NESTED_PREFIXES):
        return "nested"
    base = upper.split("(", 1)[0].strip()
    if base in _TEXT_TYPES:
        return "text"
    if base in _NUMERIC_TYPES:
        return "number"
    if base in _BOOLEAN_TYPES:
        return "boolean"
    return "other"


def _check_input(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise FilterError(f"The {what} must be text")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The {what} is too long ({len(text)} characters; the limit is {MAX_LENGTH})")
    if not text.strip(_WHITESPACE):
        raise FilterError(f"The {what} is empty")


def _scan(text: str) -> Iterator[_Token]:
    """Yield the tokens of the text; raise FilterError on reaching anything that has no place in the grammar."""
    previous: _Token | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        pos = i + 1
        if ch in _WHITESPACE:
            i += 1
            continue
        if text.startswith("--", i) or text.startswith("/*", i):
            raise FilterError(f"Comments ({text[i : i + 2]!r}) are not allowed, at position {pos}", pos)
        if ch == "'" or ch == '"':
            end, value = _read_quoted(text, i)
            kind: TokenKind = "string" if ch == "'" else "ident"
            if kind == "ident" and not value:
                raise FilterError(f"Empty column name '\"\"' at position {pos}", pos)
            previous = _Token(kind, text[i:end], value, pos)
            yield previous
            i = end
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            match = _WORD.match(text, i)
            assert match is not None
            previous = _Token("word", match.group(), match.group(), pos)
            yield previous
            i = match.end()
            continue
        signed = ch in "+-" and not _ends_operand(previous)
        start = i + 1 if signed else i
        number = _NUMBER.match(text, start)
        if number is not None and (signed or start == i):
            end = number.end()
            if end < n and (text[end].isalnum() or text[end] in "_.'\""):
                raise FilterError(f"Invalid number {_show(text[i : end + 1])} at position {pos}", pos)
            previous = _Token("number", text[i:end], _number_value(text[i:end], pos), pos)
            yield previous
            i = end
            continue
        if ch == "(" or ch == ")" or ch == ",":
            kind = "lparen" if ch == "(" else "rparen" if ch == ")" else "comma"
            previous = _Token(kind, ch, ch, pos)
            yield previous
            i += 1
            continue
        op = next((c for c in _COMPARISONS if text.startswith(c, i)), None)
        if op is not None:
            previous = _Token("op", op, _CANONICAL_COMPARISON.get(op, op), pos)
            yield previous
            i += len(op)
            continue
        if text.startswith("::", i):
            raise FilterError(f"Casts ('::') are not allowed, at position {pos}", pos)
        if ch == ";":
            raise FilterError(f"Unexpected ';' at position {pos}: only a single condition is allowed", pos)
        if ch in "?$":
            raise FilterError(
                f"Placeholders such as '?' or '$1' are not allowed (position {pos}); write the value itself", pos
            )
        if ch in _ARITHMETIC:
            raise FilterError(f"Operator {ch!r} at position {pos} is not supported: there is no arithmetic", pos)
        if ch.isalpha():
            hint = "; a column name that is not plain ASCII must be double-quoted"
            raise FilterError(f"Unexpected {ch!r} at position {pos}{hint}", pos)
        raise FilterError(f"Unexpected {ch!r} at position {pos}", pos)
    yield _Token("end", "the end", None, n + 1)


class _Tokens:
    """The scanned tokens with lookahead, scanned lazily so that the first problem in reading order is the one told.

    ``SELECT * FROM t`` is refused for ``SELECT``, not for ``*``: a scan error is kept as an "error" token and raised
    only when the parser gets to it. A name followed by '(' is refused as a function call when the parser looks at
    the name, before it could be taken for an unknown column. Past the end, the last token keeps being answered.
    """

    def __init__(self, text: str) -> None:
        self._scan = _scan(text)
        self._seen: list[_Token] = []
        self.index = 0

    def _fill(self, count: int) -> None:
        while len(self._seen) < count and not (self._seen and self._seen[-1].kind in ("end", "error")):
            try:
                self._seen.append(next(self._scan))
            except FilterError as error:
                self._seen.append(_Token("error", "", error, error.position or 0))

    def peek(self, ahead: int = 0) -> _Token:
        wanted = self.index + ahead
        self._fill(wanted + 2)
        token = self._seen[min(wanted, len(self._seen) - 1)]
        if token.kind == "error":
            assert isinstance(token.value, FilterError)
            raise token.value
        if wanted + 1 < len(self._seen) and self._seen[wanted + 1].kind == "lparen":
            _refuse_function_call(token)
        return token

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token


def _read_quoted(text: str, start: int) -> tuple[int, str]:
    """Read a '…' string or "…" name from ``start``, where a doubled quote stands for one; return (end, value)."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            what = "string" if quote == "'" else "quoted column name"
            raise FilterError(f"Unterminated {what} starting at position {start + 1}", start + 1)
        parts.append(text[i:j])
        if text.startswith(quote * 2, j):
            parts.append(quote)
            i = j + 2
            continue
        return j + 1, "".join(parts)


def _ends_operand(token: _Token | None) -> bool:
    """Whether a '+' or '-' after this token would be arithmetic rather than the sign of a number."""
    if token is None:
        return False
    if token.kind in ("ident", "number", "string", "rparen"):
        return True
    return token.kind == "word" and not token.is_word(*_OPERATOR_KEYWORDS)


def _number_value(text: str, pos: int) -> int | float:
    body = text.lstrip("+-")
    if "." not in body and "e" not in body.lower():
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise FilterError(f"Number {_show(text)} at position {pos} is out of range", pos)
    return value


def _refuse_function_call(token: _Token) -> None:
    """A name right before '(' is a function call in SQL (``read_csv('…')``, ``"getenv"(…)``): say so plainly.

    Keywords are left to the parser: after NOT, AND, OR and IN a '(' belongs to the grammar, and after any other it
    is refused there as out of place.
    """
    if token.kind == "ident" or (token.kind == "word" and token.keyword is None):
        raise FilterError(f"Function calls are not allowed: {_show(token.text)} at position {token.pos}", token.pos)


class _Columns:
    """The table's columns, resolving names the way DuckDB does: exactly, else case-insensitively if unambiguous."""

    def __init__(self, columns: dict[str, str]) -> None:
        self.types = dict(columns)
        self.by_folded: dict[str, list[str]] = {}
        for name in columns:
            self.by_folded.setdefault(name.casefold(), []).append(name)

    def find(self, name: str) -> str | None:
        if name in self.types:
            return name
        matches = self.by_folded.get(name.casefold(), [])
        return matches[0] if len(matches) == 1 else None

    def resolve(self, token: _Token) -> str:
        name = str(token.value)
        found = self.find(name)
        if found is not None:
            return found
        matches = self.by_folded.get(name.casefold(), [])
        if len(matches) > 1:
            listed = ", ".join(_show(m) for m in matches)
            message = f"Column name {_show(name)} at position {token.pos} is ambiguous ({listed}); quote it exactly"
            raise FilterError(message, token.pos)
        if token.kind == "word" and name.upper() in _STATEMENT_WORDS:
            raise FilterError(
                f"SQL statements and subqueries are not allowed: {_show(name)} at position {token.pos}", token.pos
            )
        raise FilterError(f"Unknown column {_show(name)} at position {token.pos}; {self.hint(name)}", token.pos)

    def hint(self, name: str) -> str:
        """Help for an unknown name: the closest column, if one is close, and the columns there are."""
        names = list(self.types)
        if not names:
            return "the table has no columns"
        close = difflib.get_close_matches(name, names, n=1)
        shown = ", ".join(_clip(column) for column in names[:_SHOWN_COLUMNS])
        if len(names) > _SHOWN_COLUMNS:
            shown += f" and {len(names) - _SHOWN_COLUMNS} more"
        guess = f"did you mean {_show(close[0])}? " if close else ""
        return f"{guess}columns are: {shown}"


class _WhereParser:
    """Recursive descent over the where grammar, rendering SQL as it goes (params come out in source order)."""

    def __init__(self, tokens: _Tokens, columns: _Columns) -> None:
        self.tokens = tokens
        self.columns = columns
        self.depth = 0
        self.params: list[object] = []

    # Token access

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens.peek(ahead)

    def take(self) -> _Token:
        return self.tokens.take()

    def fail(self, token: _Token, expected: str) -> FilterError:
        found = "the end" if token.kind == "end" else _show(token.text)
        message = f"Expected {expected} at position {token.pos}, found {found}"
        if token.keyword is not None and self.columns.find(str(token.value)) is not None:
            message += f' (a column named like a keyword must be quoted: "{token.value}")'
        return FilterError(message, token.pos)

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(
                f"The condition is nested too deeply at position {token.pos} (more than {MAX_DEPTH} levels of "
                "parentheses and NOT)",
                token.pos,
            )

    # Grammar

    def parse(self) -> str:
        sql = self.expr()
        token = self.peek()
        if token.kind != "end":
            if token.kind == "rparen":
                raise FilterError(f"Unbalanced ')' at position {token.pos}", token.pos)
            raise self.fail(token, "AND, OR or the end")
        return sql

    def expr(self) -> str:
        parts = [self.conjunction()]
        while self.peek().is_word("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.peek().is_word("AND"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        token = self.peek()
        if not token.is_word("NOT"):
            return self.predicate()
        self.take()
        self.enter(token)
        inner = self.negation()
        self.depth -= 1
        # Parenthesized so that the meaning never rests on DuckDB's precedence of NOT against IS, LIKE… Rendered
        # predicates start with a quoted name or '?', so a leading '(' means an AND, OR or NOT group, closed at the end.
        return f"(NOT {inner})" if inner.startswith("(") else f"(NOT ({inner}))"

    def predicate(self) -> str:
        token = self.peek()
        if token.kind == "lparen":
            self.take()
            self.enter(token)
            inner = self.expr()
            closing = self.peek()
            if closing.kind != "rparen":
                if closing.kind == "end":
                    raise FilterError(f"Unbalanced '(' at position {token.pos}: it is never closed", token.pos)
                raise self.fail(closing, "AND, OR or ')'")
            self.take()
            self.depth -= 1
            return inner
        left = self.operand("a column or a value")
        token = self.peek()
        if token.kind == "op":
            self.take()
            right = self.operand(f"a column or a value after {token.text!r}")
            self.check_pair(left, right, token)
            left_sql = self.emit(left)
            return f"{left_sql} {token.value} {self.emit(right)}"
        negated = False
        if token.is_word("NOT"):
            following = self.peek(1)
            if not following.is_word("LIKE", "ILIKE", "IN", "BETWEEN"):
                raise self.fail(following, "LIKE, ILIKE, IN or BETWEEN after NOT")
            self.take()
            negated = True
            token = self.peek()
        not_ = "NOT " if negated else ""
        if token.is_word("LIKE", "ILIKE"):
            return f"{self.like(left, token)} {not_}{token.keyword} ?"
        if token.is_word("IN"):
            return self.in_list(left, not_)
        if token.is_word("BETWEEN"):
            return self.between(left, not_)
        if token.is_word("IS"):
            self.take()
            negated_is = self.peek().is_word("NOT")
            if negated_is:
                self.take()
            if not self.peek().is_word("NULL"):
                raise self.fail(self.peek(), "NULL after IS" if not negated_is else "NULL after IS NOT")
            self.take()
            return f"{self.emit(left)} IS {'NOT ' if negated_is else ''}NULL"
        return self.standalone(left, token)

    def like(self, left: _Operand, keyword: _Token) -> str:
        self.take()
        pattern = self.take()
        if pattern.kind != "string":
            raise self.fail(pattern, f"a quoted pattern such as 'A%' after {keyword.keyword}")
        if left.column is not None and left.kind != "text":
            raise FilterError(
                f"{keyword.keyword} at position {keyword.pos} works on text columns only; "
                f"{left.describe()} is not text",
                keyword.pos,
            )
        if left.column is None and not (left.value is None or isinstance(left.value, str)):
            raise FilterError(f"{keyword.keyword} at position {keyword.pos} needs text on its left", keyword.pos)
        sql = self.emit(left)
        self.params.append(pattern.value)
        return sql

    def in_list(self, left: _Operand, not_: str) -> str:
        keyword = self.take()
        opening = self.take()
        if opening.kind != "lparen":
            raise self.fail(opening, "'(' after IN")
        values: list[_Operand] = []
        while True:
            token = self.peek()
            if token.is_word(*_STATEMENT_WORDS) and self.columns.find(str(token.value)) is None:
                raise FilterError(f"Subqueries are not allowed: {_show(token.text)} at position {token.pos}", token.pos)
            value = self.literal()
            if value is None:
                raise self.fail(token, "a value (a number, a quoted string, TRUE, FALSE or NULL) in the IN list")
            self.check_pair(left, value, keyword)
            values.append(value)
            separator = self.take()
            if separator.kind == "rparen":
                break
            if separator.kind != "comma":
                if separator.kind == "end":
                    raise FilterError(f"Unbalanced '(' at position {opening.pos}: it is never closed", opening.pos)
                raise self.fail(separator, "',' or ')' in the IN list")
        left_sql = self.emit(left)
        rendered = ", ".join(self.emit(value) for value in values)
        return f"{left_sql} {not_}IN ({rendered})"

    def between(self, left: _Operand, not_: str) -> str:
        keyword = self.take()
        low = self.operand("a column or a value after BETWEEN")
        conjunction = self.take()
        if not conjunction.is_word("AND"):
            raise self.fail(conjunction, "AND in BETWEEN … AND …")
        high = self.operand("a column or a value after BETWEEN … AND")
        for one, other in ((left, low), (left, high), (low, high)):
            self.check_pair(one, other, keyword)
        left_sql, low_sql, high_sql = self.emit(left), self.emit(low), self.emit(high)
        return f"{left_sql} {not_}BETWEEN {low_sql} AND {high_sql}"

    def standalone(self, operand: _Operand, following: _Token) -> str:
        """An operand alone is a condition only when it is a BOOLEAN column or TRUE/FALSE."""
        ends = following.kind in ("end", "rparen") or following.is_word("AND", "OR")
        if operand.column is not None and operand.kind == "boolean":
            return self.emit(operand)
        if operand.column is None and isinstance(operand.value, bool):
            return self.emit(operand)
        if not ends:
            expected = f"a comparison (=, <>, <, >, LIKE, IN, IS NULL, BETWEEN…) after {operand.describe()}"
            raise self.fail(following, expected)
        raise FilterError(
            f"{operand.describe(capital=True)} at position {operand.token.pos} cannot stand alone as a condition; "
            "compare it with something (only BOOLEAN columns, TRUE and FALSE can)",
            operand.token.pos,
        )

    def operand(self, expected: str) -> _Operand:
        token = self.peek()
        literal = self.literal()
        if literal is not None:
            return literal
        if token.kind == "ident" or (token.kind == "word" and token.keyword is None):
            self.take()
            name = self.columns.resolve(token)
            return _Operand(token, column=name, type_name=self.columns.types[name])
        if token.kind == "rparen":
            raise FilterError(f"Unexpected ')' at position {token.pos}: expected {expected}", token.pos)
        if token.kind == "lparen" and self.peek(1).is_word(*_STATEMENT_WORDS):
            raise FilterError(f"Subqueries are not allowed: '(' at position {token.pos}", token.pos)
        raise self.fail(token, expected)

    def literal(self) -> _Operand | None:
        token = self.peek()
        if token.kind in ("number", "string"):
            self.take()
            return _Operand(token, value=token.value)
        if token.is_word("TRUE", "FALSE", "NULL"):
            self.take()
            value = {"TRUE": True, "FALSE": False, "NULL": None}[str(token.value).upper()]
            return _Operand(token, value=value)
        return None

    # Rendering and checks

    def emit(self, operand: _Operand) -> str:
        if operand.column is not None:
            return _quote_identifier(operand.column)
        self.params.append(operand.value)
        return "?"

    def check_pair(self, one: _Operand, other: _Operand, where: _Token) -> None:
        """Refuse comparisons whose types plainly cannot match, with a message that says which ones."""
        for column, value in ((one, other), (other, one)):
            if column.column is None:
                continue
            kind = column.kind
            if kind == "nested":
                raise FilterError(
                    f"{column.describe(capital=True)} cannot be compared (at position {where.pos}); "
                    "only IS NULL and IS NOT NULL work on it",
                    where.pos,
                )
            if value.column is not None or value.value is None:
                continue
            if kind == "text" and not isinstance(value.value, str):
                raise FilterError(
                    f"{column.describe(capital=True)} is text; compare it with a quoted string "
                    f"such as '{value.token.text}' (position {value.token.pos})",
                    value.token.pos,
                )
            if kind == "number" and isinstance(value.value, str) and not _NUMERIC_TEXT.fullmatch(value.value):
                raise FilterError(
                    f"{column.describe(capital=True)} is numeric; "
                    f"{_show(value.value)} at position {value.token.pos} is not a number",
                    value.token.pos,
                )


def compile_where(text: str, columns: dict[str, str]) -> Compiled:
    """Parse a user's ``where`` against the table's columns (name -> DuckDB type) into SQL with ``?`` parameters."""
    _check_input(text, "where condition")
    parser = _WhereParser(_Tokens(text), _Columns(columns))
    sql = parser.parse()
    return Compiled(sql, parser.params)


def compile_orderby(text: str, columns: dict[str, str]) -> Compiled:
    """Parse ``col [ASC|DESC] [NULLS FIRST|LAST], ...`` into an ORDER BY list of quoted known columns.

    The direction is always written out (ASC when the user gave none); NULLS only when the user gave it, so DuckDB's
    default (NULLS LAST) applies otherwise. A column named twice is refused. There are never any params.
    """
    _check_input(text, "orderby")
    tokens = _Tokens(text)
    known = _Columns(columns)
    terms: list[str] = []
    seen: set[str] = set()

    def fail(token: _Token, expected: str) -> FilterError:
        found = "the end" if token.kind == "end" else _show(token.text)
        return FilterError(f"Expected {expected} at position {token.pos}, found {found}", token.pos)

    while True:
        token = tokens.take()
        if token.kind not in ("ident", "word"):
            raise fail(token, "a column name after ','" if terms else "a column name")
        name = known.resolve(token)
        if name in seen:
            message = f"Column {_show(name)} appears more than once in orderby (position {token.pos})"
            raise FilterError(message, token.pos)
        seen.add(name)
        direction = "ASC"
        if tokens.peek().is_word("ASC", "DESC"):
            direction = str(tokens.take().value).upper()
        term = f"{_quote_identifier(name)} {direction}"
        if tokens.peek().is_word("NULLS"):
            tokens.take()
            nulls = tokens.take()
            if not nulls.is_word("FIRST", "LAST"):
                raise fail(nulls, "FIRST or LAST after NULLS")
            term += f" NULLS {str(nulls.value).upper()}"
        terms.append(term)
        token = tokens.take()
        if token.kind == "end":
            return Compiled(", ".join(terms), [])
        if token.kind != "comma":
            raise fail(token, "ASC, DESC, NULLS FIRST, NULLS LAST, ',' or the end")
