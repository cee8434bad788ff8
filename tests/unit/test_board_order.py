"""The order of a leaderboard's rows under each sort (``evals.leaderboard._order``, pure: no database)."""

from __future__ import annotations

from typing import Any

import pytest

from hubstead.errors import BadRequestError
from hubstead.evals import leaderboard
from hubstead.web import board_views

# (model id, rank, params, date, license); entries are rows of ``_results`` (only the columns read here set)
MODELS = [("o/a", 1, 7_000, "2026-01-02", "mit"), ("o/B", 2, 5_000, None, "apache-2.0"),
          ("o/c", 2, 5_000, "2026-01-01", None), ("o/d", 4, None, "2026-01-01", "mit"),
          ("o/e", 5, 5_000, "2026-03-01", "mit")]


def _standings() -> leaderboard._Standings:
    models: dict[int, Any] = {}
    entries: dict[int, tuple[Any, ...]] = {}
    for pk, (model_id, _rank, params, date, license) in enumerate(MODELS):
        models[pk] = (model_id, model_id.lower(), license, False, False)
        row: list[Any] = [None] * 16
        row[leaderboard._PARAMS], row[leaderboard._DATE] = params, date
        entries[pk] = (tuple(row),)
    ranks = {pk: rank for pk, (_m, rank, *_rest) in enumerate(MODELS)}
    return leaderboard._Standings(models, ranks, {pk: 0.0 for pk in models}, entries.__getitem__, {})


def _ids(sort: str) -> list[str]:
    standings = _standings()
    return [MODELS[pk][0] for pk in leaderboard._order(list(reversed(standings.models)), standings, sort)]


def test_ties_keep_rank_order_both_ways() -> None:
    """Sorting by size puts equal sizes in rank order (B and c share rank 2: by model id) whichever way, instead
    of reversing them when descending; a model of unknown size comes last both ways."""
    assert _ids("params") == ["o/B", "o/c", "o/e", "o/a", "o/d"]
    assert _ids("-params") == ["o/a", "o/B", "o/c", "o/e", "o/d"]


def test_rank_date_license_and_model_sorts() -> None:
    """Rank descending keeps a shared rank's models in model-id order; date and license put missing values last
    both ways and ties in rank order; model sorts by id, case-insensitive; an unknown sort is a 400."""
    assert _ids("rank") == ["o/a", "o/B", "o/c", "o/d", "o/e"]
    assert _ids("-rank") == ["o/e", "o/d", "o/B", "o/c", "o/a"]
    assert _ids("-date") == ["o/e", "o/a", "o/c", "o/d", "o/B"]
    assert _ids("date") == ["o/c", "o/d", "o/a", "o/e", "o/B"]
    assert _ids("-license") == ["o/a", "o/d", "o/e", "o/B", "o/c"]
    assert _ids("-model") == ["o/e", "o/d", "o/c", "o/B", "o/a"]
    with pytest.raises(BadRequestError):
        _ids("size")


def test_a_page_of_a_board_of_several_columns_ranks_its_cells_over_the_whole_board_from_one_board() -> None:
    """The second page (one row) of a two-task board: its cells carry the model's rank on each task over every
    model on the board (``Board.column_values``), the best value marked, and the board is asked for once."""
    calls: list[dict[str, Any]] = []
    columns = [leaderboard.Column("t1", "t1", "accuracy", True), leaderboard.Column("t2", "t2", "error", False)]

    def board_of(**kwargs: Any) -> leaderboard.Board:
        calls.append(kwargs)
        board = leaderboard.Board(dataset_ids=["o/suite"], name="Suite", benchmark=None, error=None, reasons=[],
                                  columns=columns, method="mean", higher_is_better=True, total=3, ranked=3)
        board.rows = [leaderboard.BoardRow(2, "o/b", 0.5, {"t1": 0.9, "t2": 0.1}, False, False, "f", {}, None,
                                           None, [], None, None, None, None, False)]
        board.column_values = {"t1": {"o/a": 0.95, "o/b": 0.9, "o/c": 0.2}, "t2": {"o/a": 0.3, "o/b": 0.1}}
        return board

    view = board_views.board_view(board_of, sort="rank", page=1, per_page=1, url_with=lambda **kw: "?")
    assert calls == [{"sort": "rank", "page": 1, "per_page": 1}]
    [row] = view.rows
    assert [(c.value, c.rank, c.best) for c in row.cells] == [("0.9", 2, False), ("0.1", 1, True)]
