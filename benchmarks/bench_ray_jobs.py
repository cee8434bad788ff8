#!/usr/bin/env python
"""Jobs on a Ray cluster: submit to first log line, Ray backend vs the local one, in the same run.

A one-node Ray cluster (``ray start --head --num-cpus 2``, its own temp dir) and two hubs (``--compute-backend
ray`` against it, and the default local backend); on each, ``run_job(image="hubstead/python", command=["python",
"-c", "print(...)"])`` until ``fetch_job_logs(follow=True)`` yields the job's first line (median of N, after one
warm-up job). The baseline is the local backend: the ratio is what going through Ray's Jobs API costs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Row,
    add_common_args,
    free_port,
    log,
    make_tempdir,
    on_exit,
    pin_source,
    print_report,
)

RAY = str(Path(sys.executable).parent / "ray")


def first_line(api, job_id: str, namespace: str, started: float) -> float:  # type: ignore[no-untyped-def]
    for line in api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=True):
        if line.strip() and not line.startswith("==>"):
            return time.perf_counter() - started
    raise RuntimeError(f"job {job_id} printed nothing")


def start_ray(temp: Path) -> tuple[str, subprocess.Popen[bytes]]:
    gcs, dash = free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port",
         str(dash), "--ray-client-server-port", str(free_port()), "--num-cpus", "2", "--temp-dir", str(temp),
         "--object-store-memory", str(100 * 2**20), "--include-dashboard", "true", "--disable-usage-stats"],
        env=env, stdout=open(temp / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def stop() -> None:  # the whole session ``ray start --block`` leads
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getsid(int(entry)) == head.pid:
                        os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass

    on_exit(stop)
    return f"http://127.0.0.1:{dash}", head


def measure(hub: HubServer, token: str, count: int) -> list[float]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    command = ["python", "-c", "print('job ready')"]
    api.wait_for_job(api.run_job(image="hubstead/python", command=command, namespace="bench").id, namespace="bench")
    out = []
    for _ in range(count):
        started = time.perf_counter()
        job = api.run_job(image="hubstead/python", command=command, namespace="bench")
        out.append(first_line(api, job.id, "bench", started))
        api.wait_for_job(job.id, namespace="bench")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5, help="jobs timed on each backend")
    add_common_args(parser)
    args = parser.parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-ray-", args.tmp_dir)
    ray_temp = Path(make_tempdir("ray-", "/tmp"))  # short: Ray's socket paths must fit AF_UNIX
    dashboard, _ = start_ray(ray_temp)
    hubs = {
        "local": HubServer(root=work / "local"),
        "ray": HubServer(root=work / "ray", extra_env={"HUBSTEAD_COMPUTE_BACKEND": "ray",
                                                        "HUBSTEAD_RAY_ADDRESS": dashboard}),  # fmt: skip
    }
    tokens = {}
    for name, hub in hubs.items():
        hub.data_dir.mkdir(parents=True)
        tokens[name] = hub.create_account("bench")
        hub.start()
    from ray.job_submission import JobSubmissionClient

    deadline = time.time() + 120
    while True:
        try:
            JobSubmissionClient(dashboard).list_jobs()
            break
        except Exception:  # noqa: BLE001 - the dashboard still starting
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    times = {name: measure(hub, tokens[name], args.starts) for name, hub in hubs.items()}
    ray_med, local_med = statistics.median(times["ray"]), statistics.median(times["local"])
    log(f"submit → first line: ray {ray_med:.2f} s (max {max(times['ray']):.2f}), local {local_med:.2f} s")
    rows = [Row("submit → first log line, Ray backend (s, median)", ray_med, local_med, kind="time", fmt="{:.2f}",
                note=f"max {max(times['ray']):.2f} s; baseline: the local backend, same run; a one-node cluster "
                "on this machine")]  # fmt: skip
    print_report("Jobs on a Ray cluster: start latency", rows, args=args)
    for hub in hubs.values():
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
