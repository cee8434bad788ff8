"""Cursor pagination with ``Link: <...>; rel="next"`` headers built from the request's own URL."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from fastapi import Request

from hubstead.api.deps import base_url
from hubstead.errors import BadRequestError


def encode_cursor(offset: int | None = None, *, path: str | None = None) -> str:
    payload = {"p": path} if path is not None else {"o": offset}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset a cursor stands for. Raises BadRequestError for a cursor we did not hand out."""
    if not cursor:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequestError("Invalid cursor") from exc
    if offset < 0:
        raise BadRequestError("Invalid cursor")
    return offset


def decode_path_cursor(cursor: str | None) -> str | None:
    """The path a tree-listing cursor resumes after (None for the first page)."""
    if not cursor:
        return None
    try:
        path = json.loads(base64.urlsafe_b64decode(cursor.encode()))["p"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequestError("Invalid cursor") from exc
    if not isinstance(path, str) or not path:
        raise BadRequestError("Invalid cursor")
    return path


def next_page_link(request: Request, offset: int | None = None, *, path_cursor: str | None = None) -> str:
    """The ``Link`` header for the page starting at ``offset``: same host, path and query, new cursor.

    The client re-sends none of its parameters with the next URL, so every one of them is repeated here.
    """
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", encode_cursor(offset, path=path_cursor)))
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    return f'<{base_url(request)}{raw}?{urlencode(params)}>; rel="next"'


def positive_limit(value: str | None, *, maximum: int) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadRequestError("limit must be a positive integer")
    return min(int(value), maximum)
