#!/usr/bin/env python
"""Web page render latency under concurrent load, with N repos, on SQLite and PostgreSQL.

For each backend: seed N model repos (default 10,000) with ``bench_listing.seed`` (hubstead's own Python API,
in-process; a share of them, default 50%, get a README with a YAML card: pipeline_tag, library_name, license,
languages, tags, datasets, base_model), then add what the pages read that ``bench_listing`` leaves out:

* daily download / like counts (``repo_daily_stats``, last 30 days) for every repo, so that the trending and
  downloads sorts have real values to compute, and all-time downloads;
* for ``--targets`` carded public repos (default 40), the repos whose model and files pages are fetched: a
  real-sized model card body (headings, a table, Python and shell code blocks, a formula, a list: ~5 KB), and a
  history of ``--history`` commits (default 30) touching config / tokenizer files, LFS pointers to weights and an
  ``onnx/`` folder, like a real model repo.

Then ``hubstead serve`` starts, and each page gets ``--concurrency`` anonymous clients (default 8; asyncio tasks,
one keep-alive connection each) for ``--duration`` seconds (default 10) after a 1 s warm-up, and before that one
client alone for a third of that (the latency a single visitor sees on an idle server):

* ``GET /healthz``: the framework floor;
* ``GET /api/models?limit=30``: the JSON API for the same 30 repos a list page shows, the baseline of every page;
* pages: ``/``, ``/models`` (trending), ``/models?task=text-classification``,
  ``/models?search=bert&sort=downloads``, ``/models?p=50``, a model page ``/{ns}/{name}`` (one of the target
  repos at random per request) and its files page ``/{ns}/{name}/tree/main``.

Prints, per backend: p50 / p99 latency, requests/s, the baseline's requests/s and the ratio (page req/s over
baseline req/s: 1.0 = as fast as the JSON API, lower = slower), single-client p50 / p99, and the page size. Goal:
pages well under a second, p99 < 500 ms under the concurrent load.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import (  # noqa: E402
    HubServer,
    PostgresCluster,
    ProcStats,
    Profiler,
    RawClient,
    add_common_args,
    log,
    machine_info,
    make_tempdir,
    percentile,
    pin_source,
)
from bench_listing import FILTER, SEARCH, seed  # noqa: E402

GOAL_P99_MS = 500.0

RICH_BODY = """
# {name}

{name} is a {task} model fine-tuned from a {family} checkpoint. This card follows the usual layout of a
model card on the Hub: what it is, how to use it, how it was trained and evaluated, and its limits.

## Model details

| property | value |
|---|---|
| architecture | {family} |
| parameters | {params}M |
| context length | {ctx} tokens |
| license | see the header |
| languages | see the header |

## How to use

```python
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
model = AutoModel.from_pretrained("{repo_id}")
inputs = tokenizer("Hello, world!", return_tensors="pt")
outputs = model(**inputs)
print(outputs.last_hidden_state.shape)
```

Or from the command line:

```bash
pip install -U transformers accelerate
huggingface-cli download {repo_id} --local-dir ./model
python -m transformers.cli run --task {task} --model ./model
```

## Training

The model was trained for {epochs} epochs with AdamW (learning rate $\\eta = 2 \\times 10^{{-5}}$, linear decay,
warm-up over the first 6% of steps) and the loss

$$
\\mathcal{{L}} = -\\frac{{1}}{{N}} \\sum_{{i=1}}^{{N}} \\log p_\\theta(y_i \\mid x_i)
$$

on a mix of public data sets. Mixed precision (bf16), gradient accumulation of 8, batch size 256.

## Evaluation

| data set | metric | score |
|---|---|---|
| glue/sst2 | accuracy | 0.{s1} |
| glue/mnli | accuracy | 0.{s2} |
| squad | F1 | 0.{s3} |
| imdb | accuracy | 0.{s4} |

## Limitations and bias

* It reflects the biases of its training data; check outputs before relying on them.
* It is not meant for medical, legal or financial advice.
* Long inputs are truncated to the context length.

## Citation

```bibtex
@misc{{{family}{params},
  title  = {{{name}}},
  author = {{Bench, A. and Hubstead, B.}},
  year   = {{2024}},
}}
```
"""

HISTORY_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "vocab.txt",
    "model.safetensors",
    "pytorch_model.bin",
    "onnx/model.onnx",
    "onnx/config.json",
]
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=10_000, help="model repos to seed (default 10,000)")
    parser.add_argument("--card-fraction", type=float, default=0.5, help="share of repos given a YAML card")
    parser.add_argument("--private-fraction", type=float, default=0.03)
    parser.add_argument("--targets", type=int, default=40,
                        help="carded public repos given a full card and history; the model/files pages hit these")
    parser.add_argument("--history", type=int, default=30, help="commits in each target repo's history")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per page (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load first")
    parser.add_argument("--serial", type=float, default=None,
                        help="seconds of single-client requests per page (default: a third of --duration; 0: skip)")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: raw asyncio HTTP/1.1 (bench_listing's, light; default) or "
                             "httpx.AsyncClient (~0.5 ms of CPU per request, which on 2 cores the server pays for)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--search", default=SEARCH, help=f"search term of the search page (default {SEARCH!r})")
    parser.add_argument("--task", default=FILTER, help=f"task of the task page (default {FILTER!r})")
    parser.add_argument("--seed-fsync", action="store_true",
                        help="keep libgit2's fsync on while seeding (off by default: seeding is not measured)")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes of the server (hubstead serve --workers, where it has it; default 1: "
                             "the CPU-per-request column counts the one server process)")
    parser.add_argument("--quick", action="store_true", help="1,000 repos, 3 s per page")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.repos, args.duration, args.warmup = 1000, 3.0, 0.5
        args.targets, args.history = min(args.targets, 10), min(args.history, 10)
    if args.serial is None:
        args.serial = args.duration / 3
    return args


# --- seeding what bench_listing leaves out --------------------------------------------------------------------


def add_stats(data_dir: Path, database_url: str | None, rng: random.Random) -> dict[str, int]:
    """Daily downloads/likes over the last 30 days for every repo (what trending and downloads sort by)."""
    from sqlalchemy import insert, select, update

    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.repos.models import Repo, RepoDailyStat
    from hubstead.repos.stats import today

    hub = Hub.from_settings(load_settings(data_dir=data_dir, database_url=database_url))
    day0 = today()
    rows: list[dict] = []
    totals: dict[int, int] = {}
    with hub.db.session() as session:
        pks = list(session.scalars(select(Repo.pk).order_by(Repo.pk)))
        taken = set(session.execute(select(RepoDailyStat.repo_pk, RepoDailyStat.day)).all())
        for pk in pks:
            popularity = rng.paretovariate(1.1)  # a few repos get most of the traffic
            for back in rng.sample(range(30), rng.randint(0, 12)):
                if (pk, day0 - _dt.timedelta(days=back)) in taken:  # seeding's own likes may have made a row
                    continue
                downloads = int(popularity * rng.randint(1, 50))
                likes = int(rng.random() < 0.1 * min(popularity, 10))
                rows.append({"repo_pk": pk, "day": day0 - _dt.timedelta(days=back), "downloads": downloads,
                             "likes": likes})
                totals[pk] = totals.get(pk, 0) + downloads
        for start in range(0, len(rows), 5000):
            session.execute(insert(RepoDailyStat), rows[start:start + 5000])
        for pk, total in totals.items():
            session.execute(update(Repo).where(Repo.pk == pk).values(downloads_all_time=total * rng.randint(1, 5)))
    hub.db.engine.dispose()
    return {"stat_rows": len(rows), "repos_with_downloads": len(totals)}


def enrich_targets(data_dir: Path, database_url: str | None, count: int, history: int,
                   rng: random.Random) -> list[str]:
    """Give ``count`` carded public repos a full card and a ``history``-commit history; returns their ids."""
    import hashlib
    import json

    from sqlalchemy import select

    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.repos.commits import commit_files
    from hubstead.repos.git import Author
    from hubstead.repos.models import Repo
    from hubstead.repos.service import open_git

    hub = Hub.from_settings(load_settings(data_dir=data_dir, database_url=database_url))
    targets: list[str] = []
    with hub.db.session() as session:
        carded = list(session.scalars(
            select(Repo).where(Repo.repo_type == "model", Repo.private.is_(False), Repo.pipeline_tag.is_not(None))
            .order_by(Repo.pk)
        ))
        for repo in rng.sample(carded, min(count, len(carded))):
            git = open_git(hub, repo)
            head = git.resolve("main")
            readme = git.read_blob(git.entry(head, "README.md").id).decode()
            front, _, _ = readme.partition("\n---\n")
            family = repo.repo_id.split("/")[1].split("-")[0]
            body = RICH_BODY.format(
                name=repo.repo_id.split("/")[1], repo_id=repo.repo_id, task=repo.pipeline_tag, family=family,
                params=rng.choice([110, 350, 1300, 7000]), ctx=rng.choice([512, 2048, 8192]),
                epochs=rng.randint(1, 5), s1=rng.randint(80, 99), s2=rng.randint(70, 95), s3=rng.randint(70, 95),
                s4=rng.randint(85, 99),
            )
            card = f"{front}\n---\n{body}"
            author = Author(name=repo.namespace, email=f"{repo.namespace}@bench")
            lfs: dict[str, int] = {}
            for step in range(history):
                path = HISTORY_FILES[step % len(HISTORY_FILES)]
                if path.endswith(LFS_SUFFIXES):
                    payload = f"{repo.repo_id} {path} {step}".encode()
                    oid, size = hashlib.sha256(payload).hexdigest(), rng.randint(10**8, 5 * 10**9)
                    data = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()
                    lfs = {oid: size}
                else:
                    data = json.dumps({"step": step, "path": path, "padding": "x" * rng.randint(100, 4000)}).encode()
                    lfs = {}
                files = [(path, git.write_blob(data))]
                if step == history - 1:
                    files.append(("README.md", git.write_blob(card.encode())))
                commit_files(hub, session, repo=repo, branch="main", files=files, lfs_objects=lfs,
                             message=f"Update {path}" if step >= len(HISTORY_FILES) else f"Add {path}", author=author)
            if history == 0:
                commit_files(hub, session, repo=repo, branch="main", lfs_objects={}, message="Full model card",
                             files=[("README.md", git.write_blob(card.encode()))], author=author)
            targets.append(repo.repo_id)
    hub.db.engine.dispose()
    return targets


# --- load -----------------------------------------------------------------------------------------------------


async def _load(urls: list[str], concurrency: int, duration: float, warmup: float, client_kind: str) -> dict:
    """``concurrency`` anonymous clients, each a keep-alive connection, GET a random one of ``urls`` in a loop."""
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    statuses: dict[int, int] = {}
    parsed = httpx.URL(urls[0])
    raw_requests = [
        (f"GET {httpx.URL(u).raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
         f"Accept: text/html,*/*\r\nUser-Agent: hubstead-bench\r\n\r\n").encode()
        for u in urls
    ]
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(index)
        client = None
        raw = None
        if client_kind == "httpx":
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                                       timeout=120, headers={"accept": "text/html,*/*"})
        else:
            raw = RawClient(parsed.host, parsed.port)
        try:
            while time.perf_counter() < stop_at:
                pick = rng.randrange(len(urls))
                started = time.perf_counter()
                size = 0
                try:
                    if client is not None:
                        response = await client.get(urls[pick])
                        size = len(await response.aread())
                        status = response.status_code
                    else:
                        status, body = await asyncio.wait_for(raw.request(raw_requests[pick]), 120)
                        size = len(body)
                    ok = status == 200
                    statuses[status] = statuses.get(status, 0) + 1
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    ok = False
                    if raw is not None:
                        await raw.close()
                ended = time.perf_counter()
                if started >= measure_from and ended <= stop_at:
                    if ok:
                        latencies.append(ended - started)
                        sizes.append(size)
                    else:
                        errors += 1
        finally:
            if client is not None:
                await client.aclose()
            if raw is not None:
                await raw.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    return {"rps": len(latencies) / duration, "p50": p50, "p99": p99,
            "max": max(latencies) * 1000 if latencies else float("nan"), "n": len(latencies), "errors": errors,
            "statuses": statuses, "kb": (sum(sizes) / len(sizes) / 1024) if sizes else 0.0}


def db_cpu(pg: PostgresCluster | None) -> dict[int, float]:
    """CPU seconds of the PostgreSQL postmaster and its backends, by pid (empty for SQLite: it runs in the server)."""
    if pg is None:
        return {}
    import psutil

    try:
        postmaster = psutil.Process(int((pg.root / "data" / "postmaster.pid").read_text().split()[0]))
        out = {}
        for proc in [postmaster, *postmaster.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        return out
    except (OSError, ValueError, psutil.Error):
        return {}


def measure(server: HubServer, name: str, urls: list[str], args: argparse.Namespace, profiler: Profiler,
            pg: PostgresCluster | None) -> dict:
    serial = None
    if args.serial > 0:
        serial = asyncio.run(_load(urls, 1, args.serial, min(args.warmup, 0.5), args.client))
    db_before = db_cpu(pg)
    before = ProcStats.of(server.pid)
    client_before = time.process_time()
    tag = f"{server.root.name}_{name}".replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "-")
    with profiler.phase(tag, server.pid):
        result = asyncio.run(_load(urls, args.concurrency, args.duration, args.warmup, args.client))
    used = ProcStats.of(server.pid) - before
    db_after = db_cpu(pg)
    db_used = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items())
    result["server_cores"] = used.cpu / (args.duration + args.warmup)
    result["client_cores"] = (time.process_time() - client_before) / (args.duration + args.warmup)
    result["serial"] = serial
    # CPU time the server spends per request (cores x wall / requests) — the cost that does not depend on load.
    total = result["n"] * (args.duration + args.warmup) / args.duration
    result["cpu_ms"] = used.cpu * 1000 / total if total else float("nan")
    result["db_cpu_ms"] = db_used * 1000 / total if total and pg is not None else None
    log(f"  {name}: {result['rps']:.1f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms"
        + (f" (1 client: p50 {serial['p50']:.1f}, p99 {serial['p99']:.1f})" if serial else "")
        + f", {result['kb']:.1f} KiB, server {result['server_cores']:.2f} cores, {result['cpu_ms']:.1f} ms CPU/req"
        + (f" (+ PostgreSQL {result['db_cpu_ms']:.1f} ms)" if result["db_cpu_ms"] is not None else "") + ", "
        f"load gen {result['client_cores']:.2f} cores, errors {result['errors']}, statuses {result['statuses']}")
    return result


def bench_backend(backend: str, args: argparse.Namespace, work: Path, pg: PostgresCluster | None,
                  profiler: Profiler) -> tuple[list[tuple[str, str, dict]], list[str]]:
    database_url = pg.new_database() if pg is not None else None
    serve_args = ("--workers", str(args.workers)) if args.has_workers else ()
    server = HubServer(root=work / backend, database_url=database_url, serve_args=serve_args)
    server.data_dir.mkdir(parents=True)

    log(f"[{backend}] seeding {args.repos} repos in-process (bench_listing.seed)")
    started = time.perf_counter()
    _, public = seed(server.data_dir, database_url, args.repos, args)
    seed_seconds = time.perf_counter() - started
    rng = random.Random(7)
    started = time.perf_counter()
    stats = add_stats(server.data_dir, database_url, rng)
    targets = enrich_targets(server.data_dir, database_url, args.targets, args.history, rng)
    extra_seconds = time.perf_counter() - started
    log(f"[{backend}] seeded in {seed_seconds:.0f} s + {extra_seconds:.0f} s (stats: {stats['stat_rows']} rows; "
        f"{len(targets)} target repos with {args.history} commits); starting the server")
    server.start()
    log(f"[{backend}] server up in {server.startup_seconds:.1f} s (pid {server.pid}, log {server.log_path})")

    base = server.url
    probe = httpx.get(f"{base}/models", params={"search": args.search, "sort": "downloads"}, timeout=120)
    probe.raise_for_status()
    task_total = httpx.get(f"{base}/api/models", params={"filter": args.task, "limit": 1000}, timeout=120).json()
    pages: list[tuple[str, str, list[str]]] = [
        ("GET /healthz (framework floor)", "floor", [f"{base}/healthz"]),
        ("GET /api/models?limit=30 (JSON baseline)", "api", [f"{base}/api/models?limit=30"]),
        ("/ (home)", "page", [f"{base}/"]),
        ("/models (trending)", "page", [f"{base}/models"]),
        (f"/models?task={args.task}", "page", [f"{base}/models?task={args.task}"]),
        (f"/models?search={args.search}&sort=downloads", "page",
         [f"{base}/models?search={args.search}&sort=downloads"]),
        ("/models?p=50", "page", [f"{base}/models?p=50"]),
        ("/{ns}/{name} (model page, full card)", "page", [f"{base}/{repo_id}" for repo_id in targets]),
        ("/{ns}/{name}/tree/main (files page)", "page", [f"{base}/{repo_id}/tree/main" for repo_id in targets]),
    ]
    for _, _, urls in pages:  # every URL answers 200 before anything is timed
        for url in urls[:3]:
            response = httpx.get(url, timeout=120)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:500]}")
    results: list[tuple[str, str, dict]] = []
    for name, kind, urls in pages:
        results.append((name, kind, measure(server, f"{backend} {name.split(' (')[0]}", urls, args, profiler, pg)))
    notes = [
        f"[{backend}] seeding: {args.repos:,} repos ({len(public):,} public, ~{args.card_fraction:.0%} with a YAML "
        f"card) in {seed_seconds:.0f} s, then {stats['stat_rows']:,} daily-stat rows and {len(targets)} target repos "
        f"(~5 KB card, {args.history} commits, {len(HISTORY_FILES)} files incl. LFS pointers and a folder) in "
        f"{extra_seconds:.0f} s; server start {server.startup_seconds:.1f} s; task page matches "
        f"{len(task_total)} repos",
        f"[{backend}] CPU per request [ms] under load, hubstead process"
        + (" + PostgreSQL processes" if pg is not None else " (SQLite runs inside it)") + ": " + "; ".join(
            f"{name.split(' (')[0]} {res['cpu_ms']:.1f}"
            + (f" + {res['db_cpu_ms']:.1f}" if res["db_cpu_ms"] is not None else "") for name, _, res in results),
        f"[{backend}] cores used (server / load generator): " + "; ".join(
            f"{name.split(' (')[0]} {res['server_cores']:.2f}/{res['client_cores']:.2f}" for name, _, res in results),
        f"[{backend}] errors (non-200 or failed): " + ", ".join(
            f"{name.split(' (')[0]} {res['errors']}" for name, _, res in results),
    ]
    server.stop()
    return results, notes


def render(backend: str, results: list[tuple[str, str, dict]], args: argparse.Namespace) -> str:
    floor = next(res for _, kind, res in results if kind == "floor")
    api = next(res for _, kind, res in results if kind == "api")
    header = ("page", "p50 ms", "p99 ms", "req/s", "baseline req/s", "ratio", "1-client p50 / p99 ms",
              "CPU ms/req", "KiB", f"p99 < {GOAL_P99_MS:.0f} ms")
    body = []
    for name, kind, res in results:
        base = None if kind == "floor" else (floor if kind == "api" else api)
        serial = res["serial"]
        body.append((
            name,
            f"{res['p50']:.1f}",
            f"{res['p99']:.1f}",
            f"{res['rps']:.1f}",
            "—" if base is None else f"{base['rps']:.1f}",
            "—" if base is None or not base["rps"] else f"{res['rps'] / base['rps']:.2f}",
            "—" if serial is None else f"{serial['p50']:.1f} / {serial['p99']:.1f}",
            f"{res['cpu_ms'] + (res['db_cpu_ms'] or 0.0):.1f}",
            f"{res['kb']:.1f}",
            "" if kind != "page" else ("yes" if res["p99"] < GOAL_P99_MS else "**NO**"),
        ))
    widths = [max(len(header[i]), *(len(r[i]) for r in body)) for i in range(len(header))]
    out = [f"### [{backend}] {args.repos:,} repos, {args.concurrency} concurrent clients x {args.duration:.0f} s",
           "", "| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in body:
        out.append("| " + r[0].ljust(widths[0]) + " | "
                   + " | ".join(r[i].rjust(widths[i]) for i in range(1, len(header))) + " |")
    return "\n".join(out)


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    help_text = subprocess.run([sys.executable, "-m", "hubstead.cli", "serve", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    args.has_workers = "--workers" in help_text  # serve --workers exists from issue 22 on
    os.environ.setdefault("PYTHONHASHSEED", "0")
    work = make_tempdir("hubstead-bench-pages-", args.tmp_dir)
    profiler = Profiler(args.profile)
    tables: list[str] = []
    notes: list[str] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        pg = None
        if backend == "postgresql":
            pg = PostgresCluster(args.tmp_dir)
        elif backend != "sqlite":
            raise SystemExit(f"unknown backend {backend!r}")
        results, backend_notes = bench_backend(backend, args, work, pg, profiler)
        tables.append(render(backend, results, args))
        notes += backend_notes
        if pg is not None:
            pg.stop()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    print()
    print(f"## bench_pages: {args.repos:,} repos\n")
    print("\n\n".join(tables))
    print()
    print(f"- {args.client} load generator, anonymous (no cookie, no token); {args.concurrency} clients x "
          f"{args.duration:.0f} s per row after {args.warmup:.1f} s warm-up; '1-client' = one client alone for "
          f"{args.serial:.1f} s just before; model/files rows pick one of the target repos at random per request")
    print("- CPU ms/req: CPU time of the hubstead process (plus PostgreSQL's processes on PostgreSQL) over the "
          "loaded run / requests served: what a page costs, independent of how busy the machine was")
    print("- baseline = GET /api/models?limit=30 (the same 30 repos as JSON) for page rows, /healthz for the API row; "
          "ratio = row req/s / baseline req/s (1.0 = parity, lower = slower)")
    for note in notes:
        print(f"- {note}")
    print()
    print(f"_{stamp}; {machine_info()}; {_common._CODE_NOTE or 'hubstead: working tree'}_")
    print(f"_flags: {' '.join(sys.argv[1:]) or '(defaults)'}_")
    if _common.FOREIGN is not None:
        print(f"_{_common.FOREIGN.summary()}_")
    for name, summary in profiler.summaries.items():
        print(f"\n<details><summary>py-spy {name}</summary>\n\n```\n{summary}\n```\n</details>")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
