"""The log formats (ops.logs) and the idle-unload setting, without a server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from hubstead.config import Settings, load_settings
from hubstead.ops.logs import JsonFormatter, TextFormatter, logging_config


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord("hubstead.access", logging.INFO, __file__, 1, "%s GET %s %d", ("alice", "/api/x", 200),
                             None)  # fmt: skip
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_text_lines_read_as_a_sentence() -> None:
    line = TextFormatter().format(record(user="alice", status=200))
    stamp, level, logger, rest = line.split(" ", 3)
    assert stamp.endswith("Z") and "T" in stamp
    assert (level, logger, rest) == ("INFO", "hubstead.access", "alice GET /api/x 200")


def test_json_lines_carry_the_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = record(user="alice", status=200, path=Path("/x"))
        failed.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(failed))
    assert (data["level"], data["logger"], data["message"]) == ("INFO", "hubstead.access", "alice GET /api/x 200")
    assert (data["user"], data["status"], data["path"]) == ("alice", 200, "/x")  # any value, as text if need be
    assert "ValueError: boom" in data["exception"] and "\n" not in JsonFormatter().format(failed)


def test_logging_config_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="text or json"):
        logging_config("xml", "info")
    assert logging_config("json", "warning")["root"]["level"] == "WARNING"


def test_idle_unload_setting(tmp_path: Path) -> None:
    assert Settings.inference_idle_unload_seconds == 900.0
    assert load_settings(data_dir=str(tmp_path), inference={"idle_unload": 0}).inference_idle_unload_seconds == 0
    with pytest.raises(SystemExit, match="inference-idle-unload"):
        load_settings(data_dir=str(tmp_path), inference={"idle_unload": -1})
