"""Files a user attaches to a comment (``HfApi.upload_attachment``): images, videos and audio clips, stored by
their sha256 under ``attachments/`` in the data dir and linked from Markdown by URL.

The type is read from the bytes (magic numbers), never trusted from the request: anything that is not one of the
formats below, or whose bytes are another format than the ``Content-Type`` claims, is refused in words. The
client's bounds hold: 10 MB, 50 MB for videos. Served with the sniffed type, ``nosniff`` and a sandboxing CSP
(``attachment_headers``), so an attachment is never rendered as HTML or script.
"""

from __future__ import annotations

import re
from pathlib import Path

from hubstead.context import Hub
from hubstead.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from hubstead.images import sniff_image
from hubstead.storage.files import store_by_hash

MB = 1000 * 1000
MAX_BYTES = 10 * MB
MAX_VIDEO_BYTES = 50 * MB
# extension → content type; the extensions huggingface_hub's upload_attachment sends.
TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "mp4": "video/mp4",
    "mov": "video/quicktime", "webm": "video/webm", "mp3": "audio/mpeg", "wav": "audio/wav",
}  # fmt: skip
EXTENSIONS = {content_type: ext for ext, content_type in TYPES.items()}
NAME_RE = re.compile(r"^([0-9a-f]{64})\.(" + "|".join(TYPES) + r")$")


def sniff(data: bytes) -> str | None:
    """The extension (a key of ``TYPES``) the bytes are, by their magic numbers, or None (images: the one rule in
    ``hubstead.images``)."""
    image = sniff_image(data)
    if image is not None:
        return image
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[4:8] == b"ftyp":
        return "mov" if data[8:12] == b"qt  " else "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def _dir(hub: Hub) -> Path:
    return hub.settings.data_dir / "attachments"


def store_attachment(hub: Hub, data: bytes, content_type: str) -> str:
    """Check and store ``data``; the file name it is served under (``<sha256>.<ext>``).

    Raises:
        BadRequestError: an unsupported type, or bytes that are not the type claimed.
        PayloadTooLargeError: over 10 MB (50 MB for a video).
    """
    claimed = EXTENSIONS.get(content_type.split(";")[0].strip().lower())
    if claimed is None:
        raise BadRequestError(f"Unsupported attachment type {content_type!r}: send one of {', '.join(TYPES.values())}")
    limit = MAX_VIDEO_BYTES if TYPES[claimed].startswith("video/") else MAX_BYTES
    if len(data) > limit:
        raise PayloadTooLargeError(f"Attachments must be smaller than {limit // MB} MB")
    if not data:
        raise BadRequestError("The attachment is empty")
    actual = sniff(data)
    if actual is None or TYPES[actual] != TYPES[claimed]:
        raise BadRequestError(f"The file is not {TYPES[claimed]}: its bytes are of another or unknown format")
    return store_by_hash(_dir(hub), data, actual)


def attachment_path(hub: Hub, name: str) -> tuple[Path, str]:
    """The stored file for ``name`` and its content type. Raises NotFoundError."""
    match = NAME_RE.match(name)
    path = _dir(hub) / name[:2] / name if match else None
    if match is None or path is None or not path.is_file():
        raise NotFoundError(f"No attachment {name!r}")
    return path, TYPES[match.group(2)]


def attachment_headers(name: str) -> dict[str, str]:
    """What makes a stored attachment safe to serve: never sniffed, never a document that runs anything."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{name}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "public, max-age=31536000, immutable",
    }
