"""Uploaded avatars of users and orgs: checked from their bytes, stored by content under ``avatars/`` in the data
dir, named on the account (``User.avatar``, ``Org.avatar``: ``<sha256>.<ext>``); without one, pages show the
picture generated from the name.

Only PNG, JPEG, GIF and WebP, read from the bytes (``hubstead.images``; never SVG, which can carry scripts), at
most 2 MB, and at most 4096 pixels a side by the header, so a decompression bomb is refused before it is stored.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.models import Org, User
from hubstead.context import Hub
from hubstead.errors import BadRequestError, PayloadTooLargeError
from hubstead.images import IMAGE_TYPES, image_size, sniff_image
from hubstead.storage.files import store_by_hash

MB = 1000 * 1000
MAX_AVATAR_BYTES = 2 * MB
MAX_SIDE = 4096
NAME_RE = re.compile(r"^[0-9a-f]{64}\.(" + "|".join(IMAGE_TYPES) + r")$")


def check_avatar(data: bytes) -> str:
    """The extension ``data`` is stored under, once it is an acceptable avatar.

    Raises:
        PayloadTooLargeError: over 2 MB.
        BadRequestError: empty, not a PNG, JPEG, GIF or WebP by its bytes, or an unreadable or too large size.
    """
    if len(data) > MAX_AVATAR_BYTES:
        raise PayloadTooLargeError(f"An avatar must be at most {MAX_AVATAR_BYTES // MB} MB")
    if not data:
        raise BadRequestError("Choose an image to upload")
    ext = sniff_image(data)
    if ext is None:
        raise BadRequestError("An avatar must be a PNG, JPEG, GIF or WebP image (read from its bytes; SVG is not)")
    size = image_size(data, ext)
    if size is None:
        raise BadRequestError(f"The image's size cannot be read from its {ext.upper()} header")
    width, height = size
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise BadRequestError(f"The image is {width}x{height} pixels: at most {MAX_SIDE}x{MAX_SIDE}")
    return ext


def _dir(hub: Hub) -> Path:
    return hub.settings.data_dir / "avatars"


def store_avatar(hub: Hub, data: bytes) -> str:
    """Check and store ``data`` (``check_avatar``'s errors); its name, ``<sha256>.<ext>``."""
    ext = check_avatar(data)
    return store_by_hash(_dir(hub), data, ext)


def set_avatar(hub: Hub, session: Session, account: User | Org, data: bytes | None) -> None:
    """Give ``account`` the image ``data`` as its avatar, or (None) go back to the generated one."""
    account.avatar = None if data is None else store_avatar(hub, data)
    session.flush()


def avatar_of(session: Session, name: str) -> tuple[bool, str | None]:
    """Whether a user or org is called ``name``, and its stored avatar (None: it has none)."""
    key = name.lower()
    for model in (User, Org):
        row = session.execute(select(model.avatar).where(model.name_key == key)).first()
        if row is not None:
            return True, row[0]
    return False, None


def avatar_file(hub: Hub, stored: str) -> tuple[Path, str] | None:
    """The file and content type of a stored avatar, or None when it is not (any more) on disk."""
    match = NAME_RE.match(stored)
    if match is None:
        return None
    path = _dir(hub) / stored[:2] / stored
    return (path, IMAGE_TYPES[match.group(1)]) if path.is_file() else None


def avatar_url(base: str, name: str) -> str:
    """The absolute URL that shows ``name``'s avatar, uploaded or generated (``base``: the hub's URL)."""
    return f"{base}/-/avatar/{quote(name, safe='')}"
