#!/usr/bin/env python
"""A leaderboard with 10,000 results on SQLite: the API and the page, p50/p99 over 200 requests each, against
baselines measured in the same run.

Seed (in-process, not measured): users ``bench``, ``alice``, ``bob``, ``carol`` and the org ``benchorg``; one
benchmark dataset ``bench/intent`` (a real repo with a committed ``eval.yaml``, its ``eval_benchmarks`` row) and
N model repos (default 10,000) whose rows are inserted directly (``repos`` and ``eval_results``: one result each,
as the index leaves them; every model repo's git directory is a link to one empty bare repo, so the server's
start-up reconciliation finds nothing to do). About 30% declare a base model, 3% are private, 1% of the entries
are invalid, 20% verified; values, licenses, sizes and dates are random (seeded).

Then ``hubstead serve`` starts and one keep-alive client (a read token of ``bench``, so the visibility filter has
namespaces to match) sends each request 200 times after 10 unmeasured ones:

* baseline ``/api/models?limit=100``: the model listing (one indexed query, 100 rows, JSON);
* ``/api/datasets/bench/intent/leaderboard``: what ``get_dataset_leaderboard`` sends (base models only: ~6,800
  rows in the answer), and with ``base_model=false`` (~9,700 rows);
* ``/api/leaderboards?benchmarks=bench/intent&method=borda``: the aggregate board, 100 rows a page;
* the page ``/datasets/bench/intent/leaderboard`` (100 rows, the scatter) when the hub has it.

In-process, on the same database: the board's raw SELECT alone (``leaderboard._results``: the join, the
visibility filter, no ranking) against the whole ``benchmark_board`` (the same query, then the ranking), to show
where the time goes. Goal: p99 ≤ 200 ms for the leaderboard page and API.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HubServer, Row, add_common_args, log, make_tempdir, percentile, pin_source, print_report  # noqa: E402

USERS = ["bench", "alice", "bob", "carol"]
ORG = "benchorg"
BENCHMARK = "bench/intent"
LICENSES = ["mit", "apache-2.0", "cc-by-4.0", "llama3", "other", None]
EVAL_YAML = """name: Intent accuracy (10,000 results)
evaluation_framework: hubstead
tasks:
  - id: acc
    split: test
    metric: accuracy
    task_type: text-classification
    text_column: text
    label_column: label
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=10_000, help="model repos with a result (default 10000)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per endpoint (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 results, 30 requests")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.results, args.requests = 500, 30
    return args


def seed(data_dir: Path, n: int) -> str:
    """Fill the tables in-process; returns a read token of ``bench``."""
    import pygit2
    from sqlalchemy import insert

    from hubstead.auth.service import Principal, create_org, create_token, create_user
    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.db import utcnow
    from hubstead.evals.benchmark import parse_benchmark
    from hubstead.evals.models import EvalBenchmark, EvalResult
    from hubstead.repos.commits import commit_files
    from hubstead.repos.git import Author, repo_path
    from hubstead.repos.models import Repo
    from hubstead.repos.service import create_repo, open_git

    pygit2.settings.enable_fsync_gitdir(False)
    rng = random.Random(21)
    hub = Hub.from_settings(load_settings(data_dir=data_dir))
    with hub.db.session() as session:
        users = {name: create_user(session, name=name) for name in USERS}
        create_org(session, name=ORG, owner=users["bench"])
        token = create_token(session, user=users["bench"], role="read")
        owner = Principal(user=users["bench"], token_role="write")
        dataset, _ = create_repo(hub, session, owner, repo_id=BENCHMARK, repo_type="dataset", private=False)
        git = open_git(hub, dataset)
        blob = git.write_blob(EVAL_YAML.encode())
        commit_files(hub, session, repo=dataset, branch="main", files=[("eval.yaml", blob)], lfs_objects={},
                     message="eval.yaml", author=Author(name="bench", email="bench@bench"))
        session.flush()
        session.add(EvalBenchmark(repo_pk=dataset.pk, name="Intent accuracy", framework="hubstead",
                                  spec=parse_benchmark(EVAL_YAML).as_json(), error=None, sha=dataset.sha or ""))
    empty = data_dir / "empty-model.git"
    pygit2.init_repository(str(empty), bare=True)
    now = utcnow()
    batch = 1000
    for start in range(0, n, batch):
        repos, keys = [], []
        for i in range(start, min(n, start + batch)):
            namespace = ORG if rng.random() < 0.1 else rng.choice(USERS)
            name = f"model-{i}"
            key = uuid.uuid4().hex
            link = repo_path(hub.settings.repos_dir, key)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(empty, target_is_directory=True)
            base = [f"{rng.choice(USERS)}/base-{rng.randint(0, 99)}"] if rng.random() < 0.3 else []
            repos.append({"repo_type": "model", "namespace": namespace, "name": name,
                          "id_key": f"{namespace}/{name}".lower(), "storage_key": key,
                          "private": rng.random() < 0.03, "created_at": now, "last_modified": now, "sha": None,
                          "downloads_all_time": 0, "likes": 0, "tags": [], "languages": [], "base_models": base,
                          "datasets": [], "used_storage": 0, "license": rng.choice(LICENSES)})
            keys.append(key)
        with hub.db.session() as session:
            session.execute(insert(Repo), repos)
            session.flush()
            from sqlalchemy import select

            pks = dict(session.execute(select(Repo.storage_key, Repo.pk).where(Repo.storage_key.in_(keys))).all())
            results = []
            for key in keys:
                invalid = rng.random() < 0.01
                verified = rng.random() < 0.2
                results.append({
                    "model_repo_pk": pks[key], "filename": ".eval_results/intent.yaml", "position": 0,
                    "dataset_id": BENCHMARK, "task_id": "acc",
                    "value": None if invalid else round(rng.betavariate(5, 2), 4),
                    "verified": verified, "stale": verified and rng.random() < 0.1,
                    "source": {"url": "https://example.org/run", "name": "bench"},
                    "date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "notes": None,
                    "error": "value must be a number, not a string" if invalid else None, "pull_request": None,
                    "model_params": int(10 ** rng.uniform(6, 10)), "entry": None,
                })
            session.execute(insert(EvalResult), results)
        log(f"  seeded {min(n, start + batch)}/{n}")
    hub.db.engine.dispose()
    return token


def in_process(data_dir: Path, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Milliseconds of the raw SELECT alone, of the whole board and of its first 100 rows (what the page asks),
    in this process, on the same database."""
    from hubstead.auth.models import User
    from hubstead.auth.service import Principal
    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.evals import leaderboard

    hub = Hub.from_settings(load_settings(data_dir=data_dir))
    raw, board, first_page = [], [], []
    with hub.db.session() as session:
        from sqlalchemy import select

        principal = Principal(user=session.scalar(select(User).where(User.name_key == "bench")), token_role="read")
        for i in range(repeats + 5):
            t0 = time.perf_counter()
            leaderboard._results(session, principal, [BENCHMARK])
            t1 = time.perf_counter()
            leaderboard.benchmark_board(hub, session, principal, BENCHMARK, base_model_only=True, per_page=None)
            t2 = time.perf_counter()
            leaderboard.benchmark_board(hub, session, principal, BENCHMARK, per_page=100)
            t3 = time.perf_counter()
            if i >= 5:
                raw.append((t1 - t0) * 1000)
                board.append((t2 - t1) * 1000)
                first_page.append((t3 - t2) * 1000)
    hub.db.engine.dispose()
    return raw, board, first_page


def measure(client: httpx.Client, url: str, n: int, warmup: int) -> tuple[list[float], int]:
    latencies = []
    size = 0
    for i in range(n + warmup):
        t0 = time.perf_counter()
        answer = client.get(url)
        elapsed = (time.perf_counter() - t0) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
        size = len(answer.content)
        if i >= warmup:
            latencies.append(elapsed)
    return latencies, size


def main() -> None:
    args = parse_args()
    pin_source(args.rev)
    root = make_tempdir("bench-leaderboard-", args.tmp_dir)
    server = HubServer(root=root)
    server.data_dir.mkdir(parents=True)
    log(f"seeding {args.results} results")
    t0 = time.perf_counter()
    token = seed(server.data_dir, args.results)
    log(f"seeded in {time.perf_counter() - t0:.0f} s")
    raw_ms, board_ms, page_ms = in_process(server.data_dir, args.requests // 4)
    server.start()
    log(f"server up in {server.startup_seconds:.1f} s")
    load_before = os.getloadavg()
    rows: list[Row] = []
    stats: dict[str, tuple[float, float, int]] = {}
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=60) as client:
        targets = {
            "models": "/api/models?limit=100",
            "api": f"/api/datasets/{BENCHMARK}/leaderboard",
            "api_all": f"/api/datasets/{BENCHMARK}/leaderboard?base_model=false",
            "aggregate": f"/api/leaderboards?benchmarks={BENCHMARK}&method=borda",
            "page": f"/datasets/{BENCHMARK}/leaderboard",
            "dataset_page": f"/datasets/{BENCHMARK}",
        }
        for key, url in targets.items():
            try:
                latencies, size = measure(client, url, args.requests, args.warmup)
            except RuntimeError as exc:
                log(f"skipped {key}: {exc}")
                continue
            stats[key] = (percentile(latencies, 0.5), percentile(latencies, 0.99), size)
            log(f"{url}: p50 {stats[key][0]:.1f} ms, p99 {stats[key][1]:.1f} ms, {size} bytes")
        entries = len(client.get(targets["api"]).json())
        entries_all = len(client.get(targets["api_all"]).json())
    load_after = os.getloadavg()
    server.stop()
    base50, base99, _ = stats["models"]
    for key, label, baseline in (
        ("api", f"leaderboard API ({entries} rows) ms", "models"),
        ("api_all", f"leaderboard API, base_model=false ({entries_all} rows) ms", "models"),
        ("aggregate", "aggregate board (borda, 100 a page) ms", "models"),
        ("page", "leaderboard page (100 rows, scatter) ms", "dataset_page"),
    ):
        if key not in stats or baseline not in stats:
            continue
        p50, p99, _size = stats[key]
        b50, b99, _ = stats[baseline]
        rows.append(Row(f"{label}: p50", p50, b50, kind="time", fmt="{:.1f}"))
        rows.append(Row(f"{label}: p99", p99, b99, kind="time", fmt="{:.1f}",
                        note=f"goal ≤ 200 ms: {'met' if p99 <= 200 else 'NOT met'}"))
    rows.append(Row("in-process board (rank) vs raw SELECT: p50 ms", percentile(board_ms, 0.5),
                    percentile(raw_ms, 0.5), kind="time", fmt="{:.1f}"))
    rows.append(Row("in-process board, first 100 rows (the page's) vs raw SELECT: p50 ms", percentile(page_ms, 0.5),
                    percentile(raw_ms, 0.5), kind="time", fmt="{:.1f}"))
    notes = [
        f"baseline of the API rows: GET /api/models?limit=100 (p50 {base50:.1f} ms, p99 {base99:.1f} ms), same server",
        "baseline of the page row: the dataset's card page /datasets/bench/intent, same server",
        "last rows: in this process, the board's query alone (no ranking) vs the whole benchmark_board (base "
        "models only, every row) and vs its first page of 100 rows (every model ranked, 100 rows made)",
        "load average (1, 5, 15 min) when the server started: " + ", ".join(f"{x:.2f}" for x in load_before)
        + "; when it stopped: " + ", ".join(f"{x:.2f}" for x in load_after) + " (2 cores)",
        f"{args.results} results, {args.requests} requests each after {args.warmup} unmeasured, one keep-alive "
        "client, a read token (visibility filter with namespaces); SQLite",
    ]
    print_report("Leaderboard: 10,000 results on SQLite", rows, notes, args)


if __name__ == "__main__":
    main()
