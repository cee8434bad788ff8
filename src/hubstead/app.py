"""Builds the ASGI application: mounts each domain's routes and maps domain errors to Hub-shaped answers."""

from __future__ import annotations

import inspect
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubstead import __version__
from hubstead.api.bodies import BodyTooLargeError, body_limit, bounded_receive, declared_too_large
from hubstead.api.deps import web_session
from hubstead.api.direct import DirectRoute, route_path, route_template
from hubstead.api.openapi import complete_schema
from hubstead.auth.throttle import Throttle
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.coordination import leases
from hubstead.coordination import locks as coordination_locks
from hubstead.db import DATABASE_ERRORS, RETRY_AFTER_SECONDS, database_unavailable
from hubstead.errors import DatabaseUnavailableError, HubError, error_header_value
from hubstead.ops.logs import access_send
from hubstead.repos.stats import refresh_rollups

log = logging.getLogger("hubstead")


_TITLES = {400: "That request did not make sense", 401: "Please sign in", 403: "You can't do that here",
           404: "This page does not exist (or you don't have access to it)", 409: "That already exists",
           422: "That request did not make sense",
           500: "Something went wrong on our side"}  # fmt: skip


def error_response(
    request: Request, status: int, message: str, code: str | None = None, extra: dict[str, str] | None = None
) -> Response:
    """The Hub's error shape: ``X-Error-Code`` and ``X-Error-Message`` headers (HEAD has no body) and
    ``{"error": message}``; on web pages, a page a person understands, with a way back."""
    if getattr(request.state, "page", False) and request.method != "HEAD":
        from hubstead.web.pages import Viewer, render
        with request.app.state.hub.db.session() as session:
            viewer = Viewer(web=web_session(request, session))
        return render(request, "error.html", viewer, status_code=status, status=status,
                      title=_TITLES.get(status, "Error"), message=message)  # fmt: skip
    headers = {"X-Error-Message": error_header_value(message)}
    if code:
        headers["X-Error-Code"] = code
    headers.update(extra or {})
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


REQUEST_ID_KEY = "hubstead.request_id"
# Which process answered (``X-Hubstead-Process: {role}-{pid}``): several serve one hub (``hubstead serve --workers``).
_process_label = f"all-{os.getpid()}".encode()
_REQUEST_ID_HEADERS = (b"x-request-id", b"x-amzn-trace-id")  # in this order, as the client reads them back


def with_request_id(scope: Scope, send: Send) -> Send:
    """``send`` that gives the answer an ``X-Request-Id``, which the client appends to its error messages: the
    caller's ``X-Request-Id``, else the ``X-Amzn-Trace-Id`` that ``huggingface_hub`` sends with every request (as
    the Hub does), else a new one. The id is kept in the scope (``REQUEST_ID_KEY``) for the handlers that answer
    outside this wrapper (an unexpected error) and for the log."""
    sent = {name: value for name, value in scope.get("headers", []) if name in _REQUEST_ID_HEADERS}
    request_id = next((sent[name][:200] for name in _REQUEST_ID_HEADERS if sent.get(name)), None)
    request_id = request_id or os.urandom(16).hex().encode()
    scope[REQUEST_ID_KEY] = request_id.decode("latin-1")

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers = [*headers, (b"x-request-id", request_id)]
            message["headers"] = [*headers, (b"x-hubstead-process", _process_label)]
        await send(message)

    return send_with_id


class RequestIdMiddleware:
    """Give every answer an ``X-Request-Id`` (see ``with_request_id``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_request_id(scope, send))


def _bearer_sent(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope.get("headers", []))


def _check_token(hub: Hub, request: Request) -> None:
    """Raise what ``get_principal`` raises for the request's token (401 unknown, 429 past the budget)."""
    from hubstead.api.deps import get_principal

    with hub.db.session() as session:
        get_principal(request, session)


class DirectRoutes:
    """The innermost middleware: a request for one of ``HubApp.direct_route``'s routes is answered by its handler
    here, past every other middleware (request id, metrics, access log, the spaces domain's rewrite) but without
    FastAPI's routing, which matches a path against every route in turn (on ``model_info``, 43% of the request's
    CPU in the event loop: ``/work/prof``-style in-process profile, 1,000 repos)."""

    def __init__(self, app: ASGIApp, hub_app: HubApp) -> None:
        self.app, self.hub_app = app, hub_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct_route = self.hub_app.direct_route
        if scope["type"] == "http" and direct_route is not None:
            found = direct_route(scope["method"], route_path(scope))
            if found is not None:
                await self.hub_app.call_direct(found, scope, receive, send)
                return
        await self.app(scope, receive, send)


class HubApp(FastAPI):
    """FastAPI, plus a direct path for the few routes that clients call hundreds of times a second.

    ``direct_route(method, path)`` names the handler for such a call (``model_info`` and its kin, a space app's
    requests, the inference task and embedding routes). ``DirectRoutes``, the innermost middleware, then runs
    it without FastAPI's routing and per-request wrappers (every middleware still sees the request). It gets the
    same Request, and its errors are answered by the app's own exception handlers. At 900 embedding calls a
    second on two cores, FastAPI's stack was a third of the hub's CPU per call (0.32 -> 0.21 ms), measured with
    ``benchmarks/bench_inference.py``. The routes stay registered with FastAPI as well, for the OpenAPI schema
    and for anything that routes through it.
    """

    direct_route: Callable[[str, str], DirectRoute | None] | None = None
    hop: Any = None  # coordination.forward.Hop: to the compute process (API role), or its check (compute role)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema, with every route's path parameters declared (``api.openapi.complete_schema``)."""
        cached = self.openapi_schema
        with warnings.catch_warnings():  # duplicate operation ids: complete_schema makes them unique
            warnings.filterwarnings("ignore", message="Duplicate Operation ID")
            schema = super().openapi()
        return schema if schema is cached else complete_schema(schema, self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.hop is not None and await self.hop(scope, receive, send,
                                                                                         scope["path"]):
                return
            await super().__call__(scope, receive, send)
            return
        send = access_send(scope, send)  # the request's access line (ops.logs), whichever path answers it
        path = route_path(scope)
        hub = getattr(self.state, "hub", None)
        if hub is not None:  # every route's body limit (api.bodies), on both paths below
            limit, advice = body_limit(hub.settings, scope["method"], path)
            if declared_too_large(scope.get("headers", []), limit):
                assert limit is not None
                scope["app"] = self
                response = await self._handle_error(Request(scope), BodyTooLargeError(limit, advice))
                await response(scope, receive, with_request_id(scope, send))
                return
            receive = bounded_receive(receive, limit, advice)
        if hub is not None and self.hop is not None and self.hop.forwards(scope, path) and _bearer_sent(scope):
            # An unknown token is refused here, before the body is read and sent on (as the routes themselves
            # refuse it in a single process: api.deps.get_principal, the throttle's budget included).
            scope["app"] = self
            request = Request(scope)
            try:
                await run_in_threadpool(_check_token, hub, request)
            except Exception as exc:  # noqa: BLE001 - answered by the app's own exception handlers
                response = await self._handle_error(request, exc)
                await response(scope, receive, with_request_id(scope, send))
                return
        if self.hop is not None and await self.hop(scope, receive, send, path):
            return
        await super().__call__(scope, receive, send)

    async def call_direct(self, found: DirectRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with a direct route's handler (``DirectRoutes``); its errors go to the app's exception handlers."""
        handler, params = found
        scope["app"] = self
        scope["path_params"] = params
        scope["route"] = route_template(handler)
        request = Request(scope, receive, send)
        try:
            response = await handler(request, **params)
        except Exception as exc:  # noqa: BLE001 - answered by the app's own exception handlers
            response = await self._handle_error(request, exc)
        await response(scope, receive, send)

    async def _handle_error(self, request: Request, exc: Exception) -> Response:
        """The answer the exception handlers registered with ``exception_handler`` give (nearest class first)."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                answer = handler(request, exc)
                return cast(Response, await answer if inspect.isawaitable(answer) else answer)
        raise exc


def _refresh_once(hub: Hub) -> None:
    with hub.db.session() as session:
        refresh_rollups(session)


def startup_once(hub: Hub) -> None:
    """The start-up work a deployment does once, before it serves (not once per API process): temporary files
    a crashed writer left, half-done merges, index rows behind their git head, the evaluation index's first
    fill, the rollups, and the dataset viewer's missing conversions."""
    from hubstead.discussions.pulls import reconcile_pending_merges
    from hubstead.evals.index import backfill_once
    from hubstead.repos.index import reconcile_all
    from hubstead.storage.leftovers import remove_crash_leftovers
    from hubstead.viewer.jobs import queue_missing_conversions

    if removed := remove_crash_leftovers(hub.settings, xet_tmp_dir=hub.xorbs.tmp):
        log.warning("removed %d temporary files a crashed writer left behind", removed)
    if settled := reconcile_pending_merges(hub):
        log.warning("settled %d pull request merges a stopped process left half-done", settled)
    refreshed = reconcile_all(hub)
    if refreshed:
        log.warning("re-indexed %d repos whose index lagged their git head", refreshed)
    if backfilled := backfill_once(hub):
        log.warning("indexed the evaluation results and benchmarks of %d repos (first start with evaluation)",
                    backfilled)
    _refresh_once(hub)
    queued = queue_missing_conversions(hub)
    if queued:
        log.warning("queued the dataset viewer's conversion for %d datasets", queued)


class ServiceHost:
    """The stateful services one deployment runs once: the job scheduler (``JobRunner``), the webhook sender, the
    space supervisor, the Jobs API executor and the rollup refresher (docs/ARCHITECTURE.md, "Processes").

    Not ``elected`` (``--role all`` with one process): they start with the app and stop with it, as in a
    single-process hub. ``elected`` (``--role compute``): a thread competes for the ``compute`` lease
    (``coordination.leases``), publishing ``address`` (where this process answers); holding it, the services
    start (each start recovers what a dead holder left running); when a renewal fails, they stop and the thread
    competes again. ``state`` (the app's) gets the running services as ``jobs``, ``webhooks``, ``spaces`` and
    ``compute`` (None while this process does not run them).
    """

    def __init__(
        self, hub: Hub, state: Any, *, elected: bool, address: str = "", ttl: float = 10.0, renew_every: float = 3.0
    ) -> None:
        self.hub, self.state, self.elected, self.address = hub, state, elected, address
        self.ttl, self.renew_every = ttl, renew_every
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: list[Any] = []
        self._rollups: threading.Thread | None = None
        self._rollups_stop = threading.Event()
        self.holding = False
        self._publish(None)
        if not elected:
            self._publish(self._build())

    def _build(self) -> dict[str, Any]:
        from hubstead.compute.executor import ComputeExecutor
        from hubstead.jobs.service import JobRunner
        from hubstead.webhooks.sender import WebhookSender

        settings = self.hub.settings
        spaces = None
        if settings.spaces_enabled:
            from hubstead.spaces.supervisor import SpaceSupervisor

            spaces = SpaceSupervisor(self.hub)
        compute = ComputeExecutor(self.hub) if settings.compute_enabled else None
        return {"jobs": JobRunner(self.hub, workers=settings.job_workers), "webhooks": WebhookSender(self.hub),
                "spaces": spaces, "compute": compute}  # fmt: skip

    def _publish(self, services: dict[str, Any] | None) -> None:
        for name in ("jobs", "webhooks", "spaces", "compute"):
            setattr(self.state, name, (services or {}).get(name))

    def start(self) -> None:
        """Start the services now (not elected), or the thread that competes for the lease (elected)."""
        if not self.elected:
            self._start_services()
            return
        self._thread = threading.Thread(target=self._compete, name="hubstead-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._stop_services()
        if self.elected and self.holding:
            try:
                leases.release(self.hub.db, leases.COMPUTE, self.holder)
            except Exception:  # noqa: BLE001 - it expires by itself
                log.exception("releasing the compute lease failed")
            self.holding = False

    def _start_services(self) -> None:
        with self._lock:
            if self._running:
                return
            if self.elected:
                self._publish(self._build())
            started = [self.state.jobs, self.state.webhooks, self.state.spaces, self.state.compute]
            for service in started:
                if service is not None:
                    service.start()
            self._running = [service for service in started if service is not None]
            self._rollups_stop = threading.Event()
            self._rollups = threading.Thread(target=self._refresh_rollups, args=(self._rollups_stop,),
                                             name="hubstead-rollups", daemon=True)  # fmt: skip
            self._rollups.start()

    def _stop_services(self) -> None:
        with self._lock:
            self._rollups_stop.set()
            for service in reversed(self._running):  # compute, spaces, webhooks, jobs: the start's reverse
                service.stop()
            self._running = []
            if self.elected:
                self._publish(None)

    def _refresh_rollups(self, stop: threading.Event) -> None:
        """Keep trending and 30-day downloads true as days leave their windows."""
        while not stop.wait(self.hub.settings.rollup_interval_seconds):
            try:
                _refresh_once(self.hub)
            except Exception:  # noqa: BLE001 - a failed refresh is retried at the next tick
                log.exception("refreshing download and trending rollups failed")

    def _compete(self) -> None:
        held_until = 0.0
        while not self._stop.is_set():
            try:
                if self.holding:
                    self.holding = leases.renew(self.hub.db, leases.COMPUTE, self.holder, self.ttl)
                    if not self.holding:
                        log.warning("lost the compute lease: stopping the job scheduler, spaces and webhooks")
                        self._stop_services()
                else:
                    self.holding = leases.try_acquire(self.hub.db, leases.COMPUTE, self.holder, self.address, self.ttl)
                    if self.holding:
                        log.info("holding the compute lease (%s): starting the stateful services", self.address)
                        self._start_services()
                if self.holding:
                    held_until = time.monotonic() + self.ttl
            except Exception:  # noqa: BLE001 - the database may be back at the next try
                log.exception("the compute lease could not be renewed or acquired")
                if self.holding and time.monotonic() >= held_until - self.renew_every:
                    self.holding = False  # it may expire before the database answers again: another takes over
                    self._stop_services()
            self._stop.wait(self.renew_every)


def create_app(settings: Settings, hub: Hub | None = None, *, startup: bool = True, address: str = "") -> HubApp:
    """The Hubstead ASGI app for ``settings`` (migrations run when the hub is built here), for the process's
    ``settings.role``. ``startup``: do the deployment's one-time start-up work (``startup_once``) here; the
    ``serve`` command that starts several processes does it once itself. ``address``: where a compute process
    answers (published in its lease)."""
    from hubstead.auth.routes import router as auth_router
    from hubstead.auth.routes_users import router as users_router
    from hubstead.buckets.routes import router as buckets_router
    from hubstead.collections.routes import router as collections_router
    from hubstead.compute.routes import router as compute_router
    from hubstead.discussions.routes import router as discussions_router
    from hubstead.discussions.routes_attachments import router as attachments_router
    from hubstead.evals.routes import router as evals_router
    from hubstead.evals.routes_runs import router as eval_runs_router
    from hubstead.inference.routes import direct_inference_route
    from hubstead.inference.routes import router as inference_router
    from hubstead.repos.routes.access_requests import router as access_requests_router
    from hubstead.repos.routes.commits import router as commits_router
    from hubstead.repos.routes.duplicate import router as duplicate_router
    from hubstead.repos.routes.files import router as files_router
    from hubstead.repos.routes.git import router as git_router
    from hubstead.repos.routes.lfs import router as lfs_router
    from hubstead.repos.routes.lfs_files import router as lfs_files_router
    from hubstead.repos.routes.quotas import router as quotas_router
    from hubstead.repos.routes.refs import router as refs_router
    from hubstead.repos.routes.repos import direct_repo_route, unqualified_router
    from hubstead.repos.routes.repos import router as repos_router
    from hubstead.repos.routes.unbuilt import router as unbuilt_router
    from hubstead.search.routes import direct_list_route
    from hubstead.search.routes import router as search_router
    from hubstead.search.routes_tags import router as tags_router
    from hubstead.spaces.routes import router as spaces_router
    from hubstead.spaces.routes_app import SpacesDomainMiddleware, direct_space_route
    from hubstead.spaces.routes_app import router as space_apps_router
    from hubstead.train.routes import router as train_router
    from hubstead.viewer.routes import router as viewer_router
    from hubstead.web.render import highlight_css
    from hubstead.web.routes_account import router as account_router
    from hubstead.web.routes_board_pages import router as board_pages_router
    from hubstead.web.routes_browse import router as browse_router
    from hubstead.web.routes_collections import router as collection_pages_router
    from hubstead.web.routes_community import router as community_router
    from hubstead.web.routes_eval_pages import router as eval_pages_router
    from hubstead.web.routes_job_pages import router as job_pages_router
    from hubstead.web.routes_manage import router as manage_router
    from hubstead.web.routes_quota_pages import router as quota_pages_router
    from hubstead.web.routes_repo import router as repo_pages_router
    from hubstead.web.routes_search import router as search_pages_router
    from hubstead.web.routes_setup import router as setup_router
    from hubstead.web.routes_space_pages import router as space_pages_router
    from hubstead.web.routes_train_pages import router as train_pages_router
    from hubstead.web.routes_webhooks import router as webhook_pages_router
    from hubstead.webhooks.routes import router as webhooks_router
    from hubstead.wiring import attach_hub, connect_domains
    from hubstead.xet.routes import router as xet_router

    connect_domains()
    hub = hub or Hub.from_settings(settings)
    attach_hub(hub)
    coordination_locks.configure(settings.database_url, settings.repos_dir)
    role = settings.role
    global _process_label
    _process_label = f"{role}-{os.getpid()}".encode()
    if startup:
        startup_once(hub)

    inference = None
    if settings.inference_enabled and role != "api":
        from hubstead.inference.service import InferenceService

        inference = InferenceService(hub)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            await run_in_threadpool(services.start)
        try:
            yield
        finally:
            if services is not None:
                await run_in_threadpool(services.stop)
            if getattr(app.state, "space_proxy", None) is not None:
                await app.state.space_proxy.aclose()
            if inference is not None:
                await inference.close()
            if app.hop is not None:
                await app.hop.aclose()
            await hub.db.close_loop_connections()

    app = HubApp(
        title="Hubstead",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.inference = inference
    # What the model pages' inference widget reads (which task and runtime a model is served with: configuration,
    # no workers). An API process forwards the calls themselves to the compute process; it builds the service for
    # this only and never starts a worker in it.
    if inference is None and settings.inference_enabled:
        from hubstead.inference.service import InferenceService

        app.state.inference_settings = InferenceService(hub)
    else:
        app.state.inference_settings = inference
    app.direct_route = lambda method, path: (
        direct_repo_route(method, path)
        or direct_list_route(method, path)
        or direct_space_route(method, path)
        or direct_inference_route(method, path)
    )
    app.state.inference_lookups = {}
    app.state.inference_lookups_pending = {}
    # The stateful services (app.state.jobs, webhooks, spaces, compute): none in an API process; in a compute
    # process while it holds the lease; always in a single-process hub.
    ttl = float(os.environ.get("HUBSTEAD_COMPUTE_LEASE_TTL", "10"))  # a dead holder's services move this soon
    services = None if role == "api" else ServiceHost(hub, app.state, elected=role == "compute", address=address,
                                                      ttl=ttl, renew_every=ttl / 3)  # fmt: skip
    app.state.services = services
    if services is None:
        app.state.jobs = app.state.webhooks = app.state.spaces = app.state.compute = None
    app.state.throttle = Throttle.from_settings(settings, hub.db)  # failure budgets every process shares
    from hubstead.coordination.forward import Hop

    app.hop = Hop.for_hub(hub, getattr(settings, "role", "all"))  # the services in another process (issue 22)

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> Response:
        return error_response(request, exc.status_code, exc.message, exc.error_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', []))}: {err.get('msg')}" for err in exc.errors()[:5]
        )
        return error_response(request, 400, f"Invalid request: {details}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette answers this from its outermost middleware, outside RequestIdMiddleware: the id is added here.
        request_id = request.scope.get(REQUEST_ID_KEY, "")
        log.exception("unhandled error on %s %s (request id %s)", request.method, request.url.path, request_id)
        extra = {"X-Request-Id": request_id} if request_id else None
        return error_response(request, 500, "Internal server error; the server log has the details", extra=extra)

    async def _database_error(request: Request, exc: Exception) -> Response:
        # The database restarting, unreachable or locked: 503 + Retry-After (logged once per burst), as JSON even
        # on a page (rendering the error page would need the database); any other database error is a bug.
        if not database_unavailable(exc):
            return await _unexpected(request, exc)
        request.state.page = False
        return await _hub_error(request, DatabaseUnavailableError(RETRY_AFTER_SECONDS))

    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _database_error)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Order matters: specific API routes before the catch-all file routes.
    routers = (
        inference_router,
        viewer_router,
        auth_router,
        users_router,
        search_router,
        tags_router,
        spaces_router,
        space_apps_router,
        compute_router,
        train_router,
        evals_router,
        eval_runs_router,
        buckets_router,
        xet_router,
        repos_router,
        access_requests_router,
        duplicate_router,
        refs_router,
        commits_router,
        discussions_router,
        attachments_router,
        webhooks_router,
        collections_router,
        lfs_router,
        lfs_files_router,
        quotas_router,
        files_router,
        git_router,
    )
    from hubstead.web.routes_audit import router as audit_router  # the audit log, API and pages: before any pattern

    app.include_router(audit_router)
    for router in routers:
        app.include_router(router)
    from hubstead.auth.routes_admin import router as admin_accounts_router  # /api/admin/users, /api/admin/tokens
    from hubstead.web.routes_admin_users import router as admin_users_pages  # /admin/users: before the broad pages

    app.include_router(admin_accounts_router)
    app.include_router(admin_users_pages)
    app.include_router(unqualified_router)  # ids without a namespace: after every real repo's routes
    app.include_router(unbuilt_router)  # it catches the API repo sub-paths nothing else answered

    # The web pages come last: their patterns (/{ns}/{name}/...) are the broadest.
    @app.get("/static/highlight.css", include_in_schema=False)
    def highlight_stylesheet() -> Response:
        return Response(highlight_css(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")

    from hubstead.web.routes_avatars import router as avatar_router  # /-/avatar/{name}, uploads

    app.include_router(avatar_router)
    app.include_router(search_pages_router)  # /search, /favicon.ico: before /{name} catches them
    app.include_router(setup_router)  # /setup?token=...: the first admin (auth/setup.py)
    from hubstead.web.routes_admin import router as admin_pages_router  # /admin: before /{name} catches it

    app.include_router(admin_pages_router)
    from hubstead.web.routes_orgs import router as org_pages_router  # /organizations/...: before repo pages

    app.include_router(org_pages_router)
    for router in (account_router, quota_pages_router, webhook_pages_router, collection_pages_router, manage_router,
                   community_router,
                   space_pages_router, job_pages_router, train_pages_router, eval_pages_router, board_pages_router,
                   repo_pages_router,
                   browse_router):  # fmt: skip
        app.include_router(router)
    from hubstead.web.kept_pages import KeptPages  # anonymous list and card pages, kept a few seconds

    app.add_middleware(KeptPages, hub=hub)  # the first added is the innermost: the router's own neighbour
    app.add_middleware(DirectRoutes, hub_app=app)  # every other middleware sees the direct routes' calls
    from hubstead.ops.routes import install as install_ops  # /readyz, /metrics, request metrics (docs/deploy.md)

    install_ops(app, hub, role=getattr(settings, "role", "all"))
    app.add_middleware(RequestIdMiddleware)
    if settings.spaces_domain:
        app.add_middleware(SpacesDomainMiddleware, domain=settings.spaces_domain, hub=hub)
    return app
