"""How large a request body each kind of route may send: the one table, and the guard that holds every
request to it (``app.HubApp`` runs it before routing, so the direct inference path obeys it too).

A ``Content-Length`` over the route's limit is answered 413 before a byte of the body is read; a chunked
body (or one longer than it said) is cut off at the limit with a 413. Routes still read their body only
after authenticating the caller (``routes_commits``, ``inference.routes``, the signed LFS and Xet upload
routes), so an anonymous or badly authenticated caller is refused after the headers, not after the upload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from hubstead.config import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class BodyRule:
    """Requests whose method is in ``methods`` and whose path matches ``pattern`` may send ``limit(settings)``
    bytes (None: the route bounds the body itself, by the size it signed); ``advice`` ends the 413's message."""

    kind: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    limit: Callable[[Settings], int | None]
    advice: str = ""


def _rule(
    kind: str, methods: str, pattern: str, limit: Callable[[Settings], int | None], advice: str = ""
) -> BodyRule:
    return BodyRule(kind, frozenset(methods.split()), re.compile(pattern), limit, advice)


_REPO = r"/(?:datasets/|spaces/)?[^/]+/[^/]+"
# First match wins. A new route with a large body gets a line here; everything else gets "api".
BODY_RULES: tuple[BodyRule, ...] = (
    # NDJSON commit: inline files are base64 in the body (large files go through LFS or Xet).
    _rule("commit", "POST", r"^/api/(?:models|datasets|spaces)/[^/]+/[^/]+/commit/", lambda s: s.max_commit_body_bytes,
          "upload large files through LFS or Xet"),
    # LFS object or part PUT: checked against its signed URL first, then bounded by the size it signed.
    _rule("lfs-upload", "PUT", r"^/api/lfs/(?:upload|part)/", lambda s: None),
    # Xet: one xorb (at most 64 MiB of chunks plus their headers), or a shard (file and xorb tables).
    _rule("xet-xorb", "POST", r"^/xet-cas/v1/xorbs/", lambda s: 80 * MiB),
    _rule("xet-shard", "POST", r"^/xet-cas/v1/shards$", lambda s: 256 * MiB),
    # git's negotiation (the wants and haves of a fetch), compressed or not; expanded, it is bounded again.
    _rule("git-negotiation", "POST", rf"^{_REPO}(?:\.git)?/git-upload-pack$", lambda s: 64 * MiB),
    # git push: the pack of a push's new objects (files over 10 MiB go through LFS; repos.receive refuses them).
    _rule("git-push", "POST", rf"^{_REPO}(?:\.git)?/git-receive-pack$", lambda s: s.max_commit_body_bytes,
          "push large files with git lfs"),
    # Files uploaded from the browser (the web upload form's own caps apply within this).
    _rule("web-upload", "POST", rf"^{_REPO}/upload/", lambda s: s.max_commit_body_bytes),
    # The LFS batch and verify calls: a JSON list of objects (thousands of objects fit in a few hundred KiB).
    _rule("lfs-batch", "POST", rf"^{_REPO}(?:\.git)?/info/lfs/objects/(?:batch|verify)$", lambda s: 4 * MiB),
    # Discussions: a title or a comment (at most 64 Ki characters, discussions.service) in JSON.
    _rule("discussion", "POST", r"^/api/(?:models|datasets|spaces)/[^/]+/[^/]+/discussions(?:/|$)", lambda s: 1 * MiB),
    # Comment attachments (upload_attachment): an image or audio clip up to 10 MB, a video up to 50 MB (the
    # finer bound by type is discussions/attachments').
    _rule("attachment", "POST", r"^/uploads$", lambda s: 50 * 1000 * 1000),
    # Avatars: one image of at most 2 MB (auth.avatars) in a multipart form.
    _rule("avatar", "POST", r"^/(?:settings|organizations/[^/]+)/avatar$", lambda s: 2 * 1000 * 1000 + 64 * 1024),
    # Webhooks: a URL, a secret and at most 100 watched names (webhooks.service).
    _rule("webhook", "POST", r"^/api/settings/webhooks(?:/|$)", lambda s: 64 * 1024),
    # Inference: JSON, or an image or audio clip sent raw.
    _rule("inference", "POST", r"^/(?:models/|v1/)", lambda s: 32 * MiB),
    # Every other body: JSON API calls and forms.
    _rule("api", "POST PUT PATCH DELETE", r"", lambda s: 16 * MiB),
)


def body_limit(settings: Settings, method: str, path: str) -> tuple[int | None, str]:
    """The most bytes of body the route for ``method path`` accepts (None: the route bounds it itself), and
    what its 413 advises."""
    for rule in BODY_RULES:
        if method in rule.methods and rule.pattern.match(path):
            return rule.limit(settings), rule.advice
    return 1 * MiB, ""  # GET and the like: no route reads a body


class BodyTooLargeError(HTTPException):
    """A body over its route's limit. An HTTPException, so that it stays a 413 even where FastAPI parses the
    body itself (forms, JSON parameters), which turns other exceptions into a 400."""

    def __init__(self, limit: int, advice: str = "") -> None:
        message = f"Request body over {limit} bytes, the limit for this request"
        super().__init__(413, f"{message}; {advice}" if advice else message)


def declared_too_large(headers: list[tuple[bytes, bytes]], limit: int | None) -> bool:
    """Whether the ``Content-Length`` says more than ``limit``."""
    if limit is None:
        return False
    for name, value in headers:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


def bounded_receive(receive: Receive, limit: int | None, advice: str = "") -> Receive:
    """``receive`` that raises BodyTooLargeError once the body passes ``limit`` bytes (chunked bodies included)."""
    if limit is None:
        return receive
    received = 0

    async def guarded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit, advice)
        return message

    return guarded
