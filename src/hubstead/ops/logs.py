"""Logs people can read: one access line per HTTP request, and every record as text or as JSON lines.

``hubstead serve`` turns uvicorn's own access log off and writes ours (``AccessLog``, logger ``hubstead.access``):
time, user name (or ``anonymous``), request id (the answer's ``X-Request-Id``), method, path, status, duration in
ms and response bytes. ``--log-format json`` writes every record (access lines, events, uvicorn's, warnings) as one
JSON object per line: ``time``, ``level``, ``logger``, ``message`` and the record's structured fields (``extra=``).

The user name costs no query: the one reader of who calls (``api.deps``) notes it on the request's scope
(``note_user``) when it resolves the caller. Calls answered from a cache that skips that reader (the inference
lookups) are named from a small map of credential digests to the names they resolved to.

Events (model load and unload, job start and end, conversion results) are records under ``hubstead.events``.
Client errors (4xx: a probe for a missing file, a 401 before the token is sent) are access lines at INFO, never
warnings; 5xx answers are at WARNING (the unhandled error itself is logged by the app with its traceback).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from starlette.types import Message, Scope, Send

USER_KEY = "hubstead.user"
access_log = logging.getLogger("hubstead.access")
_MAX_REMEMBERED = 4096
_names_by_credential: dict[str, str] = {}


def _digest(credential: bytes) -> str:
    return hashlib.blake2b(credential, digest_size=16).hexdigest()


def note_user(scope: Scope, name: str | None) -> None:
    """Record who the request's caller is (None: anonymous), for its access line."""
    if name is None:
        return
    scope[USER_KEY] = name
    for header, value in scope.get("headers", ()):
        if header == b"authorization":
            if len(_names_by_credential) >= _MAX_REMEMBERED:
                _names_by_credential.clear()
            _names_by_credential[_digest(value)] = name
            return


def _user_of(scope: Scope, status: int) -> str:
    name = scope.get(USER_KEY)
    if name:
        return str(name)
    if status < 400:  # answered from a cache that did not read the caller again (a refused token stays anonymous)
        for header, value in scope.get("headers", ()):
            if header == b"authorization":
                return _names_by_credential.get(_digest(value), "anonymous")
    return "anonymous"


def access_send(scope: Scope, send: Send) -> Send:
    """``send`` that writes the request's access line once its answer's last byte is sent."""
    started = time.perf_counter()
    status = 0
    sent = 0
    request_id = ""

    async def send_and_log(message: Message) -> None:
        nonlocal status, sent, request_id
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", ()):
                if name.lower() == b"x-request-id":
                    request_id = value.decode("latin-1")
        elif kind == "http.response.body":
            sent += len(message.get("body", b""))
        await send(message)
        if kind == "http.response.body" and not message.get("more_body", False):
            log_access(scope, status, sent, request_id, (time.perf_counter() - started) * 1000)

    return send_and_log


def log_access(scope: Scope, status: int, sent: int, request_id: str, ms: float) -> None:
    level = logging.WARNING if status >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    user = _user_of(scope, status)
    path = scope.get("root_path", "") + scope.get("path", "")
    method = scope.get("method", "")
    access_log.log(
        level,
        "%s %s %s %s %d %.1fms %dB",
        user, request_id or "-", method, path, status, ms, sent,
        extra={"user": user, "request_id": request_id, "method": method, "path": path, "status": status,
               "duration_ms": round(ms, 2), "bytes": sent},
    )  # fmt: skip


# --- formats ------------------------------------------------------------------------------------------------

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SKIPPED = {"color_message"}  # uvicorn's coloured copy of the message


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record was given (``extra=``)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _SKIPPED}


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-12-06T05:50:00.123Z INFO hubstead.access alice 3f.. GET /api/models 200 3.1ms 512B``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the structured fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _time(record), "level": record.levelname, "logger": record.name,
                                "message": record.getMessage()}  # fmt: skip
        for key, value in fields_of(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` that ``hubstead serve`` gives uvicorn (it applies it in every process it
    starts): one handler on stderr in ``fmt`` ("text" or "json") for every logger, at ``level``."""
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format must be text or json, got {fmt!r}")
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"hubstead": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "hubstead",
                                "stream": "ext://sys.stderr"}},  # fmt: skip
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "alembic": {"level": "WARNING"},  # its plugin and context lines at every start say nothing to people
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours replace these
        },
    }



class _JsonLines:
    """A text stream that writes each line printed to it as a JSON record (logger ``hubstead.serve``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            record = {"time": now, "level": "INFO", "logger": "hubstead.serve", "message": line}
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def json_stdout() -> None:
    """In ``--log-format json``: lines printed to stdout (where ``serve`` listens, its first-start banner) become
    JSON records, and ``warnings.warn`` goes through logging (JSON records too)."""
    if not isinstance(sys.stdout, _JsonLines):
        sys.stdout = _JsonLines(sys.stdout)  # type: ignore[assignment]
    logging.captureWarnings(True)
