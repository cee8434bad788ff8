"""The one image rule (``hubstead.images``) and the avatar checks on it (``auth.avatars.check_avatar``): types read
from the bytes, sizes from the header of real files written by Pillow, SVG and disguised documents refused, and
bombs (a small file whose header declares a huge picture) refused before anything is decoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hubstead.auth.avatars import MAX_AVATAR_BYTES, check_avatar
from hubstead.discussions.attachments import sniff
from hubstead.errors import BadRequestError, PayloadTooLargeError
from hubstead.images import image_size, sniff_image


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 0).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "ext", "options"),
    [
        ("PNG", "png", {}),
        ("JPEG", "jpg", {}),
        ("JPEG", "jpg", {"progressive": True}),
        ("GIF", "gif", {}),
        ("WEBP", "webp", {}),  # lossy: VP8
        ("WEBP", "webp", {"lossless": True}),  # VP8L
    ],
)
def test_type_and_size_from_the_bytes(fmt: str, ext: str, options: dict[str, object]) -> None:
    data = _image(fmt, (37, 21), **options)
    assert sniff_image(data) == ext == sniff(data)  # attachments follow the same rule
    assert image_size(data, ext) == (37, 21)
    assert check_avatar(data) == ext


def test_extended_webp_size() -> None:
    data = _image("WEBP", (300, 5), mode="RGBA", lossless=False)  # alpha: the extended (VP8X) header
    assert data[12:16] == b"VP8X" and image_size(data, "webp") == (300, 5)


def test_documents_and_bombs_refused() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for data in (svg, b"<!doctype html><script>alert(1)</script>", b"\x89PNG\r\n\x1a\n" + svg, b""):
        with pytest.raises(BadRequestError):
            check_avatar(data)
    assert sniff_image(svg) is None and sniff(svg) is None
    bomb = _image("PNG", (5000, 300), mode="1")  # a few hundred bytes that decode to 5000 pixels wide
    assert len(bomb) < 10_000 and image_size(bomb, "png") == (5000, 300)
    with pytest.raises(BadRequestError, match="5000x300"):
        check_avatar(bomb)
    assert check_avatar(_image("PNG", (4096, 4), mode="1")) == "png"
    with pytest.raises(PayloadTooLargeError):
        check_avatar(_image("PNG", (4, 4)) + b"\0" * MAX_AVATAR_BYTES)
    truncated_jpeg = _image("JPEG", (8, 8))[:40]  # no frame header yet
    with pytest.raises(BadRequestError, match="cannot be read"):
        check_avatar(truncated_jpeg)
