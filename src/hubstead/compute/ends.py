"""What the domains built on jobs do when one of their jobs ends, registered by label.

A domain that runs its work as compute jobs (evaluation, for one) marks its jobs with a label and registers
``follow_end(label, follower)`` once (``hubstead/wiring.connect_domains``). The executor calls every follower whose
label the ended job carries, after the job's final stage is stored, in its own thread; a follower that raises
has its error written to the job's log and does not stop the executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hubstead.context import Hub
from hubstead.runner import logs as runner_logs

from . import jobfiles

EndFollower = Callable[[Hub, str], None]  # (hub, job_id): the job's row holds its final stage
_followers: dict[str, EndFollower] = {}
log = logging.getLogger(__name__)


def follow_end(label: str, follower: EndFollower) -> None:
    """Call ``follower(hub, job_id)`` when a job labelled ``label`` (any value) reaches a final stage; registering
    the label again replaces its follower."""
    _followers[label] = follower


def job_ended(hub: Hub, job_id: str, labels: dict[str, str] | None) -> None:
    """Run the followers of ``labels`` for a job that has just reached its final stage."""
    for label in labels or {}:
        follower = _followers.get(label)
        if follower is None:
            continue
        try:
            follower(hub, job_id)
        except Exception as exc:  # noqa: BLE001 - the job's outcome stands; its log says what did not follow
            log.exception("follower %s of job %s failed", label, job_id)
            runner_logs.append(jobfiles.log_path(hub.settings, job_id), f"==> {label}: {exc}")
