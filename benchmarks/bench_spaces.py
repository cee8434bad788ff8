#!/usr/bin/env python
"""Spaces: how long from a push to a running app, what a sleeping space costs, how many idle spaces a host keeps.

Against a hub started for the run (its own data dir, so its own environment store and uv cache), through the real
client (``huggingface_hub``), each with a baseline measured in the same run:

1. **Push to RUNNING, cold**: a Gradio space whose environment does not exist yet (the hub's uv cache starts
   empty: packages come from the index), from ``upload_folder`` to ``get_space_runtime().stage == "RUNNING"``,
   vs doing the same by hand in the same run: ``uv venv`` + ``uv pip install gradio==V`` into a fresh dir with an
   empty cache, then ``python app.py`` until its port answers.
2. **Push to RUNNING, warm**: a second space with the same requirements (its environment is reused) vs starting
   ``python app.py`` from the existing environment by hand until its port answers (the app's own start).
3. **A sleeping space's memory**: processes and resident memory of a space after it went to sleep (goal: none),
   vs the same space running.
4. **Idle spaces per host**: the memory of one idle running Gradio space (its control group, or its process
   tree), and how many fit in 24 GiB.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Row,
    add_common_args,
    hf_client_env,
    human_bytes,
    log,
    make_tempdir,
    pin_source,
    print_report,
)

GRADIO = "6.31.0"
APP = """
import gradio as gr
gr.Interface(lambda s: s[::-1], "text", "text", api_name="reverse").launch()
"""


def readme(name: str) -> str:
    return f"---\ntitle: {name}\nsdk: gradio\nsdk_version: {GRADIO}\napp_file: app.py\n---\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sleep-seconds", type=int, default=15, help="the hub's default sleep time for step 3")
    add_common_args(parser)
    return parser.parse_args()


def wait_running(api, repo: str, timeout: float = 900) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        runtime = api.get_space_runtime(repo)
        if runtime.stage == "RUNNING":
            return time.perf_counter() - started
        if runtime.stage.endswith("ERROR"):
            raise RuntimeError(f"{repo}: {runtime.stage}: {runtime.raw.get('errorMessage')}")
        time.sleep(0.1)
    raise RuntimeError(f"{repo} did not run within {timeout} s")


def push(api, folder: Path, repo: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    api.create_repo(repo, repo_type="space", space_sdk="gradio")
    api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="space")
    return (time.perf_counter() - started) + wait_running(api, repo)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_until_port(python: str, app: Path, timeout: float = 300) -> float:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen([python, str(app)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the app did not open its port")
    finally:
        process.kill()
        process.wait()


def by_hand_cold(work: Path, app: Path) -> float:
    uv = str(Path(sys.executable).parent / "uv")
    env = {**os.environ, "UV_CACHE_DIR": str(work / "hand-cache"), "UV_PYTHON_DOWNLOADS": "never"}
    target = work / "hand-env"
    started = time.perf_counter()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(target)], env=env, check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(target / "bin" / "python"), f"gradio=={GRADIO}"],
                   env=env, check=True)  # fmt: skip
    return (time.perf_counter() - started) + run_until_port(str(target / "bin" / "python"), app)


def space_row(hub: HubServer, repo: str) -> tuple[int, int | None, str | None]:
    """(repo pk, pid, env key) of a space, read from the hub's SQLite database."""
    namespace, name = repo.split("/")
    with sqlite3.connect(hub.data_dir / "hubstead.db") as db:
        row = db.execute(
            "select r.pk, s.pid, s.env_key from repos r join space_runtimes s on s.repo_pk = r.pk "
            "where r.namespace = ? and r.name = ?",
            (namespace, name),
        ).fetchone()
    return int(row[0]), row[1], row[2]


def tree_memory(pid: int) -> tuple[int, int]:
    from hubstead.runner.process import tree_usage

    return tree_usage(pid)


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-spaces-", args.tmp_dir)
    env = {"HUBSTEAD_SPACES_DEFAULT_SLEEP": str(args.sleep_seconds), "UV_CACHE_DIR": str(work / "hub-uv-cache")}
    hub = HubServer(root=work / "hub", extra_env=env)
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    folder = work / "space"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "README.md").write_text(readme("bench"))
    rows: list[Row] = []

    cold = push(api, folder, "bench/cold")
    log(f"cold push to RUNNING {cold:.1f} s")
    hand_cold = by_hand_cold(work, folder / "app.py")
    log(f"by hand (fresh uv cache, env, app start) {hand_cold:.1f} s")
    rows.append(Row("push → RUNNING, new environment (s)", cold, hand_cold, kind="time", fmt="{:.1f}",
                    note="baseline: uv venv + uv pip install gradio (empty cache) + app start, by hand"))  # fmt: skip

    warm = push(api, folder, "bench/warm")
    hand_warm = run_until_port(str(work / "hand-env" / "bin" / "python"), folder / "app.py")
    log(f"warm push to RUNNING {warm:.1f} s; the app's own start {hand_warm:.1f} s")
    rows.append(Row("push → RUNNING, environment reused (s)", warm, hand_warm, kind="time", fmt="{:.1f}",
                    note="baseline: python app.py from the same environment until its port answers"))  # fmt: skip

    _, pid, _ = space_row(hub, "bench/warm")
    assert pid is not None
    time.sleep(3)
    processes, running_rss = tree_memory(pid)
    log(f"idle running space: {processes} processes, {human_bytes(running_rss)} resident")
    rows.append(Row("idle running Gradio space: resident memory (MiB)", running_rss / 2**20, None, kind="ratio",
                    fmt="{:.0f}", note=f"{processes} processes (the sandbox's and the app's)"))  # fmt: skip
    rows.append(Row("idle Gradio spaces one 24 GiB host keeps running", 24 * 2**30 / running_rss, None,
                    kind="ratio", fmt="{:.0f}", note="24 GiB / one idle space's resident memory"))  # fmt: skip

    started = time.perf_counter()
    while api.get_space_runtime("bench/warm").stage != "SLEEPING" and time.perf_counter() - started < 120:
        time.sleep(0.5)
    asleep_processes, asleep_rss = tree_memory(pid)
    log(f"asleep: {asleep_processes} processes, {human_bytes(asleep_rss)}")
    rows.append(Row("a sleeping space: resident memory (MiB)", asleep_rss / 2**20, running_rss / 2**20,
                    kind="ratio",
                    fmt="{:.0f}",
                    note=f"{asleep_processes} processes left; baseline: the same space running"))  # fmt: skip

    print_report("Spaces: push to RUNNING, sleep, idle memory", rows, args=args)
    hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
