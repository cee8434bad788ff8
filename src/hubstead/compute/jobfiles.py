"""A job's files on the hub's disk, under ``<data>/compute/<job id>/``: its log (kept with the job), its home
(``/home/user`` inside: checkpoints, caches; kept across attempts, removed when the job ends) and the folders its
volumes are filled into."""

from __future__ import annotations

import shutil
from pathlib import Path

from hubstead.compute.spec import Volume
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.errors import NotFoundError


def job_dir(settings: Settings, job_id: str) -> Path:
    assert job_id.isalnum()
    return settings.data_dir / "compute" / job_id


def log_path(settings: Settings, job_id: str) -> Path:
    return job_dir(settings, job_id) / "log.txt"


def home(settings: Settings, job_id: str) -> Path:
    return job_dir(settings, job_id) / "home"


def volume_dir(settings: Settings, job_id: str, index: int) -> Path:
    return job_dir(settings, job_id) / "volumes" / str(index)


def remove_home(settings: Settings, job_id: str) -> None:
    shutil.rmtree(home(settings, job_id), ignore_errors=True)


def remove_volumes(settings: Settings, job_id: str) -> None:
    shutil.rmtree(job_dir(settings, job_id) / "volumes", ignore_errors=True)


def remove_all(settings: Settings, job_id: str) -> None:
    shutil.rmtree(job_dir(settings, job_id), ignore_errors=True)


def fill_volume(hub: Hub, volume: Volume, target: Path) -> None:
    """Write what the volume mounts into ``target``: a repo's files at its revision (under ``path``), or a
    bucket's (under ``path``)."""
    if volume.type == "bucket":
        from hubstead.buckets import service as buckets

        buckets.materialize(hub, volume.source, volume.path or "", target)
        return
    from hubstead.repos.service import find_repo, open_git
    from hubstead.spaces.files import export_tree

    with hub.db.session() as session:
        repo, _ = find_repo(session, repo_type=volume.type, repo_id=volume.source)
        if repo is None:
            raise NotFoundError(f"The {volume.type} {volume.source} is gone")
        git = open_git(hub, repo)
    commit = git.resolve(volume.revision or "main")
    export_tree(hub, git, commit, target)
    if volume.path:
        inner = target / volume.path
        if not inner.is_dir():
            raise NotFoundError(f"{volume.source} has no folder {volume.path} at {volume.revision or 'main'}")
        scratch = target.with_name(target.name + ".sub")
        shutil.rmtree(scratch, ignore_errors=True)
        inner.rename(scratch)
        shutil.rmtree(target)
        scratch.rename(target)
