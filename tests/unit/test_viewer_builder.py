"""The viewer page's query building: the filter builder (column, operator, value -> a bound WHERE), the search box's
parsing (all words must match, "quotes" for a phrase), and statistics of the filtered rows, run on a real split
index (Parquet -> ``build_search_index``'s DuckDB file with its BM25 index)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hubstead.viewer.builder import OPERATORS, Condition, build_condition, build_where, conditions_from
from hubstead.viewer.filters import FilterError
from hubstead.viewer.search import build_search_index, column_types, filter_compiled, filtered_statistics, parse_search
from hubstead.viewer.search import search as bm25_search

TEXTS = [
    "A wonderful film with a moving story",  # 0
    "Terrible acting and a boring plot",  # 1
    "The story moves slowly, a film of moving parts",  # 2
    "moving story, wonderful acting",  # 3
    "50% off_sale: a film",  # 4
    None,  # 5
]
ROWS = {
    "text": TEXTS,
    "stars": [5, 1, 3, 4, 2, None],
    "score": [0.9, 0.1, 0.5, 0.7, 0.2, 0.3],
    "verdict": ["good", "bad", "meh", "good", "meh", "bad"],
    "flag": [True, False, True, None, False, True],
}
FEATURES = {
    "text": {"dtype": "string", "_type": "Value"},
    "stars": {"dtype": "int64", "_type": "Value"},
    "score": {"dtype": "float64", "_type": "Value"},
    "verdict": {"dtype": "string", "_type": "Value"},
    "flag": {"dtype": "bool", "_type": "Value"},
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("viewer-index")
    pq.write_table(pa.table(ROWS), root / "train.parquet")
    target = root / "index.duckdb"
    assert build_search_index([root / "train.parquet"], FEATURES, target)
    return target


@pytest.fixture(scope="module")
def columns(index: Path) -> dict[str, str]:
    return column_types(index)


def ids_for(
    index: Path, columns: dict[str, str], where: str = "", conditions: list[Condition] | None = None
) -> list[int]:
    _, ids, total = filter_compiled(index, build_where(where, conditions or [], columns), None, columns, 0, 100)
    assert total == len(ids)
    return ids


def expected(predicate) -> list[int]:  # type: ignore[no-untyped-def]
    return [i for i in range(len(TEXTS)) if predicate({k: v[i] for k, v in ROWS.items()})]


# --- the filter builder --------------------------------------------------------------------------------


def test_each_operator_selects_the_rows_python_selects(index: Path, columns: dict[str, str]) -> None:
    cases = [
        (Condition("stars", "ge", "4"), lambda r: r["stars"] is not None and r["stars"] >= 4),
        (Condition("stars", "lt", "3"), lambda r: r["stars"] is not None and r["stars"] < 3),
        (Condition("score", "gt", "0.45"), lambda r: r["score"] > 0.45),
        (Condition("score", "le", "0.2"), lambda r: r["score"] <= 0.2),
        (Condition("verdict", "eq", "good"), lambda r: r["verdict"] == "good"),
        (Condition("verdict", "ne", "good"), lambda r: r["verdict"] != "good"),
        (Condition("text", "contains", "MOVING"), lambda r: r["text"] is not None and "moving" in r["text"].lower()),
        (Condition("text", "starts", "the"), lambda r: r["text"] is not None and r["text"].lower().startswith("the")),
        (Condition("text", "contains", "50% off_"), lambda r: r["text"] is not None and "50% off_" in r["text"]),
        (Condition("text", "contains", "0_o"), lambda r: False),  # _ and % are literal, not wildcards
        (Condition("stars", "null"), lambda r: r["stars"] is None),
        (Condition("flag", "notnull"), lambda r: r["flag"] is not None),
        (Condition("flag", "eq", "TRUE"), lambda r: r["flag"] is True),
    ]
    assert set(OPERATORS) == {c.op for c, _ in cases}
    for condition, predicate in cases:
        assert ids_for(index, columns, conditions=[condition]) == expected(predicate), condition


def test_values_are_bound_never_pasted(columns: dict[str, str]) -> None:
    hostile = "x' OR 1=1; DROP TABLE data; --"
    compiled = build_condition(Condition("verdict", "eq", hostile), columns)
    assert compiled.sql == '"verdict" = ?' and compiled.params == [hostile]
    assert hostile not in build_condition(Condition("text", "contains", hostile), columns).sql
    odd = build_condition(Condition("stars", "ge", "3"), {'we"ird': "BIGINT", "stars": "BIGINT"})
    assert odd.sql == '"stars" >= ?' and odd.params == [3]


def test_sql_box_and_conditions_are_joined_with_and(index: Path, columns: dict[str, str]) -> None:
    ids = ids_for(index, columns, "\"verdict\" = 'good' OR \"verdict\" = 'meh'", [Condition("stars", "ge", "3")])
    assert ids == expected(lambda r: r["verdict"] in ("good", "meh") and r["stars"] is not None and r["stars"] >= 3)
    assert build_where("", [], columns) is None


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (Condition("nope", "eq", "1"), "Unknown column 'nope'"),
        (Condition("stars", "like", "1"), "Unknown operator 'like'"),
        (Condition("stars", "eq", "many"), "'many' is not a number"),
        (Condition("stars", "eq", "nan"), "not a finite number"),
        (Condition("stars", "eq", "  "), "needs a value"),
        (Condition("stars", "contains", "1"), "applies to text columns"),
        (Condition("flag", "eq", "yes"), "true/false"),
        (Condition("text", "eq", "x" * 1001), "too long"),
    ],
)
def test_bad_conditions_are_refused_with_a_message(columns: dict[str, str], condition: Condition, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        build_condition(condition, columns)


def test_nested_columns_allow_only_null_checks() -> None:
    columns = {"tags": "VARCHAR[]"}
    assert build_condition(Condition("tags", "null"), columns).sql == '"tags" IS NULL'
    with pytest.raises(FilterError, match="list or record"):
        build_condition(Condition("tags", "eq", "a"), columns)


def test_conditions_from_parallel_lists() -> None:
    got = conditions_from(["stars", "", "verdict"], ["ge", "eq", "eq"], ["4", "", "good"])
    assert got == [Condition("stars", "ge", "4"), Condition("verdict", "eq", "good")]  # the empty new row is skipped
    assert conditions_from(["", "x"], ["eq"], ["1"]) == [Condition("", "eq", "1"), Condition("x", "", "")]
    with pytest.raises(FilterError, match="Too many"):
        build_where("", [Condition("stars", "null")] * 21, {"stars": "BIGINT"})


# --- the search box ------------------------------------------------------------------------------------


def test_search_parsing_words_and_phrases() -> None:
    terms = parse_search('  moving  "wonderful   film" story "" "open phrase')
    assert terms.words == ["moving", "story"]
    assert terms.phrases == ["wonderful film", "open phrase"]
    assert parse_search("").words == [] and parse_search('""').phrases == []


def test_search_needs_every_word(index: Path) -> None:
    def found(query: str) -> list[int]:
        ids, total = bm25_search(index, query, 0, 100, ["text", "verdict"])
        assert total == len(ids)
        return sorted(ids)

    assert found("moving") == [0, 2, 3]  # stemmed: "moves" too
    assert found("moving story") == [0, 2, 3]
    assert found("wonderful acting") == [3]  # both words: not every row with either
    assert found("the wonderful acting") == [3]  # a stopword does not make the query impossible
    assert found("wonderful zebra") == []
    assert found("the") == []


def test_quotes_match_a_phrase(index: Path) -> None:
    def found(query: str) -> list[int]:
        return sorted(bm25_search(index, query, 0, 100, ["text", "verdict"])[0])

    assert found('"moving story"') == [0, 3]  # not row 2, which has both words apart
    assert found('"wonderful film" story') == [0]
    assert found('"a film"') == [2, 4]  # only stopwords and one word: the phrase still decides
    assert found('"of"') == [2]  # a phrase made only of stopwords matches as written
    assert found('"50% off_sale"') == [4]


# --- statistics of the filtered rows -------------------------------------------------------------------


def test_statistics_of_filtered_rows(index: Path, columns: dict[str, str]) -> None:
    where = build_where("", [Condition("verdict", "ne", "good")], columns)
    rows, capped, stats = filtered_statistics(index, where, columns)
    chosen = expected(lambda r: r["verdict"] != "good")
    assert rows == len(chosen) and not capped
    by = {s["name"]: s for s in stats}
    stars = [ROWS["stars"][i] for i in chosen]
    present = [s for s in stars if s is not None]
    assert by["stars"]["count"] == len(present) and by["stars"]["nulls"] == stars.count(None)
    assert (by["stars"]["min"], by["stars"]["max"]) == (min(present), max(present))
    assert by["stars"]["mean"] == pytest.approx(sum(present) / len(present))
    verdicts = [ROWS["verdict"][i] for i in chosen]
    assert dict(by["verdict"]["top"]) == {v: verdicts.count(v) for v in set(verdicts)}

    rows, capped, stats = filtered_statistics(index, None, columns, sample=3)  # the cap: a sample of 3 rows
    assert rows == 3 and capped
    assert {s["name"]: s for s in stats}["score"]["max"] == max(ROWS["score"][:3])
