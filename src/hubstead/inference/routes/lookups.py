"""The repo behind an inference call, for this caller: a token, or the page widgets' session with its CSRF
header. Looked up through a short cache shared by the calls that miss together.

HTTP-side: it reads the request's credentials (``api.deps``) and keeps its cache on the app's state.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import bearer_token, caller_fingerprint, get_caller, get_hub, get_principal
from hubstead.auth.service import Principal
from hubstead.errors import HubError
from hubstead.inference.service import RepoRef


def principal(request: Request, session: Any) -> Principal:
    """A token, or the browser's session for the page widgets (which send the CSRF header)."""
    return get_caller(request, session, browser="session+csrf")


def _lookup(request: Request, repo_id: str) -> RepoRef:
    from hubstead.inference.adapters import adapter_source, readable_base
    from hubstead.repos.service import get_readable_repo, require_file_content_access

    hub = get_hub(request)
    with hub.db.session() as session:
        caller = principal(request, session)
        repo = get_readable_repo(session, caller, repo_type="model", repo_id=repo_id)
        require_file_content_access(session, repo, caller)
        source = adapter_source(hub.settings.repos_dir, repo)
        if source is None:
            return RepoRef(
                pk=repo.pk, repo_id=repo.repo_id, storage_key=repo.storage_key, sha=repo.sha,
                pipeline_tag=repo.pipeline_tag,
            )
        base = readable_base(session, caller, repo, source)  # a PEFT adapter: served on its base
        return RepoRef(
            pk=repo.pk, repo_id=repo.repo_id, storage_key=repo.storage_key, sha=repo.sha,
            pipeline_tag=repo.pipeline_tag or base.pipeline_tag,
            base=RepoRef(
                pk=base.pk, repo_id=base.repo_id, storage_key=base.storage_key, sha=base.sha,
                pipeline_tag=base.pipeline_tag,
            ),
            base_revision=source.revision,
        )


LOOKUP_TTL_SECONDS = 2.0


async def lookup(request: Request, repo_id: str) -> RepoRef:
    """The repo for this caller, from a 2-second cache: a busy model's calls then skip the database
    (at hundreds of calls a second that work would take a CPU core from the model). A new commit or a
    changed permission is seen within the TTL. Concurrent misses for the same key share one lookup:
    when the entry expires under 32 busy clients, the database is asked once, not 32 times."""
    found: RepoRef = await _shared_lookup(request, repo_id.lower(), functools.partial(_lookup, request, repo_id))
    return found


async def check_credentials(request: Request) -> None:
    """Refuse an unknown token (401, or 429 past the failure budget) before the body is read: the ``/v1``
    calls name their model only in the body. Shares ``lookup``'s cache, so a busy client costs nothing."""
    if bearer_token(request) is not None:
        await _shared_lookup(request, "\0credentials", functools.partial(_check_token, request))


def _check_token(request: Request) -> bool:
    with get_hub(request).db.session() as session:
        get_principal(request, session)
    return True


async def _shared_lookup(request: Request, name: str, work: Callable[[], Any]) -> Any:
    state = request.app.state
    cache: dict[tuple[str, str], tuple[float, Any]] = state.inference_lookups
    key = (caller_fingerprint(request), name)
    hit = cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    pending: dict[tuple[str, str], asyncio.Future[Any]] = state.inference_lookups_pending
    running = pending.get(key)
    if running is None:
        running = asyncio.ensure_future(run_in_threadpool(work))
        pending[key] = running

        def remember(done: asyncio.Future[Any]) -> None:
            pending.pop(key, None)
            if done.cancelled() or done.exception() is not None:  # retrieved: errors are never cached
                return
            if len(cache) > 10_000:
                cache.clear()
            cache[key] = (time.monotonic() + LOOKUP_TTL_SECONDS, done.result())

        running.add_done_callback(remember)
    # shielded: a caller that leaves does not cancel the lookup the others wait on
    return await asyncio.shield(running)


def readable_ids(request: Request, repo_ids: list[str]) -> set[str]:
    """Which of ``repo_ids`` this caller may call (uncached: for status and metrics)."""
    out = set()
    for repo_id in repo_ids:
        try:
            _lookup(request, repo_id)
            out.add(repo_id)
        except HubError:
            continue
    return out
