"""Which files make which config and split of a dataset repo, worked out the way ``datasets`` does.

Order (``datasets/data_files.py``): the card's ``configs:`` YAML wins; otherwise the sharded layout
``data/{split}-00000-of-00001.*``, then split keywords in folder names (``train/``, ``data/test/``),
then in file names (``train.csv``, ``my-valid-2.jsonl``), and finally everything is ``train``. Among data
files the most common format decides the builder; image and audio folders take a ``label`` from their
parent folder names when every file sits in one. Pure logic: a list of paths (and the card) in, a plan out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from hubstead.errors import InvalidPathError
from hubstead.repos.paths import normalize_path_in_repo

SPLIT_KEYWORDS = {
    "train": ["train", "training"],
    "validation": ["validation", "valid", "dev", "val"],
    "test": ["test", "testing", "eval", "evaluation"],
}
SEP = "-._ 0-9"
FILENAME_PATTERNS = ["**/{keyword}[{sep}]*", "**/*[{sep}]{keyword}[{sep}]*"]
DIRNAME_PATTERNS = [
    "**/{keyword}/**",
    "**/{keyword}[{sep}]*/**",
    "**/*[{sep}]{keyword}/**",
    "**/*[{sep}]{keyword}[{sep}]*/**",
]
SHARDED_PATTERN = "data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*"

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
AUDIO_EXTENSIONS = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"}
BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".txt": "text",
    **dict.fromkeys(IMAGE_EXTENSIONS, "imagefolder"),
    **dict.fromkeys(AUDIO_EXTENSIONS, "audiofolder"),
}
METADATA_FILES = {"metadata.csv", "metadata.jsonl"}
IGNORED_NAMES = {"README.md", ".gitattributes", "dataset_infos.json", "dataset_info.json"}


class LayoutError(ValueError):
    """The repo's files or card do not describe a dataset the viewer can read."""


@dataclass
class SplitPlan:
    name: str
    files: list[str]


@dataclass
class ConfigPlan:
    name: str
    builder: str  # csv | json | parquet | arrow | text | imagefolder | audiofolder
    splits: list[SplitPlan]
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"sep": "\t"}, {"metadata": "train/metadata.csv"}
    default: bool = False


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """fsspec-style glob (``**`` spans folders, ``*`` does not, ``[...]`` classes) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "/.*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out += "[" + body + "]"  # a leading "-" is literal in a regex class too
            i = end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def matches(pattern: str, path: str) -> bool:
    return _glob_regex(pattern.lstrip("/")).match(path) is not None


def _data_files(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        parts = PurePosixPath(path).parts
        if any(p.startswith((".", "__")) for p in parts) or parts[-1] in IGNORED_NAMES:
            continue
        if PurePosixPath(path).suffix.lower() in BUILDERS or parts[-1] in METADATA_FILES:
            out.append(path)
    return out


def _builder_of(files: list[str]) -> str:
    counts = Counter(
        BUILDERS[PurePosixPath(f).suffix.lower()] for f in files if PurePosixPath(f).name not in METADATA_FILES
    )
    if not counts:
        raise LayoutError(
            "No data files found: the viewer reads CSV/TSV, JSON/JSON Lines, Parquet, Arrow, text, "
            "and image or audio folders"
        )
    return counts.most_common(1)[0][0]


def _assign_splits(files: list[str]) -> list[SplitPlan]:
    for split_pattern_set in _pattern_sets():
        assigned: list[SplitPlan] = []
        for split, patterns in split_pattern_set.items():
            chosen = sorted({f for f in files if any(matches(p, f) for p in patterns)})
            if chosen:
                assigned.append(SplitPlan(split, chosen))
        if assigned:
            return _dedupe(assigned)
    return [SplitPlan("train", sorted(files))]


def _dedupe(splits: list[SplitPlan]) -> list[SplitPlan]:
    """A file that matches two splits' patterns belongs to the first (datasets raises; we stay readable)."""
    seen: set[str] = set()
    out = []
    for split in splits:
        files = [f for f in split.files if f not in seen]
        seen.update(files)
        if files:
            out.append(SplitPlan(split.name, files))
    return out


def _pattern_sets() -> list[dict[str, list[str]]]:
    sharded = {split: [SHARDED_PATTERN.format(split=split)] for split in SPLIT_KEYWORDS}
    by_dir = {
        s: [p.format(keyword=k, sep=SEP) for k in kws for p in DIRNAME_PATTERNS] for s, kws in SPLIT_KEYWORDS.items()
    }
    by_name = {
        s: [p.format(keyword=k, sep=SEP) for k in kws for p in FILENAME_PATTERNS] for s, kws in SPLIT_KEYWORDS.items()
    }
    return [sharded, by_dir, by_name]


def _options_for(builder: str, files: list[str], all_paths: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if builder == "csv" and files and all(f.lower().endswith(".tsv") for f in files):
        options["sep"] = "\t"
    if builder in ("imagefolder", "audiofolder"):
        options["metadata"] = sorted(p for p in all_paths if PurePosixPath(p).name in METADATA_FILES)
    return options


def plan(paths: list[str], card: dict[str, Any] | None = None) -> list[ConfigPlan]:
    """The configs and splits of a repo holding ``paths``, following its card's ``configs:`` if any."""
    card_configs = (card or {}).get("configs")
    if card_configs:
        return _from_card(card_configs, paths)
    files = _data_files(paths)
    builder = _builder_of(files)
    own = [f for f in files if BUILDERS.get(PurePosixPath(f).suffix.lower()) == builder]
    splits = _assign_splits(own)
    return [ConfigPlan("default", builder, splits, _options_for(builder, own, paths), default=True)]


def safe_name(name: str, what: str) -> str:
    """A config or split name becomes a folder of the conversion's files and of ``refs/convert/parquet``:
    it must be one safe path segment (the rules of a path in a repo, and no ``/``)."""
    try:
        normalize_path_in_repo(name)
    except InvalidPathError as exc:
        raise LayoutError(f"The {what} name {name!r} is not allowed: {exc.message}") from exc
    if "/" in name:
        raise LayoutError(f"The {what} name {name!r} is not allowed: it must not contain '/'")
    return name


def _from_card(configs: Any, paths: list[str]) -> list[ConfigPlan]:
    if not isinstance(configs, list):
        raise LayoutError("The card's `configs:` must be a list")
    files = _data_files(paths)
    out: list[ConfigPlan] = []
    for entry in configs:
        if not isinstance(entry, dict) or not isinstance(entry.get("config_name", "default"), str):
            raise LayoutError("Each entry of the card's `configs:` needs a config_name")
        name = safe_name(entry.get("config_name", "default"), "config")
        if any(c.name == name for c in out):
            raise LayoutError(f"The card's `configs:` name the config {name!r} twice")
        data_dir = str(entry.get("data_dir") or "").strip("/")
        scoped = [f for f in files if not data_dir or f.startswith(data_dir + "/")]
        data_files = entry.get("data_files")
        if data_files is None:
            splits = _assign_splits([f for f in scoped if PurePosixPath(f).name not in METADATA_FILES])
        else:
            splits = _card_splits(name, data_files, scoped, data_dir)
        chosen = [f for s in splits for f in s.files]
        builder = _builder_of(chosen)
        options = _options_for(builder, chosen, paths)
        if isinstance(entry.get("sep"), str):
            options["sep"] = entry["sep"]
        out.append(ConfigPlan(name, builder, splits, options, default=bool(entry.get("default"))))
    return out


def _card_splits(config: str, data_files: Any, files: list[str], data_dir: str) -> list[SplitPlan]:
    if isinstance(data_files, str | list) and (
        isinstance(data_files, str) or all(isinstance(x, str) for x in data_files)
    ):
        data_files = [{"split": "train", "path": data_files}]
    if isinstance(data_files, dict):
        data_files = [{"split": k, "path": v} for k, v in data_files.items()]
    if not isinstance(data_files, list):
        raise LayoutError(f"Config {config!r}: data_files must be a string, a list, or a list of {{split, path}}")
    splits: list[SplitPlan] = []
    for item in data_files:
        if not isinstance(item, dict) or "path" not in item:
            raise LayoutError(f"Config {config!r}: each data_files entry needs a path")
        patterns = item["path"] if isinstance(item["path"], list) else [item["path"]]
        prefix = data_dir + "/" if data_dir else ""
        chosen = sorted({f for f in files for p in patterns if matches(prefix + str(p), f)})
        if not chosen:
            raise LayoutError(f"Config {config!r}, split {item.get('split', 'train')!r}: no file matches {patterns}")
        split = safe_name(str(item.get("split", "train")), "split")
        if any(s.name == split for s in splits):
            raise LayoutError(f"Config {config!r} names the split {split!r} twice")
        splits.append(SplitPlan(split, chosen))
    return splits
