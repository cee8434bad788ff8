"""Keeping every dataset's conversion current: queue one when a dataset's main moves, and at start for each
dataset whose main head has none."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.jobs.kinds import DATASET_CONVERSION
from hubstead.jobs.models import Job
from hubstead.jobs.service import enqueue
from hubstead.repos.models import Repo
from hubstead.viewer.store import DatasetConversion


def convert_new_head(session: Session, repo: Repo, commit_id: str) -> None:
    """A dataset's main moved: queue its conversion (in the transaction that moved it). Registered with
    ``repos.index.follow_main`` by ``hubstead.wiring``."""
    if repo.repo_type == "dataset":
        enqueue(session, kind=DATASET_CONVERSION, repo_pk=repo.pk, revision=commit_id)


def queue_missing_conversions(hub: Hub) -> int:
    """At start: datasets converted at an older commit (or never, e.g. created before the viewer existed)
    get a job, unless one for their head is already queued or running."""
    queued = 0
    with hub.db.session() as session:
        converted = dict(
            session.execute(select(DatasetConversion.repo_pk, DatasetConversion.source_commit)).tuples().all()
        )
        waiting = {
            (pk, revision)
            for pk, revision in session.execute(
                select(Job.repo_pk, Job.revision).where(
                    Job.kind == DATASET_CONVERSION.name, Job.status.in_(("queued", "running"))
                )
            ).tuples()
        }
        failed = {
            (pk, revision)
            for pk, revision in session.execute(
                select(Job.repo_pk, Job.revision).where(Job.kind == DATASET_CONVERSION.name, Job.status == "failed")
            ).tuples()
        }
        for repo in session.scalars(select(Repo).where(Repo.repo_type == "dataset", Repo.sha.is_not(None))):
            key = (repo.pk, repo.sha or "")
            if converted.get(repo.pk) == repo.sha or key in waiting or key in failed:
                continue
            enqueue(session, kind=DATASET_CONVERSION, repo_pk=repo.pk, revision=repo.sha or "")
            queued += 1
    return queued
