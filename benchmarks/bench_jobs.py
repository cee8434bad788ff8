#!/usr/bin/env python
"""Jobs: how soon a job starts, and a queue of jobs on two slots.

Against a hub started for the run (its own data dir, two job slots), through the real client (``huggingface_hub``),
each with a baseline measured in the same run:

1. **Submit to first log line, warm** (goal ≤ 2 s): ``run_job(image="hubstead/python", command=["python", "-c",
   "print(...)"])`` until ``fetch_job_logs(follow=True)`` yields the job's first line (median of N), vs the same
   command started by hand with ``subprocess`` until its first line (the interpreter's own start).
2. **A uv script, warm**: ``run_uv_job`` on a PEP 723 script (its dependency already in the uv cache) to its first
   line, vs ``uv run`` of the same script by hand.
3. **20 queued jobs on 2 slots** (goal: none lost): each sleeps 0.5 s and prints; wall time until all are
   COMPLETED vs the same 20 commands run by hand two at a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Row,
    add_common_args,
    hf_client_env,
    log,
    make_tempdir,
    pin_source,
    print_report,
)

SCRIPT = """# /// script
# dependencies = ["six"]
# ///
import six
print("uv job ready", six.__version__)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=10, help="jobs timed for the start latency")
    parser.add_argument("--queued", type=int, default=20, help="jobs queued at once for step 3")
    add_common_args(parser)
    return parser.parse_args()


def first_line(api, job_id: str, namespace: str, started: float) -> float:  # type: ignore[no-untyped-def]
    for line in api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=True):
        if line.strip() and not line.startswith("==>"):
            return time.perf_counter() - started
    raise RuntimeError(f"job {job_id} printed nothing")


def by_hand_first_line(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait()
    return elapsed


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-jobs-", args.tmp_dir)
    env = {"HUBSTEAD_COMPUTE_SLOTS": "2", "HUBSTEAD_COMPUTE_PER_NAMESPACE": "2", "UV_CACHE_DIR": str(work / "uv")}
    hub = HubServer(root=work / "hub", extra_env=env)
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    rows: list[Row] = []
    command = ["python", "-c", "print('job ready')"]

    api.wait_for_job(api.run_job(image="hubstead/python", command=command, namespace="bench").id, namespace="bench")
    starts = []
    for _ in range(args.starts):
        started = time.perf_counter()
        job = api.run_job(image="hubstead/python", command=command, namespace="bench")
        starts.append(first_line(api, job.id, "bench", started))
        api.wait_for_job(job.id, namespace="bench")
    by_hand = statistics.median(by_hand_first_line([sys.executable, *command[1:]], work) for _ in range(args.starts))
    log(f"submit → first line: median {statistics.median(starts):.2f} s (max {max(starts):.2f}); "
        f"by hand {by_hand:.3f} s")
    rows.append(Row("submit → first log line, hub's Python (s, median)", statistics.median(starts), by_hand,
                    kind="time", fmt="{:.2f}", note=f"goal ≤ 2 s; max {max(starts):.2f} s; baseline: the same "
                    "command by hand"))  # fmt: skip

    script = work / "ready.py"
    script.write_text(SCRIPT)
    scripts_repo = "bench/scripts"
    api.create_repo(scripts_repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=str(script), path_in_repo="ready.py", repo_id=scripts_repo, repo_type="dataset")
    url = f"{hub.url}/datasets/{scripts_repo}/resolve/main/ready.py"
    api.wait_for_job(api.run_uv_job(url, namespace="bench").id, namespace="bench")  # fills the uv cache
    uv_starts = []
    for _ in range(max(3, args.starts // 2)):
        started = time.perf_counter()
        job = api.run_uv_job(url, namespace="bench")
        uv_starts.append(first_line(api, job.id, "bench", started))
        api.wait_for_job(job.id, namespace="bench")
    from hubstead.spaces.environments import uv_binary

    uv_env_argv = [uv_binary(), "run", "--python", sys.executable, str(script)]
    uv_hand = statistics.median(by_hand_first_line(uv_env_argv, work) for _ in range(3))
    log(f"uv job → first line: median {statistics.median(uv_starts):.2f} s; uv run by hand {uv_hand:.2f} s")
    rows.append(Row("run_uv_job → first log line, warm cache (s, median)", statistics.median(uv_starts), uv_hand,
                    kind="time", fmt="{:.2f}", note="baseline: uv run of the same script by hand"))  # fmt: skip

    sleeper = ["python", "-c", "import time; time.sleep(0.5); print('done')"]
    started = time.perf_counter()
    jobs = [api.run_job(image="hubstead/python", command=sleeper, namespace="bench") for _ in range(args.queued)]
    done = api.wait_for_job([j.id for j in jobs], namespace="bench", timeout=900, poll_interval=0.25)
    queued_wall = time.perf_counter() - started
    completed = sum(1 for d in done if d.status.stage == "COMPLETED")
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: subprocess.run([sys.executable, *sleeper[1:]], capture_output=True, check=True),
                      range(args.queued)))  # fmt: skip
    hand_wall = time.perf_counter() - started
    log(f"{args.queued} queued jobs: {queued_wall:.1f} s, {completed} completed; by hand 2 at a time {hand_wall:.1f} s")
    rows.append(Row(f"{args.queued} queued jobs on 2 slots, all done (s)", queued_wall, hand_wall, kind="time",
                    fmt="{:.1f}", note=f"{completed}/{args.queued} COMPLETED (goal: none lost); baseline: the "
                    "same commands by hand, two at a time"))  # fmt: skip

    print_report("Jobs: start latency and a queue", rows, args=args)
    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
