"""Decompression with a bound on the output: the one way Hubstead expands compressed bytes it was sent.

A compressed body is a promise about its size that nothing checks: 1 MB of gzip expands to 1 GB of zeros
(a gzip bomb on ``git-upload-pack`` took 2 GB of memory), an LZ4 frame to 255 times its size. Every caller
names the most output it accepts; past it, ``DecompressedTooLargeError`` (413) stops the work before the
memory is spent.
"""

from __future__ import annotations

import zlib
from typing import Any

from hubstead.errors import BadRequestError, PayloadTooLargeError

ENCODINGS = ("gzip", "x-gzip", "deflate", "lz4")


class DecompressedTooLargeError(PayloadTooLargeError):
    """Compressed input that expands past the caller's bound."""


class BoundedDecoder:
    """Stream-decompress ``encoding`` (``gzip``, ``deflate`` or an ``lz4`` frame) into at most ``limit``
    bytes: ``feed`` each piece of input as it arrives, then ``finish``."""

    def __init__(self, encoding: str, limit: int, *, what: str = "body") -> None:
        encoding = encoding.strip().lower()
        self.limit, self.what, self.total = limit, what, 0
        self._lz4: Any = None
        self._zlib: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(wbits=31)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(wbits=47)  # zlib-wrapped, as RFC 9110 says (gzip too, if sent so)
        elif encoding == "lz4":
            import lz4.frame

            self._lz4 = lz4.frame.LZ4FrameDecompressor()
        else:
            raise BadRequestError(f"Unsupported Content-Encoding {encoding!r} for the {what}: use gzip or none")

    def feed(self, data: bytes) -> bytes:
        room = self.limit - self.total + 1  # one byte more than allowed tells "too large" from "exactly full"
        try:
            if self._zlib is not None:
                if self._zlib.eof:
                    return b""  # trailing bytes after the stream: ignored, as gzip does
                out = self._zlib.decompress(data, room)
            else:
                out = self._lz4.decompress(data, max_length=room)
        except (zlib.error, RuntimeError) as exc:  # lz4 reports a corrupt frame as RuntimeError
            raise BadRequestError(f"The {self.what} does not decompress: {exc}") from exc
        self.total += len(out)
        if self.total > self.limit:
            raise DecompressedTooLargeError(
                f"The {self.what} decompresses to more than {self.limit} bytes; refused (the limit for this request)"
            )
        return out

    def finish(self) -> bytes:
        """The rest of the output; a stream cut short is a 400."""
        done = self._zlib.eof if self._zlib is not None else self._lz4.eof
        if not done:
            raise BadRequestError(f"The compressed {self.what} is truncated")
        return b""


def decompress_bounded(data: bytes, encoding: str, limit: int, *, what: str = "body") -> bytes:
    """``data`` decompressed (see ``BoundedDecoder``), refused past ``limit`` bytes of output."""
    decoder = BoundedDecoder(encoding, limit, what=what)
    out = decoder.feed(data)
    decoder.finish()
    return out
