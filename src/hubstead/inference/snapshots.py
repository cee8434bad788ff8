"""A model's files at one commit, laid out as a folder that ``from_pretrained`` reads.

Loaded from the hub's own storage, never from the internet: small files come out of git, LFS objects
are hard-linked from the blob store when it is a local directory on the same filesystem (no copy),
and copied otherwise (another filesystem, or Xet-backed objects reconstructed from their chunks).
Weights in formats the server does not load (GGUF, ONNX exports, TF, Flax, ...) are skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pygit2
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.repos.files import FileInfo, file_info, iter_entries
from hubstead.repos.git import GitRepo
from hubstead.storage.base import readable_path
from hubstead.xet.cas.reader import stream_file, xet_backed

SKIPPED_SUFFIXES = (".gguf", ".onnx", ".onnx_data", ".h5", ".msgpack", ".ot", ".tflite", ".mlmodel", ".pte")
SKIPPED_FOLDERS = ("onnx/", "openvino/", "coreml/", ".git/")


def weight_files(paths: list[str]) -> set[str]:
    """Which paths to skip: PyTorch ``.bin`` weights when safetensors are there too."""
    has_safetensors = any(p.endswith(".safetensors") for p in paths)
    skipped = {p for p in paths if p.endswith(SKIPPED_SUFFIXES) or p.startswith(SKIPPED_FOLDERS)}
    if has_safetensors:
        skipped |= {
            p for p in paths if p.endswith(".bin") and ("pytorch_model" in p or "model" in p.rsplit("/", 1)[-1])
        }
    return skipped


def served_files(git: GitRepo, commit: pygit2.Commit) -> list[FileInfo]:
    """The files a load reads (weights in other formats left out), each read from git once."""
    entries = [e for e in iter_entries(git, commit, "", recursive=True) if e.type == "file"]
    skipped = weight_files([e.path for e in entries])
    return [file_info(git, e.path, e.oid) for e in entries if e.path not in skipped]


def model_bytes(files: list[FileInfo]) -> int:
    """Size of the files a load reads: the basis of the memory estimate before loading."""
    return sum(f.size for f in files)


def materialize(hub: Hub, session: Session, git: GitRepo, files: list[FileInfo], commit_id: str, target: Path) -> Path:
    """Write the snapshot to ``target`` once (a finished snapshot is reused); returns ``target``."""
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        for info in files:
            destination = staging / info.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            if info.lfs is None:
                destination.write_bytes(git.read_blob(pygit2.Oid(hex=info.blob_id)))
                continue
            _write_object(hub, session, info.lfs.oid, destination)
        (staging / ".complete").write_text(commit_id)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_object(hub: Hub, session: Session, oid: str, destination: Path) -> None:
    local = readable_path(hub.blobs, oid)
    if local is not None:
        try:
            os.link(local, destination)
            return
        except OSError:
            shutil.copyfile(local, destination)
            return
    backed = xet_backed(session, oid)
    if backed is None:
        raise FileNotFoundError(f"The object {oid} is missing from storage")
    with open(destination, "wb") as out:
        for chunk in stream_file(hub.xorbs, backed, 0, backed.size - 1):
            out.write(chunk)
