"""``python -m hubstead.jobs.execute <job id>``: run one job in this process and record how it ended.

The job function gets the hub, the job id and a ``report(progress, message)`` callable. Raising
``JobFailed`` records its message as the reason a person reads; any other exception is recorded with
its type and text (the traceback goes to the log); running out of the memory limit is recorded as
"out of memory (limit …)". The runner starts this module in the job's sandbox (``jobs.sandbox``).
"""

from __future__ import annotations

import importlib
import logging
import resource
import sys
import traceback

from hubstead.config import load_settings
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.jobs.kinds import kind_named
from hubstead.jobs.models import Job
from hubstead.jobs.sandbox import Limits
from hubstead.jobs.service import JobFailed, Reporter

log = logging.getLogger("hubstead.jobs")

# JobFailed lives in jobs.service: this module runs as ``__main__``, so a class defined here would not be
# the one a job function imports from ``hubstead.jobs.execute``.
__all__ = ["JobFailed", "main"]


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s job %(name)s: %(message)s")
    job_id = int(argv[0])
    hub = Hub.from_settings(load_settings(), migrate=False)
    with hub.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return 1
        kind = job.kind
    module_name, function_name = kind_named(kind).function_path()
    function = getattr(importlib.import_module(module_name), function_name)
    report = Reporter(hub, job_id)
    try:
        outcome = function(hub, job_id, report) or "succeeded"
    except JobFailed as exc:
        _finish(hub, job_id, "failed", str(exc))
        return 0
    except MemoryError:  # an allocation past the memory limit the runner set (jobs.sandbox.Limits)
        log.error("job %d ran out of memory:\n%s", job_id, traceback.format_exc())
        _finish(hub, job_id, "failed", _own_limits().out_of_memory())
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure is recorded for the person watching
        log.error("job %d failed:\n%s", job_id, traceback.format_exc())
        _finish(hub, job_id, "failed", f"{type(exc).__name__}: {exc}")
        return 0
    _finish(hub, job_id, outcome, None)
    return 0


def _own_limits() -> Limits:
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return Limits(memory_bytes=None if soft == resource.RLIM_INFINITY else soft)


def _finish(hub: Hub, job_id: int, status: str, error: str | None) -> None:
    with hub.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        job.status, job.error, job.finished_at = status, error, utcnow()
        if status != "failed":
            job.progress = 1.0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
