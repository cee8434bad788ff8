#!/usr/bin/env python
"""Spaces: a Gradio app's ``predict`` round trip through the hub's proxy vs the same app called directly.

A hub started for the run (its own data dir; ``UV_CACHE_DIR`` is kept from the environment so a warm uv cache
builds the space's environment in seconds) runs a pushed Gradio space (``gr.Interface(lambda s: s[::-1], ...)``,
Gradio 6.31.0, in its sandbox). The same process is then called two ways, in the same run, alternating in rounds so
that load from other processes falls on both alike:

- **through the hub**: ``http://hub/spaces/bench/proxy/app/gradio_api/...`` (the app route: the space and caller
  looked up, the request forwarded by ``SpaceProxy`` with the path-mode isolation policy);
- **directly**: ``http://127.0.0.1:<the space's port>/gradio_api/...`` (the port read from the hub's database).

One *predict* is Gradio's REST API as its docs give it (and what ``gradio_client`` does, less the client's own
start-up): ``POST /gradio_api/call/reverse`` with ``{"data": [text]}`` answers an event id, then ``GET
/gradio_api/call/reverse/{event_id}`` streams server-sent events until ``event: complete`` with the result (the
queue's answer). ``--clients`` concurrent clients (default 8, each its own keep-alive httpx connection pool) loop
for ``--seconds`` per round; requests per second and p50/p99 latency of whole predicts are reported for both, and
the ratio (goal: >= 0.9 of the direct requests per second, p99 within 1.2x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Row,
    add_common_args,
    hf_client_env,
    log,
    make_tempdir,
    percentile,
    pin_source,
    print_report,
)

GRADIO = "6.31.0"
APP = """
import gradio as gr
gr.Interface(lambda s: s[::-1], "text", "text", api_name="reverse").queue(default_concurrency_limit=None).launch()
"""
README = f"---\ntitle: proxy bench\nsdk: gradio\nsdk_version: {GRADIO}\napp_file: app.py\n---\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (direct, hub) alternating")
    add_common_args(parser)
    return parser.parse_args()


async def predict(client: httpx.AsyncClient, base: str, text: str) -> str:
    answer = await client.post(f"{base}/gradio_api/call/reverse", json={"data": [text]})
    answer.raise_for_status()
    event_id = answer.json()["event_id"]
    event = ""
    async with client.stream("GET", f"{base}/gradio_api/call/reverse/{event_id}") as stream:
        stream.raise_for_status()
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "complete":
                return line[5:].strip()
            elif event == "error":
                raise RuntimeError(f"the app answered an error: {line}")
    raise RuntimeError("the stream ended without a result")


async def load(base: str, clients: int, seconds: float) -> list[float]:
    """Each client predicts in a loop until ``seconds`` have passed; the latency of every whole predict."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one(index: int) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            n = 0
            while time.perf_counter() < deadline:
                text = f"client{index}-{n}"
                started = time.perf_counter()
                result = await predict(client, base, text)
                latencies.append(time.perf_counter() - started)
                assert text[::-1] in result, result
                n += 1

    await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies


def space_port(hub: HubServer, repo: str) -> int:
    namespace, name = repo.split("/")
    with sqlite3.connect(hub.data_dir / "hubstead.db") as db:
        row = db.execute(
            "select s.port from repos r join space_runtimes s on s.repo_pk = r.pk where r.namespace = ? and r.name = ?",
            (namespace, name),
        ).fetchone()
    return int(row[0])


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-space-proxy-", args.tmp_dir)
    env = {"HUBSTEAD_SPACES_DEFAULT_SLEEP": "3600"}
    if os.environ.get("UV_CACHE_DIR"):
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    hub = HubServer(root=work / "hub", extra_env=env)
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    repo = "bench/proxy"
    api.create_repo(repo, repo_type="space", space_sdk="gradio")
    for path, content in (("README.md", README), ("app.py", APP)):
        api.upload_file(path_or_fileobj=content.encode(), path_in_repo=path, repo_id=repo, repo_type="space")
    runtime = api.wait_for_space(repo, timeout=900)
    assert runtime.stage == "RUNNING", runtime.raw
    direct = f"http://127.0.0.1:{space_port(hub, repo)}"
    through = f"{hub.url}/spaces/{repo}/app"
    policy = httpx.get(f"{through}/", timeout=30).headers.get("content-security-policy", "")
    assert policy.startswith("sandbox"), "the hub's answer did not come through the isolating proxy"
    asyncio.run(load(direct, args.clients, 2))  # warm both paths (imports, the queue, pools)
    asyncio.run(load(through, args.clients, 2))
    results: dict[str, list[float]] = {"direct": [], "hub": []}
    elapsed = {"direct": 0.0, "hub": 0.0}
    for round_ in range(args.rounds):
        for name, base in (("direct", direct), ("hub", through)) if round_ % 2 == 0 else (("hub", through),
                                                                                       ("direct", direct)):
            started = time.perf_counter()
            latencies = asyncio.run(load(base, args.clients, args.seconds))
            elapsed[name] += time.perf_counter() - started
            results[name] += latencies
            log(f"round {round_ + 1} {name}: {len(latencies) / args.seconds:.1f} predicts/s, "
                f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    rps = {name: len(values) / elapsed[name] for name, values in results.items()}
    note = f"{args.clients} clients, {args.rounds} x {args.seconds:.0f} s each way; baseline: the app's port directly"
    rows = [
        Row(f"Gradio predict at {args.clients} clients (predicts/s)", rps["hub"], rps["direct"], note=note,
            fmt="{:.1f}"),
        Row("Gradio predict p50 (ms)", percentile(results["hub"], 0.5) * 1000,
            percentile(results["direct"], 0.5) * 1000, kind="time", fmt="{:.1f}"),
        Row("Gradio predict p99 (ms)", percentile(results["hub"], 0.99) * 1000,
            percentile(results["direct"], 0.99) * 1000, kind="time", fmt="{:.1f}"),
    ]  # fmt: skip
    print_report("Spaces: a Gradio predict through the hub's proxy vs directly", rows, args=args)
    hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
