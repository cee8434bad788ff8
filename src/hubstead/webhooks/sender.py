"""The background sender: reads the repo event outbox, makes deliveries, POSTs them, retries with backoff.

One thread (started by the app's lifespan) wakes every ``POLL_INTERVAL`` seconds and does two things:

1. **Fan out.** It reads ``repo_events`` after its cursor and adds a pending ``webhook_deliveries`` row for
   every enabled hook that watches the event (``service.watches``) and whose owner may see it
   (``service.may_see``), then moves the cursor. Ids commit out of order on PostgreSQL (two transactions take
   ids 7 and 8, 8 commits first), so the cursor stops before a missing id until it has been missing for
   ``GAP_GRACE`` seconds (a transaction that rolled back leaves a hole for good); events after the hole are
   fanned out meanwhile, and the unique (hook, event) pair keeps a second pass from doubling them.
2. **Send.** It claims due deliveries, at most ``WORKERS`` in flight, by moving ``next_attempt_at`` forward
   with a conditional UPDATE (a lease), and hands each to a worker thread. The worker checks again that the
   hook is enabled and its owner may still see the event, checks the URL again (``urls.check_url``: the name is
   resolved and checked now, and the connection goes to the checked address; no redirects, no proxies from the
   environment), and POSTs the payload with ``X-Webhook-Secret``. A 2xx is delivered; anything else is tried
   again after ``retry_delay`` x 1, 4, 16, 60, 60... seconds, up to ``webhooks_max_attempts`` tries, then failed.

Nothing here runs on a request's path: a commit only wrote its outbox row. Each hook keeps its newest
``KEEP_PER_HOOK`` finished deliveries (the log a person reads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubstead import __version__
from hubstead.auth.models import User
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import HubError
from hubstead.repos.events import RepoEvent
from hubstead.webhooks.models import Webhook, WebhookCursor, WebhookDelivery
from hubstead.webhooks.payloads import build_payload
from hubstead.webhooks.service import may_see, watches
from hubstead.webhooks.urls import check_url

log = logging.getLogger("hubstead.webhooks")

POLL_INTERVAL = 0.5
WORKERS = 8
BATCH = 500
GAP_GRACE = 10.0
KEEP_PER_HOOK = 100
SNIPPET = 500


def retry_delay(settings_delay: float, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed try: 1, 4, 16, 60, 60... times the first delay."""
    return settings_delay * min(4 ** (attempts - 1), 60)


class WebhookSender:
    """The sender thread and its workers (see the module's docstring)."""

    def __init__(self, hub: Hub, *, poll_interval: float = POLL_INTERVAL, workers: int = WORKERS) -> None:
        self.hub = hub
        self.poll_interval = poll_interval
        self.workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: set[Future[None]] = set()
        self._fanned: set[int] = set()  # events past the cursor already fanned out by this process
        self._gaps: dict[int, float] = {}  # a missing event id -> when this process first saw it missing

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="hubstead-webhook")
        self._thread = threading.Thread(target=self._loop, name="hubstead-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._pool is not None:
            # A delivery in flight is left to its timeout; its lease lets the next start try it again.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.fan_out()
                self.dispatch()
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("webhook sender tick failed")
            self._stop.wait(self.poll_interval)

    # --- 1. fan out -----------------------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Make deliveries for the events after the cursor; returns how many deliveries were made."""
        made = 0
        with self.hub.db.session() as session:
            cursor = session.get(WebhookCursor, 1)
            if cursor is None:
                cursor = _create_cursor(session)
            start = cursor.last_event_id
            events = list(
                session.scalars(select(RepoEvent).where(RepoEvent.id > start).order_by(RepoEvent.id).limit(BATCH))
            )
            if not events:
                return 0
            hooks = list(session.scalars(select(Webhook).where(Webhook.disabled.is_(False))))
            owner_ids = {h.owner_user_id for h in hooks}
            owners = {u.id: u for u in session.scalars(select(User).where(User.id.in_(owner_ids)))}
            fresh = [e for e in events if e.id not in self._fanned]
            existing = set(
                session.execute(
                    select(WebhookDelivery.webhook_pk, WebhookDelivery.event_id).where(
                        WebhookDelivery.event_id.in_([e.id for e in fresh])
                    )
                ).tuples()
            ) if fresh else set()
            now = utcnow()
            for event in fresh:
                for hook in hooks:
                    owner = owners.get(hook.owner_user_id)
                    if owner is None or (hook.pk, event.id) in existing or event.created_at < hook.created_at:
                        continue
                    if watches(hook, event) and may_see(session, owner, event):
                        session.add(WebhookDelivery(webhook_pk=hook.pk, event_id=event.id, status="pending",
                                                    attempts=0, next_attempt_at=now))  # fmt: skip
                        made += 1
            new_cursor = self._contiguous(start, [e.id for e in events])
            try:
                session.flush()
            except IntegrityError:  # another process fanned the same events out first
                session.rollback()
                return 0
            moved = session.execute(
                update(WebhookCursor)
                .where(WebhookCursor.id == 1, WebhookCursor.last_event_id == start)
                .values(last_event_id=new_cursor)
            )
            if getattr(moved, "rowcount", 1) != 1:  # another sender moved it: its deliveries stand, drop ours
                session.rollback()
                return 0
        self._fanned.update(e.id for e in fresh)
        self._fanned = {i for i in self._fanned if i > new_cursor}
        return made

    def _contiguous(self, start: int, ids: list[int]) -> int:
        """The highest id up to which no id is missing (or missing for longer than ``GAP_GRACE``)."""
        now = time.monotonic()
        cursor = start
        for event_id in ids:
            while cursor + 1 < event_id:  # cursor + 1 is missing
                seen = self._gaps.setdefault(cursor + 1, now)
                if now - seen < GAP_GRACE:
                    return cursor
                self._gaps.pop(cursor + 1, None)
                cursor += 1
            cursor = event_id
        return cursor

    # --- 2. send --------------------------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Claim due deliveries (up to the free workers) and start them; returns how many started."""
        self._in_flight = {f for f in self._in_flight if not f.done()}
        free = self.workers - len(self._in_flight)
        if free <= 0 or self._pool is None:
            return 0
        settings = self.hub.settings
        claimed: list[int] = []
        with self.hub.db.session() as session:
            now = utcnow()
            due = session.execute(
                select(WebhookDelivery.pk, WebhookDelivery.next_attempt_at)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(free)
            ).all()
            lease = now + timedelta(seconds=settings.webhooks_timeout * 2 + 30)
            for pk, when in due:
                result = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.pk == pk, WebhookDelivery.status == "pending",
                           WebhookDelivery.next_attempt_at == when)
                    .values(next_attempt_at=lease)
                )  # fmt: skip
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append(pk)
        for pk in claimed:
            self._in_flight.add(self._pool.submit(self.attempt, pk))
        return len(claimed)

    def attempt(self, delivery_pk: int) -> None:
        """One try of one delivery (a claimed one), and its outcome recorded."""
        try:
            prepared = self._prepare(delivery_pk)
            if prepared is None:
                return
            url, secret, body = prepared
            status, error, snippet = self._post(url, secret, body)
        except Exception as exc:  # noqa: BLE001 - recorded as the attempt's error
            log.exception("webhook delivery %s failed", delivery_pk)
            status, error, snippet = None, f"Internal error: {type(exc).__name__}", None
        self._record(delivery_pk, status, error, snippet)

    def _prepare(self, delivery_pk: int) -> tuple[str, str | None, bytes] | None:
        with self.hub.db.session() as session:
            delivery = session.get(WebhookDelivery, delivery_pk)
            if delivery is None or delivery.status != "pending":
                return None
            hook = session.get(Webhook, delivery.webhook_pk)
            event = session.get(RepoEvent, delivery.event_id)
            owner = session.get(User, hook.owner_user_id) if hook is not None else None
            why = None
            if hook is None or owner is None:
                return None
            if hook.disabled:
                why = "Not sent: the webhook was disabled"
            elif event is None:
                why = "Not sent: the event is no longer kept"
            elif not may_see(session, owner, event):
                why = "Not sent: the webhook's owner can no longer read this repo"
            if why is not None or event is None:
                _finish(session, delivery, "failed", error=why)
                return None
            body = json.dumps(build_payload(session, event, hook, self.hub.settings.external_url)).encode()
            return hook.url, hook.secret, body

    def _post(self, url: str, secret: str | None, body: bytes) -> tuple[int | None, str | None, str | None]:
        """POST ``body`` to ``url`` (checked again now, connected to the checked address)."""
        settings = self.hub.settings
        try:
            target = check_url(url, allow_private=settings.webhooks_allow_private)
        except HubError as exc:
            return None, exc.message, None
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": f"hubstead-webhooks/{__version__}",
        }
        if secret:
            headers["X-Webhook-Secret"] = secret
        deadline = time.monotonic() + settings.webhooks_timeout
        try:
            with httpx.Client(timeout=settings.webhooks_timeout, follow_redirects=False, trust_env=False) as client:
                with client.stream("POST", target.connect_url, content=body, headers=headers,
                                   extensions={"sni_hostname": target.host}) as response:  # fmt: skip
                    received = b""
                    for chunk in response.iter_bytes():
                        received += chunk
                        if len(received) >= SNIPPET or time.monotonic() > deadline:
                            break
                    snippet = received[:SNIPPET].decode("utf-8", "replace")
                    if 200 <= response.status_code < 300:
                        return response.status_code, None, snippet
                    return response.status_code, f"The receiver answered HTTP {response.status_code}", snippet
        except httpx.TimeoutException:
            return None, f"No answer within {settings.webhooks_timeout:g} s", None
        except httpx.HTTPError as exc:
            return None, f"Could not reach the receiver: {type(exc).__name__}: {exc}"[:SNIPPET], None

    def _record(self, delivery_pk: int, status: int | None, error: str | None, snippet: str | None) -> None:
        settings = self.hub.settings
        with self.hub.db.session() as session:
            delivery = session.get(WebhookDelivery, delivery_pk)
            if delivery is None:
                return
            delivery.attempts += 1
            delivery.last_status = status
            delivery.response_snippet = snippet
            if status is not None and 200 <= status < 300:
                _finish(session, delivery, "delivered", error=None)
            elif delivery.attempts >= settings.webhooks_max_attempts:
                _finish(session, delivery, "failed", error=error)
            else:
                delivery.last_error = (error or "")[:SNIPPET] or None
                delivery.updated_at = utcnow()
                delay = retry_delay(settings.webhooks_retry_delay, delivery.attempts)
                delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)


def _create_cursor(session: Session) -> WebhookCursor:
    """The cursor row, made on the first tick: it starts at the newest event (a new hub sends no history)."""
    newest = session.scalar(select(RepoEvent.id).order_by(RepoEvent.id.desc()).limit(1)) or 0
    try:
        with session.begin_nested():
            session.add(WebhookCursor(id=1, last_event_id=newest))
    except IntegrityError:
        pass
    cursor = session.get(WebhookCursor, 1)
    assert cursor is not None
    return cursor


def _finish(session: Session, delivery: WebhookDelivery, status: str, *, error: str | None) -> None:
    """Mark a delivery delivered or failed, and keep only the hook's newest ``KEEP_PER_HOOK`` finished ones."""
    delivery.status = status
    delivery.last_error = (error or "")[:SNIPPET] or None
    delivery.next_attempt_at = None
    delivery.updated_at = utcnow()
    session.flush()
    oldest_kept = session.scalar(
        select(WebhookDelivery.pk)
        .where(WebhookDelivery.webhook_pk == delivery.webhook_pk)
        .order_by(WebhookDelivery.pk.desc())
        .offset(KEEP_PER_HOOK - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.webhook_pk == delivery.webhook_pk,
                WebhookDelivery.pk < oldest_kept,
                WebhookDelivery.status != "pending",
            )
        )

