"""What the Jobs pages write about a job: its command in one line that a shell reads back as the same argv, quoted
the readable way, and durations in words (the page's ticker words them the same)."""

from __future__ import annotations

import shlex

from hubstead.web.job_views import command_line, human_seconds, shell_word


def test_command_line_reads_back_as_the_same_argv_and_quotes_readably() -> None:
    """Every argument survives ``shlex.split``; safe words stay bare, code with single quotes goes in double
    quotes (not the ``'"'"'`` dance), anything with ``$`` or backslashes falls back to ``shlex.quote``."""
    argv = ["python", "-c", "print('hi')\nimport os", "a b", "", "$HOME", 'say "x" it\'s', "path/to=1,2", "tab\\n"]
    line = command_line({"command": argv[:2], "arguments": argv[2:]})
    assert shlex.split(line) == argv
    assert shell_word("print('hi')") == "\"print('hi')\""
    assert shell_word("--lr=0.5") == "--lr=0.5"
    assert shell_word("a b") == "'a b'"
    assert shell_word("$HOME") == "'$HOME'"
    assert command_line({}) == ""


def test_human_seconds() -> None:
    """Seconds, minutes and seconds, hours and minutes; round ones without the zero part; nothing for None."""
    assert [human_seconds(s) for s in (0, 5, 65, 1800, 3600, 3725)] == ["0s", "5s", "1m 05s", "30m", "1h", "1h 02m"]
    assert human_seconds(None) == ""
