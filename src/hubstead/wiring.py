"""What the domains above ``repos`` do when a repo changes, registered in one place.

``repos`` moves branches and cannot import the layers above it, so they register here: the app and every CLI
command call ``connect_domains`` before they touch a repo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubstead.context import Hub


def connect_domains() -> None:
    """Register the followers of main (idempotent: registering again replaces)."""
    from hubstead.buckets.service import connect_xet
    from hubstead.compute.ends import follow_end
    from hubstead.evals.index import follow_main as index_eval_results
    from hubstead.evals.service import finish as finish_evaluation
    from hubstead.evals.service import reevaluate
    from hubstead.evals.spec import LABEL as EVAL_LABEL
    from hubstead.repos.index import follow_main
    from hubstead.spaces.service import follow_main as run_new_space_head
    from hubstead.viewer.jobs import convert_new_head

    follow_main("dataset-viewer-conversion", convert_new_head)
    follow_main("space-build", run_new_space_head)
    follow_main("eval-results-index", index_eval_results)
    follow_main("eval-reevaluate", reevaluate)  # after the index: it reads the stale flags the index set
    follow_end(EVAL_LABEL, finish_evaluation)  # the hub writes a completed evaluation's results
    connect_xet()  # the CAS answers bucket tokens


def attach_hub(hub: Hub) -> None:
    """Give the followers that read git or sign (the evaluation index) the hub they work for: the app and every
    CLI command call it once their hub is built."""
    from hubstead.evals.index import attach

    attach(hub)
