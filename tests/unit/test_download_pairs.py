"""A HEAD-then-GET counts once when the two requests reach different processes (``SharedDownloadPairs``: the rule of
``downloads.follows_head`` with its memory in the database), on SQLite and PostgreSQL."""

from __future__ import annotations

from hubstead.context import Hub
from hubstead.coordination.downloads import SharedDownloadPairs
from hubstead.coordination.models import DownloadPairRow


def test_a_get_after_a_head_on_another_process_is_the_same_download(backend_hub: Hub) -> None:
    first, second = SharedDownloadPairs(backend_hub.db), SharedDownloadPairs(backend_hub.db)  # two API processes
    key = ("10.0.0.7", "huggingface_hub/1.33", "12", "config.json")
    assert first.counts(key, "HEAD", now=1000.0) is True
    assert second.counts(key, "GET", now=1000.2) is False  # hf_hub_download's GET after its HEAD: not a new one
    assert first.counts(key, "GET", now=1000.3) is True  # a second GET is another download
    assert second.counts(key, "HEAD", now=1001.0) is True
    assert first.counts(key, "GET", now=1100.0) is True  # too late to pair with that HEAD
    other = ("10.0.0.8", "huggingface_hub/1.33", "12", "config.json")  # another client's GET never pairs with ours
    assert second.counts(other, "GET", now=1000.1) is True
    assert isinstance(backend_hub.downloads, SharedDownloadPairs)  # what a hub built from settings counts with


def test_old_pairs_are_swept(backend_hub: Hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pairs = SharedDownloadPairs(backend_hub.db, window=30)
    for i in range(5):
        pairs.counts((str(i),), "HEAD", now=0.0)
    monkeypatch.setattr("hubstead.coordination.downloads.SWEEP_CHANCE", 1.0)
    pairs.counts(("fresh",), "HEAD", now=1000.0)
    with backend_hub.db.session() as session:
        assert session.query(DownloadPairRow).count() == 1


def test_pairing_inside_a_request_that_already_wrote(backend_hub: Hub) -> None:
    """The request's own session may already hold SQLite's write lock (a token's last-used stamp): the pairing
    writes in that session, so it never waits on itself (a second session waited out the busy timeout: a 503)."""
    from sqlalchemy import text

    pairs = SharedDownloadPairs(backend_hub.db)
    key = ("10.0.0.9", "ua", "3", "README.md")
    with backend_hub.db.session() as session:
        session.execute(text("UPDATE download_pairs SET at = at"))  # a write: this transaction holds the lock
        assert pairs.counts(key, "HEAD", now=5.0, session=session) is True
        assert pairs.counts(key, "GET", now=5.1, session=session) is False
        assert pairs.counts(key, "GET", now=5.2, session=session) is True
