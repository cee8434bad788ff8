"""Git LFS pointers and ``.gitattributes`` rules: which paths are LFS files and how they look in git."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

POINTER_VERSION = "https://git-lfs.github.com/spec/v1"
MAX_POINTER_SIZE = 1024
_POINTER_RE = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n")

_LFS_SUFFIXES = (
    "7z arrow bin bz2 ckpt ftz gguf gz h5 joblib mlmodel model msgpack npy npz onnx ot parquet pb pickle pkl "
    "pt pth rar safetensors tar tflite tgz wasm xz zip zst lz4 mds"
).split()
_DATASET_SUFFIXES = "mp3 ogg wav flac m4a opus jpg jpeg png webp gif bmp tiff mp4 avi mkv webm".split()


def default_gitattributes(repo_type: str) -> str:
    """The ``.gitattributes`` a new repo starts with: the Hub's default LFS patterns."""
    lines = [f"*.{suffix} filter=lfs diff=lfs merge=lfs -text" for suffix in _LFS_SUFFIXES]
    lines += [
        "*.lfs.* filter=lfs diff=lfs merge=lfs -text",
        "*.tar.* filter=lfs diff=lfs merge=lfs -text",
        "saved_model/**/* filter=lfs diff=lfs merge=lfs -text",
        "*tfevents* filter=lfs diff=lfs merge=lfs -text",
    ]
    if repo_type == "dataset":
        lines.append("# Audio, image and video files")
        lines += [f"*.{suffix} filter=lfs diff=lfs merge=lfs -text" for suffix in _DATASET_SUFFIXES]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int

    def to_bytes(self) -> bytes:
        return f"version {POINTER_VERSION}\noid sha256:{self.oid}\nsize {self.size}\n".encode()


def parse_pointer(data: bytes) -> LfsPointer | None:
    """Read an LFS pointer file, or None when ``data`` is an ordinary file."""
    if len(data) > MAX_POINTER_SIZE:
        return None
    match = _POINTER_RE.match(data)
    if match is None:
        return None
    return LfsPointer(oid=match.group(1).decode(), size=int(match.group(2)))


class LfsRules:
    """The LFS patterns of a ``.gitattributes`` file, matched the way git matches them."""

    def __init__(self, gitattributes: str) -> None:
        self._rules: list[tuple[str, bool]] = []
        for raw in gitattributes.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            pattern, *attrs = line.split()
            if "filter=lfs" in attrs:
                self._rules.append((pattern, True))
            elif "-filter" in attrs or "!filter" in attrs:
                self._rules.append((pattern, False))

    def matches(self, path: str) -> bool:
        """Whether the last rule that matches ``path`` marks it as LFS (git's last-match-wins)."""
        result = False
        for pattern, is_lfs in self._rules:
            if _gitattributes_match(pattern, path):
                result = is_lfs
        return result


def _gitattributes_match(pattern: str, path: str) -> bool:
    if "/" not in pattern.rstrip("/"):
        # A pattern without a slash matches the file name at any depth.
        return fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    return _glob_regex(pattern.lstrip("/")).fullmatch(path) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
