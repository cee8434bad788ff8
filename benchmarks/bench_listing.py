#!/usr/bin/env python
"""Repo index under concurrent load: ``model_info`` and ``list_models`` with N repos, on SQLite and PostgreSQL.

For each backend: seed N model repos (default 10,000) through hubstead's own Python API in-process
(``hubstead.repos.service.create_repo``, with a Hub from ``Hub.from_settings`` on the same data dir and
database the server then uses); a fraction (default 25%) get a README with a YAML card (pipeline_tag,
library_name, license, language, tags, datasets, base_model) committed, which fills the index's tags; every
row gets random (Pareto) downloads and likes, also spread over the last 1-30 days in the daily stats table
where the hubstead has one (what "downloads last month" and trending sum); a few are private. Then the server
starts (timed: it reconciles every repo's index row against git at start) and each endpoint takes C concurrent
clients (default 16 asyncio tasks, each with one keep-alive connection, all sending a read token) for D seconds
(default 10):

* ``GET /healthz``: the framework floor, the baseline of every row;
* ``model_info``: ``GET /api/models/{id}`` of a random public repo (what ``HfApi.model_info`` sends);
* ``list_models``: ``GET /api/models`` with the query ``HfApi.list_models(filter=..., search=..., sort="downloads",
  limit=50)`` sends, and, to see which part costs, with only ``sort=downloads&limit=50``, only the filter, only
  the search.

Reported: requests/s, p50 and p99 latency (and errors). The load generator runs in this process and shares
the machine's cores with the server; by default it is a minimal asyncio HTTP/1.1 client (``--client raw``) that
costs far less CPU per request than ``httpx`` (``--client httpx``: one ``httpx.AsyncClient`` per task), so that
the ``healthz`` floor measures the server rather than the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    PostgresCluster,
    ProcStats,
    Profiler,
    RawClient,
    Row,
    add_common_args,
    log,
    make_tempdir,
    percentile,
    pin_source,
    print_report,
)

FAMILIES = ["bert", "roberta", "llama", "mistral", "gpt2", "t5", "whisper", "vit", "clip", "qwen", "phi", "gemma"]
VARIANTS = ["base", "large", "small", "tiny", "instruct", "chat", "finetuned", "distilled"]
PIPELINES = ["text-classification", "text-generation", "token-classification", "fill-mask", "image-classification",
             "automatic-speech-recognition", "translation", "summarization", "feature-extraction",
             "question-answering"]
LIBRARIES = ["transformers", "diffusers", "sentence-transformers", "timm", "peft", "gguf"]
LICENSES = ["mit", "apache-2.0", "cc-by-4.0", "llama3", "other"]
LANGUAGES = ["en", "fr", "de", "zh", "es", "ja", "ru", "ar"]
TAGS = ["nlp", "vision", "audio", "biology", "legal", "finance", "medical", "code", "math", "chat", "quantized",
        "lora", "onnx", "int8", "multilingual"]
DATASETS = ["imdb", "squad", "glue", "c4", "wikipedia", "librispeech_asr", "imagenet-1k", "common_voice"]
USERS = ["bench", "alice", "bob", "carol"]
ORG = "benchorg"

FILTER = "text-classification"
SEARCH = "bert"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=10_000, help="repos in the index (default 10000)")
    parser.add_argument("--card-fraction", type=float, default=0.25, help="share of repos given a YAML card")
    parser.add_argument("--private-fraction", type=float, default=0.03)
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load first")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: raw asyncio HTTP/1.1 (light, default) or httpx.AsyncClient")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--seed-fsync", action="store_true",
                        help="keep libgit2's fsync on while seeding (off by default: seeding is not measured)")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes of the measured server (hubstead serve --workers; default 1)")
    parser.add_argument("--scale-workers", type=int, default=0,
                        help="then restart with this many API processes and measure /healthz and model_info "
                             "again: the scaling ratio against --workers (0: skip)")
    parser.add_argument("--writes-per-s", type=float, default=0.0,
                        help="then measure the list_models forms again while a writer likes and unlikes a repo this "
                             "many times a second (kept listings start afresh after every write; 0: skip)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 repos, 2 s per endpoint")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.repos, args.duration, args.warmup = 300, 2.0, 0.5
    return args


def card_for(rng: random.Random) -> str:
    lines = [
        "---",
        f"pipeline_tag: {rng.choice(PIPELINES)}",
        f"library_name: {rng.choice(LIBRARIES)}",
        f"license: {rng.choice(LICENSES)}",
        "language:",
        *[f"- {lang}" for lang in rng.sample(LANGUAGES, rng.randint(1, 3))],
        "tags:",
        *[f"- {tag}" for tag in rng.sample(TAGS, rng.randint(1, 4))],
    ]
    if rng.random() < 0.5:
        lines += ["datasets:", f"- {rng.choice(DATASETS)}"]
    if rng.random() < 0.3:
        lines.append(f"base_model: {rng.choice(USERS)}/{rng.choice(FAMILIES)}-base-{rng.randint(0, 99)}")
    lines += ["---", "", "# A model", "", "Benchmark card.", ""]
    return "\n".join(lines)


def seed(data_dir: Path, database_url: str | None, n: int, args: argparse.Namespace) -> tuple[str, list[str]]:
    """Fill the index in-process. Returns (read token of 'bench', ids of public repos)."""
    import pygit2

    from hubstead.auth.service import Principal, create_org, create_token, create_user
    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.repos.commits import commit_files
    from hubstead.repos.git import Author
    from hubstead.repos.service import create_repo, open_git

    if not args.seed_fsync:
        pygit2.settings.enable_fsync_gitdir(False)  # this (seeding) process only; the server keeps its setting
    try:  # newer hubsteads count downloads and likes per day (trending, "downloads last month")
        from hubstead.repos.models import RepoDailyStat
    except ImportError:
        RepoDailyStat = None  # noqa: N806
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    today = datetime.now(UTC).date()
    rng = random.Random(42)
    hub = Hub.from_settings(load_settings(data_dir=data_dir, database_url=database_url))
    principals = {}
    with hub.db.session() as session:
        for name in USERS:
            principals[name] = Principal(user=create_user(session, name=name), token_role="write")
        create_org(session, name=ORG, owner=principals["bench"].user)
        read_token = create_token(session, user=principals["bench"].user, role="read")
    public: list[str] = []
    batch = 250
    for start in range(0, n, batch):
        with hub.db.session() as session:
            daily: list[dict] = []
            users = {name: session.merge(p.user) for name, p in principals.items()}
            for i in range(start, min(n, start + batch)):
                owner = rng.choice(USERS)
                namespace = ORG if rng.random() < 0.1 else owner
                principal = Principal(user=users["bench" if namespace == ORG else owner], token_role="write")
                repo_id = f"{namespace}/{rng.choice(FAMILIES)}-{rng.choice(VARIANTS)}-{i}"
                private = rng.random() < args.private_fraction
                repo, _ = create_repo(hub, session, principal, repo_id=repo_id, repo_type="model", private=private)
                repo.downloads = int(rng.paretovariate(1.2) * 10) - 10
                repo.downloads_all_time = repo.downloads * rng.randint(1, 5)
                repo.likes = int(rng.paretovariate(1.5)) - 1
                if RepoDailyStat is not None and (repo.downloads > 0 or repo.likes > 0):
                    session.flush()
                    days = rng.randint(1, 30)
                    for day in range(days):
                        daily.append({"repo_pk": repo.pk, "day": today - timedelta(days=day),
                                      "downloads": repo.downloads // days + (1 if day < repo.downloads % days else 0),
                                      "likes": 1 if day < repo.likes else 0})
                if rng.random() < args.card_fraction:
                    git = open_git(hub, repo)
                    blob = git.write_blob(card_for(rng).encode())
                    commit_files(hub, session, repo=repo, branch="main", files=[("README.md", blob)],
                                 lfs_objects={}, message="Add model card",
                                 author=Author(name=principal.user.name, email=f"{principal.user.name}@bench"))
                if not private:
                    public.append(repo_id)
            if daily:
                session.execute(insert(RepoDailyStat), daily)
        if (start // batch) % 8 == 0:
            log(f"  seeded {min(n, start + batch)}/{n}")
    hub.db.engine.dispose()
    return read_token, public


async def _load(urls: list[str], token: str, concurrency: int, duration: float, warmup: float,
                client_kind: str) -> dict:
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    stop_at = 0.0
    measure_from = 0.0
    headers = {"authorization": f"Bearer {token}"}
    parsed = httpx.URL(urls[0])
    raw_requests = [
        (f"GET {httpx.URL(u).raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
         f"Authorization: Bearer {token}\r\nAccept: */*\r\nUser-Agent: hubstead-bench\r\n\r\n").encode()
        for u in urls
    ]

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(index)
        if client_kind == "httpx":
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            client = httpx.AsyncClient(limits=limits, timeout=60, headers=headers)
        else:
            raw = RawClient(parsed.host, parsed.port)
        try:
            while True:
                now = time.perf_counter()
                if now >= stop_at:
                    return
                pick = rng.randrange(len(urls))
                started = time.perf_counter()
                try:
                    if client_kind == "httpx":
                        response = await client.get(urls[pick])
                        await response.aread()
                        status = response.status_code
                    else:
                        status, _ = await asyncio.wait_for(raw.request(raw_requests[pick]), 60)
                    ok = status == 200
                    statuses[status] = statuses.get(status, 0) + 1
                except (TimeoutError, httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    if client_kind != "httpx":
                        await raw.close()
                ended = time.perf_counter()
                if started >= measure_from and ended <= stop_at:
                    if ok:
                        latencies.append(ended - started)
                    else:
                        errors += 1
        finally:
            if client_kind == "httpx":
                await client.aclose()
            else:
                await raw.close()

    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    await asyncio.gather(*(worker(i) for i in range(concurrency)))


    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    return {"rps": len(latencies) / duration, "p50": p50, "p99": p99, "n": len(latencies),
            "errors": errors, "statuses": statuses}


def write_token(data_dir: Path, database_url: str | None) -> str:
    """A write token of the bench user (``seed`` makes a read token), for the writer."""
    from hubstead.auth.service import create_token, get_user
    from hubstead.config import load_settings
    from hubstead.context import Hub

    hub = Hub.from_settings(load_settings(data_dir=data_dir, database_url=database_url))
    try:
        with hub.db.session() as session:
            return create_token(session, user=get_user(session, "bench"), role="write", name="bench writer")
    finally:
        hub.db.engine.dispose()


class LikeWriter(threading.Thread):
    """Likes and unlikes one repo ``rate`` times a second over HTTP: a steady trickle of writes."""

    def __init__(self, base: str, token: str, repo_id: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.repo_id, self.interval = base, token, repo_id, 1.0 / rate
        self.stop = threading.Event()
        self.count = self.failures = 0

    def run(self) -> None:
        liked = False
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {self.token}"}) as client:
            while not self.stop.is_set():
                answer = client.request("DELETE" if liked else "POST", f"{self.base}/api/models/{self.repo_id}/like")
                self.count += 1
                self.failures += answer.status_code != 200
                liked = not liked
                self.stop.wait(self.interval)


def run_load(server: HubServer, name: str, urls: list[str], token: str, args: argparse.Namespace,
             profiler: Profiler, pg: PostgresCluster | None) -> dict:
    before = ProcStats.of(server.pid)
    pg_before = pg.cpu_seconds() if pg is not None else 0.0
    client_before = time.process_time()
    with profiler.phase(f"{name}".replace("/", "_").replace(" ", "_"), server.pid):
        result = asyncio.run(_load(urls, token, args.concurrency, args.duration, args.warmup, args.client))
    used = ProcStats.of(server.pid) - before
    result["server_cores"] = used.cpu / (args.duration + args.warmup)
    result["client_cores"] = (time.process_time() - client_before) / (args.duration + args.warmup)
    result["pg_cores"] = (pg.cpu_seconds() - pg_before) / (args.duration + args.warmup) if pg is not None else 0.0
    log(f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"errors {result['errors']}, server {result['server_cores']:.2f} cores, "
        + (f"PostgreSQL {result['pg_cores']:.2f} cores, " if pg is not None else "")
        + f"load generator {result['client_cores']:.2f} cores, statuses {result['statuses']}")
    return result


def bench_backend(backend: str, args: argparse.Namespace, work: Path, pg: PostgresCluster | None,
                  profiler: Profiler) -> tuple[list[Row], list[str]]:
    database_url = pg.new_database() if pg is not None else None
    serve_args = ("--workers", str(args.workers)) if args.has_workers else ()
    server = HubServer(root=work / backend, database_url=database_url, serve_args=serve_args)
    server.data_dir.mkdir(parents=True)
    # As on a real hub, the server has run once before its repos were made (migrations, one-time marks such as
    # the evaluation index's backfill): the measured start is a restart with 10,000 repos, not an upgrade.
    server.start()
    server.stop()
    # Baseline start time: an empty hub on the same backend.
    empty = HubServer(root=work / f"{backend}-empty", database_url=pg.new_database() if pg is not None else None,
                      serve_args=serve_args)
    empty.data_dir.mkdir(parents=True)
    empty.start()  # first start runs the migrations
    empty.stop()
    empty.start()
    empty.stop()

    log(f"[{backend}] seeding {args.repos} repos in-process")
    started = time.perf_counter()
    token, public = seed(server.data_dir, database_url, args.repos, args)
    seed_seconds = time.perf_counter() - started
    log(f"[{backend}] seeded in {seed_seconds:.1f} s; starting the server")
    server.start()
    log(f"[{backend}] server up in {server.startup_seconds:.1f} s (empty: {empty.startup_seconds:.1f} s)")

    base = server.url
    # Sanity: the client's own calls work and match the raw queries.
    check = httpx.get(f"{base}/api/models", params={"filter": FILTER, "search": SEARCH, "sort": "downloads",
                                                     "limit": 50}, headers={"authorization": f"Bearer {token}"})
    check.raise_for_status()
    matched = len(check.json())
    queries = {
        "healthz": [f"{base}/healthz"],
        "model_info": [f"{base}/api/models/{repo_id}" for repo_id in public],
        "list_models filter+search+sort+limit=50": [
            f"{base}/api/models?filter={FILTER}&search={SEARCH}&sort=downloads&limit=50"],
        "list_models sort=downloads&limit=50": [f"{base}/api/models?sort=downloads&limit=50"],
        f"list_models filter={FILTER}&limit=50": [f"{base}/api/models?filter={FILTER}&limit=50"],
        f"list_models search={SEARCH}&limit=50": [f"{base}/api/models?search={SEARCH}&limit=50"],
    }
    results = {}
    for name, urls in queries.items():
        results[name] = run_load(server, f"{backend} {name}", urls, token, args, profiler, pg)
    floor = results["healthz"]
    rows = [Row(f"[{backend}] server start with {args.repos:,} repos vs empty [s]", server.startup_seconds,
                empty.startup_seconds, "time", "{:.1f}")]
    rows.append(Row(f"[{backend}] GET /healthz [req/s] (floor, = baseline of rows below)", floor["rps"], floor["rps"],
                    "rate", "{:.0f}"))
    for name, res in results.items():
        if name == "healthz":
            continue
        rows.append(Row(f"[{backend}] {name} [req/s]", res["rps"], floor["rps"], "rate", "{:.0f}"))
        rows.append(Row(f"[{backend}] {name} p50 [ms]", res["p50"], floor["p50"], "time", "{:.1f}"))
        rows.append(Row(f"[{backend}] {name} p99 [ms]", res["p99"], floor["p99"], "time", "{:.1f}"))
    if args.writes_per_s > 0:
        writer = LikeWriter(base, write_token(server.data_dir, database_url), public[0], args.writes_per_s)
        writer.start()
        try:
            for name, urls in queries.items():
                if not name.startswith("list_models"):
                    continue
                res = run_load(server, f"{backend} {name} + {args.writes_per_s:g} writes/s", urls, token, args,
                               profiler, pg)
                rows.append(Row(f"[{backend}] {name} with {args.writes_per_s:g} likes/s vs none [req/s]",
                                res["rps"], results[name]["rps"], "rate", "{:.0f}"))
                rows.append(Row(f"[{backend}] {name} with {args.writes_per_s:g} likes/s p99 [ms] (vs none)",
                                res["p99"], results[name]["p99"], "time", "{:.1f}"))
        finally:
            writer.stop.set()
            writer.join()
        log(f"[{backend}] the writer made {writer.count} writes ({writer.failures} failed)")
    if args.scale_workers and args.has_workers:
        server.stop()
        scaled = HubServer(root=server.root, database_url=database_url, port=server.port,
                           serve_args=("--workers", str(args.scale_workers)))
        scaled.start()
        for name in ("healthz", "model_info"):
            res = run_load(scaled, f"{backend} {name} x{args.scale_workers} workers", queries[name], token, args,
                           profiler, pg)
            base = results[name]
            rows.append(Row(f"[{backend}] {name} with {args.scale_workers} workers vs {args.workers} [req/s]",
                            res["rps"], base["rps"], "rate", "{:.0f}"))
            rows.append(Row(f"[{backend}] {name} with {args.scale_workers} workers p99 [ms] (vs {args.workers})",
                            res["p99"], base["p99"], "time", "{:.1f}"))
        server = scaled
    notes = [
        (f"[{backend}] server: hubstead serve --workers {args.workers}"
         + (f" (then --workers {args.scale_workers})" if args.scale_workers else "")) if args.has_workers else
        f"[{backend}] server: hubstead serve (this hubstead has no --workers: one process, no scaling rows)",
        f"[{backend}] seeding {args.repos:,} repos in-process took {seed_seconds:.0f} s; {len(public):,} public; "
        f"the combined list query matches {matched} repos (first page)",
        f"[{backend}] cores used (server / {'PostgreSQL / ' if pg is not None else ''}load generator): " + "; ".join(
            f"{name} {res['server_cores']:.2f}/" + (f"{res['pg_cores']:.2f}/" if pg is not None else "")
            + f"{res['client_cores']:.2f}" for name, res in results.items()),
        f"[{backend}] errors: " + ", ".join(f"{name} {res['errors']}" for name, res in results.items()),
    ]
    server.stop()
    return rows, notes


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    # `serve --workers` (several API processes) exists from issue 22 on; older revisions get one process.
    help_text = subprocess.run([sys.executable, "-m", "hubstead.cli", "serve", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    args.has_workers = "--workers" in help_text
    os.environ.setdefault("PYTHONHASHSEED", "0")
    work = make_tempdir("hubstead-bench-listing-", args.tmp_dir)
    profiler = Profiler(args.profile)
    rows: list[Row] = []
    notes: list[str] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        pg = None
        if backend == "postgresql":
            pg = PostgresCluster(args.tmp_dir)
        elif backend != "sqlite":
            raise SystemExit(f"unknown backend {backend!r}")
        backend_rows, backend_notes = bench_backend(backend, args, work, pg, profiler)
        rows += backend_rows
        notes += backend_notes
        if pg is not None:
            pg.stop()
    notes.insert(0, f"{args.client} load generator, {args.concurrency} concurrent clients x {args.duration:.0f} s "
                    f"per endpoint (after "
                    f"{args.warmup:.0f} s warm-up); read token sent; model_info picks a random public repo")
    print_report(f"bench_listing: {args.repos:,} repos, {args.concurrency} concurrent clients", rows, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
