"""The one registry of job kinds: each kind's name (stored in ``jobs.kind``), the function its process runs,
and what a person reads about it.

The function is named as ``"module:function"`` and imported only in the job's own process
(``jobs.execute``), so this registry imports nothing from the domains whose work it runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    name: str  # stored in jobs.kind
    entry: str  # "module:function", run in the job process as function(hub, job_id, report)
    title: str  # what a person reads

    def function_path(self) -> tuple[str, str]:
        module, _, function = self.entry.partition(":")
        return module, function


DATASET_CONVERSION = JobKind(
    name="dataset-conversion",
    entry="hubstead.viewer.conversion:run_conversion_job",
    title="Dataset viewer conversion (Parquet shards and the search index)",
)

KINDS: dict[str, JobKind] = {kind.name: kind for kind in (DATASET_CONVERSION,)}


def kind_named(name: str) -> JobKind:
    """The registered kind ``name`` (KeyError names the known ones)."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"Unknown job kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
