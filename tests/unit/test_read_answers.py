"""The mechanics of the read path's kept answers in one process, where they can be watched.

model_info's warm answer (``repos.info_answer``): a warm call on SQLite is answered on the event loop without a
thread hand-off, the cache key is the index row (so a changed row is a new key), a token's use is still stamped
once a minute, and a failed read on the loop falls back to the long way. Listings (``search.answers``): kept
under the database's change stamp, per Host (their next-page link), asked afresh after any write by any
connection, and after a minute when a token asked. (What the answers are, and that every change is seen at once,
is tested against a live server on both databases: ``test_warm_info.py``, ``test_listing_answers.py``.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from hubstead.app import create_app
from hubstead.auth import service as auth
from hubstead.auth import sessions
from hubstead.auth.models import Token
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.db import Database, LoopReadFailed, utcnow
from hubstead.repos import info_answer
from hubstead.repos.events import RepoEvent
from hubstead.repos.models import Repo
from hubstead.repos.routes import repos as repo_routes
from hubstead.search import answers
from hubstead.search import routes as search_routes
from hubstead.web import kept_pages
from hubstead.webhooks.models import WebhookCursor


@pytest.fixture()
def hub_client(tmp_path: Path) -> Iterator[tuple[Hub, TestClient, dict[str, str]]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'hub.db'}",
                        secret_key=secrets.token_hex(16), inference_enabled=False)  # fmt: skip
    app = create_app(settings, startup=False)
    hub: Hub = app.state.hub
    with hub.db.session() as session:
        user = auth.create_user(session, name="ann")
        token = auth.create_token(session, user=user, role="write")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        _create_repo(hub, client, headers, "m")
        yield hub, client, headers
    hub.db.engine.dispose()


def _create_repo(hub: Hub, client: TestClient, headers: dict[str, str], name: str) -> None:
    """Create ``ann/{name}`` and wait until the webhook sender has moved its cursor past the new event: that move
    is a write of its own, a moment later, which would start the kept answers afresh in the middle of a test."""
    assert client.post("/api/repos/create", json={"name": name, "type": "model"}, headers=headers).status_code == 200
    deadline = time.monotonic() + 10
    while True:
        with hub.db.session() as session:
            newest = session.scalar(select(func.max(RepoEvent.id)))
            cursor = session.scalar(select(WebhookCursor.last_event_id))
        if cursor == newest:
            return
        assert time.monotonic() < deadline, f"the webhook sender's cursor stays at {cursor}, events reach {newest}"
        time.sleep(0.02)


def _run(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: the suite's browser tests leave an event loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _count_hand_offs(monkeypatch: pytest.MonkeyPatch, routes: Any = repo_routes) -> list[str]:
    """The calls ``routes`` hands to a worker thread from now on."""
    calls: list[str] = []
    real = routes.run_in_threadpool

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", "?"))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(routes, "run_in_threadpool", counted)
    return calls


def test_a_warm_call_is_answered_on_the_loop_from_the_cache(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, client, headers = hub_client
    hand_offs = _count_hand_offs(monkeypatch)
    first = client.get("/api/models/ann/m", headers=headers)  # a miss: built in a thread, kept
    second = client.get("/api/models/ann/m", headers=headers)
    assert len(hand_offs) == 1
    hits = info_answer.ANSWER_CACHE.hits
    for _ in range(3):
        again = client.get("/api/models/ann/m", headers=headers)
        assert again.content == second.content == first.content
    assert info_answer.ANSWER_CACHE.hits == hits + 3
    assert len(hand_offs) == 1  # no thread for a warm answer
    anonymous = client.get("/api/models/ann/m")
    assert anonymous.content == first.content  # a public repo's answer is the same for every reader

    # A changed row is a new key: the next call misses, builds in a thread and answers the new value.
    with hub.db.session() as session:
        session.execute(update(Repo).where(Repo.id_key == "ann/m").values(likes=7))
    changed = client.get("/api/models/ann/m", headers=headers)
    assert changed.json()["likes"] == 7 and len(hand_offs) == 2


def test_a_token_is_stamped_at_most_once_a_minute_through_the_long_way(
    hub_client: tuple[Hub, TestClient, dict[str, str]],
) -> None:
    hub, client, headers = hub_client
    client.get("/api/models/ann/m", headers=headers)
    stale = utcnow() - timedelta(minutes=5)
    with hub.db.session() as session:
        session.execute(update(Token).values(last_used_at=stale))
    assert client.get("/api/models/ann/m", headers=headers).status_code == 200
    with hub.db.session() as session:
        stamped = session.scalar(select(Token.last_used_at))
    assert stamped is not None and stamped > stale + timedelta(minutes=4)


def test_a_failed_read_on_the_loop_falls_back_to_the_long_way(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, client, headers = hub_client
    expected = client.get("/api/models/ann/m", headers=headers).content
    listing = client.get("/api/models", headers=headers).content

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise LoopReadFailed("disk I/O error")

    monkeypatch.setattr(hub.db, "read_now", broken)
    monkeypatch.setattr(hub.db, "change_stamp_now", broken)
    assert client.get("/api/models/ann/m", headers=headers).content == expected
    assert client.get("/api/models", headers=headers).content == listing
    assert client.get("/models").status_code == 200


def test_the_loop_connection_is_replaced_after_an_error(hub_client: tuple[Hub, TestClient, dict[str, str]]) -> None:
    hub, _client, _headers = hub_client
    good = select(Repo.pk).where(Repo.id_key == "ann/m")

    async def reads() -> None:
        assert await hub.db.read_now(good, {}) is not None
        first = await hub.db.change_stamp_now()
        assert await hub.db.change_stamp_now() == first  # nothing written in between
        with pytest.raises(LoopReadFailed):
            await hub.db.read_now(text("SELECT * FROM no_such_table"), {})
        assert await hub.db.read_now(good, {}) is not None  # a fresh connection
        assert await hub.db.change_stamp_now() != first  # a new connection's count: never equal to an old stamp

    _run(reads())


def test_a_kept_listing_is_served_on_the_loop_until_anything_changes(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, client, headers = hub_client
    _create_repo(hub, client, headers, "n")
    monkeypatch.setattr(search_routes, "DEFAULT_PAGE", 1)  # one repo a page: every answer has a next-page link
    hand_offs = _count_hand_offs(monkeypatch, search_routes)
    first = client.get("/api/models", params={"author": "ann"}, headers=headers)
    assert first.status_code == 200 and len(first.json()) == 1 and "127.0.0.1" not in first.headers["link"]
    for _ in range(3):
        again = client.get("/api/models", params={"author": "ann"}, headers=headers)
        assert again.content == first.content and again.headers["link"] == first.headers["link"]
    assert len(hand_offs) == 1  # kept: answered on the loop

    # Another Host is another next-page link: its own answer.
    other_host = client.get("/api/models", params={"author": "ann"}, headers={**headers, "host": "hub.example"})
    assert other_host.headers["link"].startswith("<http://hub.example/") and len(hand_offs) == 2

    # A write by any other connection (here: another engine on the same file, as another process) is a new stamp.
    other = Database(hub.settings.database_url)
    try:
        with other.session() as session:
            session.execute(update(Repo).where(Repo.id_key == "ann/m").values(likes=3))
    finally:
        other.engine.dispose()
    liked = client.get("/api/models", params={"author": "ann", "sort": "likes", "limit": "1"}, headers=headers)
    assert liked.json()[0]["id"] == "ann/m" and liked.json()[0]["likes"] == 3
    assert client.get("/api/models", params={"author": "ann"}, headers=headers).content == first.content
    assert len(hand_offs) == 4  # both asked afresh


def test_a_listing_kept_for_a_token_is_asked_afresh_after_a_minute(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hub, client, headers = hub_client
    hand_offs = _count_hand_offs(monkeypatch, search_routes)
    client.get("/api/models", headers=headers)
    client.get("/api/models")
    client.get("/api/models", headers=headers)
    client.get("/api/models")
    assert len(hand_offs) == 2
    clock = time.monotonic() + answers.KEEP_FOR_TOKEN_S + 1
    monkeypatch.setattr(answers.time, "monotonic", lambda: clock)
    client.get("/api/models", headers=headers)  # the token's answer: built again (the long way stamps its use)
    client.get("/api/models")  # anonymous: nothing to stamp, still kept
    assert len(hand_offs) == 3


@pytest.mark.parametrize(
    ("path", "keepable"),
    [("/", True), ("/models", True), ("/datasets", True), ("/spaces", True), ("/ann/m", True),
     ("/datasets/ann/d", True), ("/ann/m/tree/main", False), ("/spaces/ann/app", False), ("/settings/tokens", False),
     ("/admin/users", False), ("/api/models", False), ("/jobs/ann", False), ("/ann/m/", False), ("//m", False),
     ("/static/app.css", False), ("/organizations/new", False), ("/ann", False)],
)  # fmt: skip
def test_which_pages_are_kept(path: str, keepable: bool) -> None:
    assert kept_pages.keepable_path(path) is keepable


def test_an_anonymous_page_is_kept_until_anything_changes_or_it_is_ten_seconds_old(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, client, headers = hub_client
    hits = kept_pages.PAGES.hits
    first = client.get("/models")
    assert first.status_code == 200 and "ann/m" in first.text
    assert client.get("/models").text == first.text and kept_pages.PAGES.hits == hits + 1
    # Never for a signed-in browser or a token (their page names them), nor for htmx's fragment requests.
    client.get("/models", cookies={sessions.COOKIE: "whatever"})
    client.get("/models", headers=headers)
    client.get("/models", headers={"HX-Request": "true"})
    assert kept_pages.PAGES.hits == hits + 1

    # Any write, by any connection, renders the page afresh.
    _create_repo(hub, client, headers, "fresh")
    assert "ann/fresh" in client.get("/models").text
    assert kept_pages.PAGES.hits == hits + 1
    assert "ann/fresh" in client.get("/models").text and kept_pages.PAGES.hits == hits + 2

    # Ten seconds at most, since a page says how long ago things happened.
    clock = time.monotonic() + kept_pages.MAX_AGE_S + 1
    monkeypatch.setattr(kept_pages.time, "monotonic", lambda: clock)
    client.get("/models")
    assert kept_pages.PAGES.hits == hits + 3  # found, but too old: rendered again (and kept)
    client.get("/models")
    assert kept_pages.PAGES.hits == hits + 4
    assert client.get("/ann/m").status_code == 200 and client.get("/ann/nope").status_code == 404


def test_requests_missing_the_same_listing_at_once_build_it_once(
    hub_client: tuple[Hub, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, client, headers = hub_client
    app = client.app
    built: list[int] = []
    real = search_routes.list_route

    def slow_list_route(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        time.sleep(0.3)  # long enough for every other request to arrive while it builds
        return real(*args, **kwargs)

    monkeypatch.setattr(search_routes, "list_route", slow_list_route)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*(http.get("/api/models", params={"sort": "likes"}, headers=headers)
                                          for _ in range(8)))  # fmt: skip

    answers_ = _run(burst())
    assert {a.status_code for a in answers_} == {200} and len({a.content for a in answers_}) == 1
    assert len(built) == 1
