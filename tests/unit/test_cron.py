"""The cron schedules scheduled jobs run on (compute.schedule.Cron): aliases, ranges, steps, names, the
day-of-month / day-of-week rule, and refusals in words."""

from __future__ import annotations

from datetime import datetime

import pytest

from hubstead.compute.schedule import Cron
from hubstead.errors import BadRequestError

START = datetime(2026, 12, 5, 17, 7, 30)  # a Saturday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("@hourly", datetime(2026, 12, 5, 18, 0)),
        ("@daily", datetime(2026, 12, 6, 0, 0)),
        ("@weekly", datetime(2026, 12, 6, 0, 0)),  # Sunday
        ("@monthly", datetime(2027, 1, 1, 0, 0)),
        ("@yearly", datetime(2027, 1, 1, 0, 0)),
        ("*/15 * * * *", datetime(2026, 12, 5, 17, 15)),
        ("0 9 * * 1", datetime(2026, 12, 7, 9, 0)),
        ("0 9 * * mon-fri", datetime(2026, 12, 7, 9, 0)),
        ("30 6 1,15 * *", datetime(2026, 12, 15, 6, 30)),
        ("0 0 29 2 *", datetime(2028, 2, 29, 0, 0)),
        ("0 12 13 * 5", datetime(2026, 12, 11, 12, 0)),  # day 13 OR a Friday: Friday the 11th comes first
        ("5 4 * jan *", datetime(2027, 1, 1, 4, 5)),
        ("0 0 * * 7", datetime(2026, 12, 6, 0, 0)),  # 7 is Sunday too
    ],
)
def test_next_run(expression: str, expected: datetime) -> None:
    assert Cron(expression).next_after(START) == expected


@pytest.mark.parametrize(
    ("expression", "words"),
    [("61 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * * *", "five"), ("*/0 * * * *", "step"),
     ("* * * foo *", "month"), ("0 0 31 2 *", "never")],
)
def test_bad_schedules_are_refused_in_words(expression: str, words: str) -> None:
    with pytest.raises(BadRequestError, match=words):
        Cron(expression).next_after(START)
