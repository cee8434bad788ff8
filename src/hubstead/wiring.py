"""What the domains above ``repos`` do when a repo changes, registered in one place.

``repos`` moves branches and cannot import the layers above it, so they register here: the app and every CLI
command call ``connect_domains`` before they touch a repo.
"""

from __future__ import annotations


def connect_domains() -> None:
    """Register the followers of main (idempotent: registering again replaces)."""
    from hubstead.buckets.service import connect_xet
    from hubstead.repos.index import follow_main
    from hubstead.spaces.service import follow_main as run_new_space_head
    from hubstead.viewer.jobs import convert_new_head

    follow_main("dataset-viewer-conversion", convert_new_head)
    follow_main("space-build", run_new_space_head)
    connect_xet()  # the CAS answers bucket tokens
