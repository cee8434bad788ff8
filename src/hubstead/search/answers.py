"""Listing answers (``list_models`` and its kin) kept under the database's change stamp.

A listing depends on many repos' rows, so no one repo's head can key it. It depends on nothing but the database (the
index rows, the caller's token, user and memberships) and the request (its query, credentials and the base URL its
``Link`` header names). ``Database.change_stamp_now`` (SQLite's ``data_version``, PostgreSQL's current snapshot)
changes whenever any process commits anything, so an answer kept under (stamp, request) can only be served while
nothing at all has changed since it was built: never stale, whoever wrote, wherever.

The cost of that rule: any write anywhere (a commit, a like, a download counted, a lease renewed) starts every kept
listing afresh, so the cache pays where reads outnumber writes between two writes, which is where it is needed: many
clients listing the same pages. An answer built while a write landed is kept under the stamp read before it was
built, which the next request no longer reads: it is never served.

A token sent with the request is checked by the long way when the answer is built; while the stamp holds, the token,
its user and their memberships are unchanged, so the answer stands for the same credentials. The long way also
stamps the token's use once a minute: an answer given to a token is kept for a minute at most, so the stamp lags
real use by two minutes at most.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

from starlette.requests import Request

from hubstead.repos.cache import ByteLRU, OneBuildAtATime, base_parts

KEEP_FOR_TOKEN_S = 60.0

LISTINGS = ByteLRU(max_bytes=32 * 1024 * 1024, max_entries=2_000)
BUILDS = OneBuildAtATime()  # a listing being built: the requests asking for it meanwhile wait for it


@dataclass(frozen=True, slots=True)
class KeptListing:
    body: bytes
    link: str | None  # the next page's ``Link`` header, if any
    caller: str | None  # the caller's name, for the access line
    made_at: float  # time.monotonic()
    with_token: bool

    def fresh(self) -> bool:
        return not self.with_token or time.monotonic() - self.made_at < KEEP_FOR_TOKEN_S


def listing_key(stamp: Hashable, request: Request, plural: str) -> tuple[Hashable, ...]:
    """Everything the answer depends on besides the database: which listing, its query, the credentials, and the
    base URL (scheme, host, root path) that a next-page link is made of."""
    return (stamp, plural, request.headers.get("authorization"), *base_parts(request.scope))


def kept(key: tuple[Hashable, ...]) -> KeptListing | None:
    found: KeptListing | None = LISTINGS.get(key)
    return found if found is not None and found.fresh() else None


def keep(
    key: tuple[Hashable, ...], *, body: bytes, link: str | None, caller: str | None, with_token: bool
) -> KeptListing:
    entry = KeptListing(body=body, link=link, caller=caller, made_at=time.monotonic(), with_token=with_token)
    LISTINGS.put(key, entry, size=len(body) + len(link or "") + sum(len(str(part)) for part in key))
    return entry
