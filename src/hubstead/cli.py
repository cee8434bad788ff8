"""The ``hubstead`` command: serve, users, orgs, tokens, import, ``train`` and ``evaluate`` (HTTP clients of a hub).

Every subcommand acts on the same data dir and database as ``serve`` (``--data-dir``/``HUBSTEAD_DATA_DIR``,
``--database-url``/``HUBSTEAD_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hubstead.config import Settings, load_settings
from hubstead.errors import HubError
from hubstead.gc_policy import tune_gc_for_serving
from hubstead.wiring import connect_domains


def _add_storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="where repos, LFS objects and the SQLite file live (default $HUBSTEAD_DATA_DIR, else "
        "$XDG_DATA_HOME/hubstead or ~/.local/share/hubstead, whatever the working directory)",
    )
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite in the data dir)"
    )


def _settings(args: argparse.Namespace) -> Settings:
    from hubstead.cli_quotas import settings_flags as quota_flags

    return load_settings(
        data_dir=args.data_dir,
        database_url=args.database_url,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        signup_enabled=False if getattr(args, "disable_signup", False) else None,
        inference={
            "disabled": getattr(args, "no_inference", False),
            "runtime": getattr(args, "inference_runtime", None),
            "memory": getattr(args, "inference_memory", None),
            "max_queue": getattr(args, "inference_max_queue", None),
            "device": getattr(args, "inference_device", None),
            "threads": getattr(args, "inference_threads", None),
            "replicas": getattr(args, "inference_replicas", None),
            "config": getattr(args, "inference_config", None),
            "load_wait": getattr(args, "inference_load_wait", None),
            "idle_unload": getattr(args, "inference_idle_unload", None),
        },
        jobs={
            "workers": getattr(args, "job_workers", None),
            "time_limit": getattr(args, "job_time_limit", None),
            "cpu_limit": getattr(args, "job_cpu_limit", None),
            "memory_limit": getattr(args, "job_memory_limit", None),
        },
        webhooks={
            "public_url": getattr(args, "public_url", None),
            "allow_private": getattr(args, "webhooks_allow_private", False) or None,
        },
        spaces={
            "disabled": getattr(args, "no_spaces", False),
            "domain": getattr(args, "spaces_domain", None),
            "index_url": getattr(args, "spaces_index_url", None),
            "extra_index_urls": getattr(args, "spaces_extra_index_url", None),
            "memory_budget": getattr(args, "spaces_memory_budget", None),
            "start_timeout": getattr(args, "spaces_start_timeout", None),
            "default_sleep": getattr(args, "spaces_default_sleep", None),
            "sandbox": getattr(args, "spaces_sandbox", None),
        },
        compute={
            "disabled": getattr(args, "no_compute", False),
            "slots": getattr(args, "compute_slots", None),
            "per_namespace": getattr(args, "compute_per_namespace", None),
            "max_timeout": getattr(args, "compute_max_timeout", None),
            "log_limit": getattr(args, "compute_log_limit", None),
            "backend": getattr(args, "compute_backend", None),
            "ray_address": getattr(args, "ray_address", None),
        },
        storage={
            "blob_store": getattr(args, "blob_store", None),
            "endpoint": getattr(args, "s3_endpoint", None),
            "presign": "0" if getattr(args, "no_s3_presign", False) else None,
            "presign_min": getattr(args, "s3_presign_min", None),
        },
        quotas=quota_flags(args),
    )


def _hub(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from hubstead.context import Hub
    from hubstead.coordination.locks import configure
    from hubstead.wiring import attach_hub

    settings = _settings(args)
    print(f"hubstead: data dir {settings.data_dir}", file=sys.stderr)  # which hub this command acts on
    hub = Hub.from_settings(settings)
    attach_hub(hub)
    configure(settings.database_url, settings.repos_dir)  # repo writes exclude the servers' on every machine
    return hub


_SERVE_ARGV = "HUBSTEAD_SERVE_ARGV"  # the serve command's arguments, for the API worker processes it starts
_PARENT_PID = "HUBSTEAD_PARENT_PID"  # a compute process started by ``serve`` exits when that process is gone


def _uvicorn_options(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from hubstead.ops.logs import logging_config

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        # our access lines (ops.logs) replace uvicorn's; every record in the chosen format
        "log_config": logging_config(args.log_format, args.log_level),
        "access_log": False,
        # a compute process trusts X-Forwarded-For only with the hop's secret (coordination.forward.Hop), never
        # from any local caller as uvicorn's proxy headers would
        "proxy_headers": settings.role != "compute",
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "timeout_keep_alive": 30,
        "h11_max_incomplete_event_size": 1024 * 1024,
    }


def _role_settings(args: argparse.Namespace, role: str) -> Settings:
    import dataclasses

    return dataclasses.replace(_settings(args), role=role)


def api_worker_app():  # type: ignore[no-untyped-def]
    """The app of one API worker process that ``serve --workers N`` starts (uvicorn's app factory): the
    parent did the start-up work; this process serves requests and runs no stateful service."""
    from hubstead.app import create_app

    args = build_parser().parse_args(["serve", *json.loads(os.environ[_SERVE_ARGV])])
    connect_domains()
    app = create_app(_role_settings(args, "api"), startup=False)
    tune_gc_for_serving()
    return app


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ComputeChild:
    """The compute process ``serve --workers N`` keeps running beside its API workers (restarted if it dies: a
    standby takes the lease once the dead one's expires)."""

    def __init__(self, argv: list[str], port: int, public_url: str) -> None:
        import threading

        # -P: the working directory stays off sys.path (a json.py there must not shadow the standard library).
        # --public-url: the address people and jobs reach the hub at is the API processes' port, not this loopback
        # one (jobs' and spaces' HF_ENDPOINT, webhook payloads).
        self.command = [sys.executable, "-P", "-m", "hubstead.cli", "serve", *argv, "--role", "compute",
                        "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
                        "--public-url", public_url]  # fmt: skip
        self.env = {**os.environ, _PARENT_PID: str(os.getpid())}
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._keep_running, name="hubstead-compute-child", daemon=True)

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self.thread.start()

    def _keep_running(self) -> None:
        while not self.stopping.is_set():
            assert self.process is not None
            code = self.process.wait()
            if self.stopping.wait(1.0):
                return
            print(f"hubstead: the compute process exited ({code}); starting another", file=sys.stderr, flush=True)
            self.process = subprocess.Popen(self.command, env=self.env)

    def stop(self) -> None:
        self.stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _exit_with_parent(parent: int) -> None:
    """Exit when the ``serve`` process that started this one is gone (killed without stopping its children)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hubstead-parent-watch", daemon=True).start()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hubstead.app import create_app, startup_once

    if args.log_format == "json":  # what serve prints (where it listens) as JSON lines too, and warnings as records
        from hubstead.ops.logs import json_stdout

        json_stdout()
    role = args.role
    workers = args.workers if args.workers is not None else max(1, os.cpu_count() or 1)
    if workers < 1:
        raise SystemExit("--workers must be at least 1")
    settings = _role_settings(args, role)
    options = _uvicorn_options(settings, args)
    where = f"http://{settings.host}:{settings.port} (data in {settings.data_dir})"
    if role == "compute":  # one process: it competes for the lease and, holding it, runs the stateful services
        if parent := os.environ.get(_PARENT_PID):
            _exit_with_parent(int(parent))
        address = args.compute_url or f"http://{_reachable_host(settings.host)}:{settings.port}"
        app = create_app(settings, startup=False, address=address)
        tune_gc_for_serving()
        print(f"Hubstead compute process on {where}, published as {address}", flush=True)
        uvicorn.run(app, **options)
        return 0
    if role == "all" and workers == 1:  # a single process that runs everything: the start-up work, then serve
        app = create_app(settings)
        tune_gc_for_serving()
        print(f"Hubstead serving on {where}", flush=True)
        _print_banner(app.state.hub)
        uvicorn.run(app, **options)
        return 0
    # Several processes (or an API-only one): the start-up work once, here; API processes on the public port;
    # with --role all, one compute process on a loopback port beside them.
    from hubstead.context import Hub
    from hubstead.wiring import attach_hub

    hub = Hub.from_settings(settings)
    attach_hub(hub)
    startup_once(hub)
    _print_banner(hub)
    hub.db.engine.dispose()
    child = None
    if role == "all":
        child = _ComputeChild(args.argv, args.compute_port or _free_port(), settings.external_url)
        child.start()
    os.environ[_SERVE_ARGV] = json.dumps(args.argv)
    print(f"Hubstead serving on {where} with {workers} API processes", flush=True)
    try:
        uvicorn.run("hubstead.cli:api_worker_app", factory=True, workers=workers, **options)
    finally:
        if child is not None:
            child.stop()
    return 0


def _print_banner(hub) -> None:  # type: ignore[no-untyped-def]
    from hubstead.auth.setup import serve_banner  # data dir, URL to open, first-admin setup link

    print("\n".join(serve_banner(hub.db, hub.settings)), flush=True)


def _reachable_host(host: str) -> str:
    """The name other machines reach this one by, where ``host`` listens on every address."""
    import socket

    return socket.getfqdn() if host in ("0.0.0.0", "::", "") else host


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema to this version's newest revision (``serve`` and every command do so at start;
    a deployment runs this once before it starts new processes), or with ``--check`` only say whether it is."""
    from hubstead.db import Database

    settings = _settings(args)
    db = Database(settings.database_url)
    try:
        current, newest = db.schema_revisions()
        if args.check:
            print(f"schema {current or 'empty'}; this version's newest is {newest}")
            return 0 if current == newest else 1
        if current == newest:
            print(f"schema already at {newest}")
            return 0
        db.migrate()
        print(f"schema migrated from {current or 'empty'} to {db.schema_revisions()[0]}")
        return 0
    finally:
        db.engine.dispose()


def cmd_users_create(args: argparse.Namespace) -> int:
    from hubstead.auth.accounts import check_password
    from hubstead.auth.service import create_user

    if args.password is not None:
        check_password(args.password, name=args.name)  # the one password rule (auth.accounts)
    hub = _hub(args)
    with hub.db.session() as session:
        user = create_user(session, name=args.name, password=args.password, is_admin=args.admin, email=args.email)
        print(f"Created user {user.name}{' (admin)' if user.is_admin else ''}")
    return 0


def cmd_orgs_create(args: argparse.Namespace) -> int:
    from hubstead.auth.service import create_org, get_user

    hub = _hub(args)
    with hub.db.session() as session:
        org = create_org(session, name=args.name, owner=get_user(session, args.owner))
        print(f"Created organization {org.name} owned by {args.owner}")
    return 0


def cmd_orgs_add_member(args: argparse.Namespace) -> int:
    from hubstead.auth.service import get_org, get_user, set_membership

    hub = _hub(args)
    with hub.db.session() as session:
        set_membership(session, org=get_org(session, args.org), user=get_user(session, args.user), role=args.role)
        print(f"{args.user} is now {args.role} in {args.org}")
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from hubstead.auth.service import create_token, get_user

    hub = _hub(args)
    with hub.db.session() as session:
        token = create_token(session, user=get_user(session, args.user), role=args.role, name=args.name or "")
    print(token)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from hubstead.repos.importer import import_folder

    hub = _hub(args)
    result = import_folder(
        hub, Path(args.path), repo_id=args.repo_id, repo_type=args.repo_type, revision=args.revision, as_user=args.user
    )
    target = f"{args.repo_type} {args.repo_id}@{args.revision}"
    print(f"Imported {result.files} files ({result.lfs_files} LFS) into {target}: {result.commit}")
    return 0


def cmd_import_benchmark(args: argparse.Namespace) -> int:
    """Import a catalog benchmark from a Hugging Face cache, or a folder with its own eval.yaml (``evals.importer``)."""
    from hubstead.evals.catalog import catalog_lines
    from hubstead.evals.importer import import_benchmark

    if args.list:
        print("\n".join(catalog_lines()))
        return 0
    if not args.source:
        print("error: name a catalog benchmark or a folder (--list shows the catalog)", file=sys.stderr)
        return 2
    result = import_benchmark(
        _hub(args), args.source, repo_id=args.repo_id, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        as_user=args.user, private=args.private,
    )
    name = result.benchmark.name
    if result.commit is None:
        print(f"Dataset {result.repo_id} is up to date with {result.source} (benchmark {name!r}): no commit")
    else:
        print(f"Imported benchmark {name!r} into dataset {result.repo_id} from {result.source}: "
              f"{len(result.changed)} of {result.files} files changed, commit {result.commit}")
    return 0


def _param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param takes key=value, not {text!r}")
    try:
        value: object = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _hub_client(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The hub's URL and auth headers of a command that talks to a running hub (``--endpoint``/``--token``, else
    ``$HF_ENDPOINT``/``$HF_TOKEN``)."""
    import os

    endpoint = (args.endpoint or os.environ.get("HF_ENDPOINT") or "http://127.0.0.1:8000").rstrip("/")
    token = args.token or os.environ.get("HF_TOKEN")
    return endpoint, ({"Authorization": f"Bearer {token}"} if token else {})


def _post_job(url: str, body: dict[str, object], headers: dict[str, str]) -> dict[str, Any] | None:
    """POST a run; its answer, or None after printing the hub's refusal."""
    import httpx

    answer = httpx.post(url, json=body, headers=headers, timeout=120)
    if answer.status_code != 200:
        print(f"error: {answer.headers.get('X-Error-Message') or answer.text[:500]}", file=sys.stderr)
        return None
    return answer.json()  # type: ignore[no-any-return]


def _print_job_log(endpoint: str, namespace: str, job_id: str, headers: dict[str, str]) -> None:
    """Stream a compute job's log to stdout until the job ends."""
    import httpx

    logs = f"{endpoint}/api/jobs/{namespace}/{job_id}/logs"
    with httpx.stream("GET", logs, headers=headers, timeout=httpx.Timeout(60, read=None)) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                print(json.loads(line[6:]).get("data", ""), flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    """Post a run to ``/api/train`` of a running hub; with --follow, stream its job's log until it ends."""
    import httpx

    endpoint, headers = _hub_client(args)
    columns = dict(pair.split("=", 1) for pair in args.column or [])
    body: dict[str, object] = {"task": args.task, "base_model": args.model, "dataset": args.dataset,
                               "method": args.method, "hyperparameters": dict(args.param or []),
                               "output": {"repo_id": args.output, "push": args.push,
                                          **({"branch": args.branch} if args.branch else {})},
                               "columns": columns, "flavor": args.flavor}
    for key in ("split", "eval_split", "config", "namespace"):
        value = getattr(args, key)
        if value:
            body[{"split": "train_split", "config": "dataset_config"}.get(key, key)] = value
    run = _post_job(f"{endpoint}/api/train", body, headers)
    if run is None:
        return 2
    print(f"Run {run['jobId']} queued in {run['namespace']}: {run['url']}", flush=True)
    if not args.follow:
        return 0
    _print_job_log(endpoint, run["namespace"], run["jobId"], headers)
    final = httpx.get(f"{endpoint}/api/train/{run['namespace']}/{run['jobId']}", headers=headers, timeout=60).json()
    print(f"Run {run['jobId']} ended: {final['stage']}" + (f" ({final['message']})" if final.get("message") else ""))
    if final.get("output"):
        print(f"Model: {final['output']['url']}")
    return 0 if final["stage"] == "COMPLETED" else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Post an evaluation to ``/api/evaluations`` of a running hub; with --follow, stream its job's log until it
    ends and say where its results went."""
    import time

    import httpx

    endpoint, headers = _hub_client(args)
    body: dict[str, object] = {"model": args.model, "benchmark": args.benchmark}
    if args.tasks:
        body["tasks"] = [task.strip() for task in args.tasks.split(",") if task.strip()]
    for key in ("revision", "limit", "num_fewshot", "batch_size", "flavor", "namespace", "timeout"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    run = _post_job(f"{endpoint}/api/evaluations", body, headers)
    if run is None:
        return 2
    print(f"Evaluation {run['jobId']} queued in {run['namespace']}: {run['run']['url']}", flush=True)
    if not args.follow:
        return 0
    _print_job_log(endpoint, run["namespace"], run["jobId"], headers)
    view_url = f"{endpoint}/api/evaluations/{run['namespace']}/{run['jobId']}"
    deadline = time.monotonic() + 60  # the hub writes the results just after the job ends
    while True:
        final = httpx.get(view_url, headers=headers, timeout=60).json()
        written = final.get("results") or any("==> Results not written" in line for line in final.get("logTail", []))
        if final["stage"] != "COMPLETED" or written or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"Evaluation {run['jobId']} ended: {final['stage']}"
          + (f" ({final['message']})" if final.get("message") else ""))
    for task in final.get("tasks") or []:
        print(f"  {task['id']}: {task['metric']} = {task['value']}")
    if final.get("pullRequest"):
        print(f"Results proposed in pull request #{final['pullRequest']}: {final['resultsUrl']}")
    elif final.get("resultsUrl"):
        print(f"Results committed: {final['resultsUrl']}")
    return 0 if final["stage"] == "COMPLETED" and final.get("results") else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubstead", description="A self-hosted Hugging Face Hub")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the hub (API and web pages)")
    _add_storage_flags(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--log-format", choices=["text", "json"], default="text",
                       help="text lines, or one JSON object per line for every record (access lines included)")
    serve.add_argument("--workers", type=int,
                       help="API processes on the port (default: the cores); they share the database and data dir")
    serve.add_argument("--role", choices=["all", "api", "compute"], default="all",
                       help="all (default): API processes and the stateful services (jobs, spaces, inference, "
                            "webhooks, rollups); api: API processes only; compute: compete for the services' "
                            "lease and run them while holding it (docs/ARCHITECTURE.md, Processes)")
    serve.add_argument("--compute-port", type=int,
                       help="with --role all and --workers > 1: the loopback port of the compute process "
                            "(default: a free one)")
    serve.add_argument("--compute-url",
                       help="with --role compute: the URL API processes reach this process at "
                            "(default http://HOST:PORT)")
    serve.add_argument("--disable-signup", action="store_true", help="only admins create accounts (HUBSTEAD_SIGNUP=0)")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for X-Forwarded-* headers")
    serve.add_argument("--public-url", help="the URL people reach this hub at, used in webhook payloads "
                       "(HUBSTEAD_PUBLIC_URL; default the address it listens on)")
    serve.add_argument("--webhooks-allow-private", action="store_true",
                       help="let webhooks point at loopback, link-local and private addresses "
                       "(HUBSTEAD_WEBHOOKS_ALLOW_PRIVATE=1; default: public addresses only)")
    inference = serve.add_argument_group("inference (needs the hubstead[inference] extra)")
    inference.add_argument("--no-inference", action="store_true", help="do not serve the inference API")
    inference.add_argument("--inference-runtime", choices=["pytorch", "onnx", "onnx-int8"],
                           help="form encoder models are served in; ONNX only where it matches PyTorch "
                           "(default pytorch)")
    inference.add_argument("--inference-memory",
                           help="memory all loaded models may use, e.g. 8GiB (default: half of RAM)")
    inference.add_argument("--inference-max-queue", type=int, help="requests queued per model before 429 (default 256)")
    inference.add_argument("--inference-device", help="auto (GPU when present), cpu, cuda, cuda:1 (default auto)")
    inference.add_argument("--inference-threads", type=int,
                           help="compute threads per worker (default: the cores, shared among busy replicas)")
    inference.add_argument("--inference-replicas", type=int,
                           help="worker processes per encoder model on CPU (default 2 with 2+ cores, no GPU)")
    inference.add_argument("--inference-config", help="YAML file of per-model runtimes and external engines")
    inference.add_argument("--inference-load-wait", type=float, metavar="SECONDS",
                           help="how long a request waits for its model to load before a 503 with Retry-After "
                                "(default 120; 0 = answer 503 at once)")
    inference.add_argument("--inference-idle-unload", type=float, metavar="SECONDS",
                           help="unload a model after this long without a request, freeing its worker's memory "
                                "(default 900; 0 = never)")
    jobs = serve.add_argument_group("jobs (dataset conversion)")
    jobs.add_argument("--job-workers", type=int, help="jobs run side by side (default 2, or 1 on one core)")
    jobs.add_argument("--job-time-limit", type=float, help="seconds a job may run, 0 for none (default 600)")
    jobs.add_argument("--job-cpu-limit", type=int, help="CPU seconds a job may use (default twice the time limit)")
    jobs.add_argument("--job-memory-limit", help="memory a job may use, e.g. 4GiB (default a quarter of RAM + 1 GiB)")
    spaces = serve.add_argument_group("spaces (apps built and run by the hub)")
    spaces.add_argument("--no-spaces", action="store_true", help="store space repos but do not run them")
    spaces.add_argument("--spaces-domain",
                        help="also serve each space at {owner}-{name}.DOMAIN (a wildcard DNS name to this hub)")
    spaces.add_argument("--spaces-index-url",
                        help="package index spaces install from (default: the host's UV_INDEX_URL/PIP_INDEX_URL, "
                             "else PyPI); point it at a mirror on air-gapped sites")
    spaces.add_argument("--spaces-extra-index-url", help="more package indexes, separated by spaces")
    spaces.add_argument("--spaces-memory-budget",
                        help="memory all running spaces may use together, e.g. 16GiB (default: half of RAM); past "
                             "it the least recently visited space sleeps")
    spaces.add_argument("--spaces-start-timeout", type=float, metavar="SECONDS",
                        help="how long an app may take to open its port before RUNTIME_ERROR (default 300)")
    spaces.add_argument("--spaces-default-sleep", type=int, metavar="SECONDS",
                        help="idle time before a space that set no sleep time sleeps (default 172800, 48 hours)")
    spaces.add_argument("--spaces-sandbox", choices=["bwrap", "none"],
                        help="bwrap (default) sandboxes every space; none runs them unsandboxed (trusted hubs only)")
    compute = serve.add_argument_group("jobs (the Hub's Jobs API and Train's runs; same sandbox and index as spaces)")
    compute.add_argument("--no-compute", action="store_true", help="refuse jobs (the API answers, nothing runs)")
    compute.add_argument("--compute-slots", type=int, metavar="N",
                         help="jobs running at once on this host (default: the cores)")
    compute.add_argument("--compute-per-namespace", type=int, metavar="N",
                         help="jobs one user or org may run at once (default: slots - 1, at least 1)")
    compute.add_argument("--compute-max-timeout", type=int, metavar="SECONDS",
                         help="the longest timeout a job may ask for (default 86400)")
    compute.add_argument("--compute-log-limit", metavar="SIZE",
                         help="a job's log keeps its newest part past this size (default 64MiB)")
    compute.add_argument("--compute-backend", choices=["local", "ray"],
                         help="where jobs run: local (default: this host's sandbox) or ray (a Ray cluster)")
    compute.add_argument("--ray-address", metavar="URL",
                         help="the Ray cluster's dashboard address for --compute-backend ray (http://head:8265)")
    storage = serve.add_argument_group("blob storage (LFS objects, Parquet conversions, Xet xorbs)")
    storage.add_argument("--blob-store", metavar="URL",
                         help="'local' (default: the data dir) or s3://bucket/prefix (credentials: AWS_* variables)")
    storage.add_argument("--s3-endpoint", metavar="URL", help="an S3-compatible server's address (default: AWS)")
    storage.add_argument("--no-s3-presign", action="store_true",
                         help="serve S3 objects through the hub instead of redirecting to presigned URLs")
    storage.add_argument("--s3-presign-min", metavar="SIZE",
                         help="LFS files from this size are downloaded by a 302 to a presigned URL (default 10MiB)")
    from hubstead.cli_quotas import add_serve_flags as add_quota_flags

    add_quota_flags(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database's schema up to date (or --check it)")
    migrate.add_argument("--check", action="store_true", help="only report; exit 1 if a migration is pending")
    _add_storage_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)
    users = commands.add_parser("users", help="manage users").add_subparsers(dest="action", required=True)
    users_create = users.add_parser("create", help="create a user")
    users_create.add_argument("name")
    users_create.add_argument("--admin", action="store_true", help="site administrator")
    users_create.add_argument("--password")
    users_create.add_argument("--email")
    _add_storage_flags(users_create)
    users_create.set_defaults(func=cmd_users_create)

    orgs = commands.add_parser("orgs", help="manage organizations").add_subparsers(dest="action", required=True)
    orgs_create = orgs.add_parser("create", help="create an organization")
    orgs_create.add_argument("name")
    orgs_create.add_argument("--owner", required=True)
    _add_storage_flags(orgs_create)
    orgs_create.set_defaults(func=cmd_orgs_create)
    add_member = orgs.add_parser("add-member", help="add a user to an organization or change their role")
    add_member.add_argument("org")
    add_member.add_argument("user")
    add_member.add_argument("--role", choices=["read", "write", "admin"], default="read")
    _add_storage_flags(add_member)
    add_member.set_defaults(func=cmd_orgs_add_member)

    tokens = commands.add_parser("tokens", help="manage access tokens").add_subparsers(dest="action", required=True)
    tokens_create = tokens.add_parser("create", help="create an access token (printed alone on the last line)")
    tokens_create.add_argument("user")
    tokens_create.add_argument("--role", choices=["read", "write"], default="read")
    tokens_create.add_argument("--name", help="a label for the token")
    _add_storage_flags(tokens_create)
    tokens_create.set_defaults(func=cmd_tokens_create)
    from hubstead.cli_admin import register as register_admin  # users list/disable/..., tokens list/revoke, repos

    register_admin(users, tokens, commands, add_storage_flags=_add_storage_flags, hub=_hub)
    from hubstead.cli_quotas import register as register_quotas  # hubstead quotas set|show

    register_quotas(commands, add_storage_flags=_add_storage_flags, hub=_hub)

    importer = commands.add_parser(
        "import", help="commit a local folder (e.g. a Hugging Face cache snapshot) as a repo"
    )
    importer.add_argument("path")
    importer.add_argument("repo_id")
    importer.add_argument("--repo-type", choices=["model", "dataset", "space"], default="model")
    importer.add_argument("--revision", default="main", help="branch to commit to (created from main if missing)")
    importer.add_argument("--user", help="act as this user (default: the namespace's owner, or the first admin)")
    _add_storage_flags(importer)
    importer.set_defaults(func=cmd_import)

    bench = commands.add_parser(
        "import-benchmark", help="import a well-known benchmark from a Hugging Face cache, or a folder with eval.yaml"
    )
    bench.add_argument("source", nargs="?", help="a catalog name (see --list) or a folder of data files and eval.yaml")
    bench.add_argument("--repo-id", help="the dataset repo (default: the benchmark's Hub id; required for a folder)")
    bench.add_argument("--cache-dir", help="the Hugging Face hub cache to read (default $HF_HUB_CACHE or $HF_HOME/hub)")
    bench.add_argument("--user", help="act as this user (default: the namespace's owner, or the first admin)")
    bench.add_argument("--private", action="store_true", help="create the dataset private")
    bench.add_argument("--list", action="store_true", help="print the catalog: name, dataset id, framework, tasks")
    _add_storage_flags(bench)
    bench.set_defaults(func=cmd_import_benchmark)

    train = commands.add_parser(
        "train", help="fine-tune a model on a hub dataset (posts to a running hub's /api/train)"
    )
    train.add_argument("--model", required=True, help="the base model's repo id")
    train.add_argument("--dataset", required=True, help="the dataset's repo id")
    train.add_argument("--task", required=True, help="text-classification, token-classification, "
                       "sentence-embeddings, sft or dpo")
    train.add_argument("--output", required=True, help="the repo id the trained model is pushed to")
    train.add_argument("--push", default="new-repo", choices=["new-repo", "branch", "pull-request"])
    train.add_argument("--branch", help="the branch to push to (with --push branch)")
    train.add_argument("--split", help="the training split (default: train)")
    train.add_argument("--eval-split", help="the evaluation split (default: a 10%% holdout)")
    train.add_argument("--config", help="the dataset's config")
    train.add_argument("--method", default="full", choices=["full", "lora", "qlora"])
    train.add_argument("--column", action="append", metavar="ROLE=COLUMN", help="map a task role to a column")
    train.add_argument("--param", action="append", type=_param, metavar="KEY=VALUE", help="a hyperparameter")
    train.add_argument("--flavor", default="cpu-basic")
    train.add_argument("--namespace", help="run the job in this namespace (default: yours)")
    train.add_argument("--token", help="an access token (default: $HF_TOKEN)")
    train.add_argument("--endpoint", help="the hub's URL (default: $HF_ENDPOINT)")
    train.add_argument("--follow", action="store_true", help="stream the run's log until it ends")
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a model on a benchmark (posts to a running hub's /api/evaluations)"
    )
    evaluate.add_argument("model", help="the model's repo id")
    evaluate.add_argument("benchmark", help="the benchmark's dataset repo id (a dataset with an eval.yaml)")
    evaluate.add_argument("--tasks", help="the benchmark's task ids, comma-separated (default: all)")
    evaluate.add_argument("--revision", help="the model's revision (default: main)")
    evaluate.add_argument("--limit", type=int, help="at most this many samples per task")
    evaluate.add_argument("--num-fewshot", type=int, help="few-shot examples (lm-eval tasks)")
    evaluate.add_argument("--batch-size", type=int)
    evaluate.add_argument("--flavor", help="the hardware flavor (default: cpu-basic)")
    evaluate.add_argument("--namespace", help="run the job in this namespace (default: yours)")
    evaluate.add_argument("--timeout", type=int, help="the job's timeout in seconds (default: an hour)")
    evaluate.add_argument("--token", help="an access token (default: $HF_TOKEN)")
    evaluate.add_argument("--endpoint", help="the hub's URL (default: $HF_ENDPOINT)")
    evaluate.add_argument("--follow", action="store_true", help="stream the job's log until it ends")
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:] if argv and argv[0] == "serve" else argv  # serve's own arguments, for its processes
    connect_domains()
    try:
        return int(args.func(args) or 0)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
