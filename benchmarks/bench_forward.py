#!/usr/bin/env python
"""The hop's cost (issue 22): a request that needs the compute process, sent to an API process that forwards it
(``coordination.forward``), against the same request sent to the compute process directly (the baseline: what a
single-process hub pays). Both processes are real ``hubstead serve --role compute`` / ``--role api --workers 1``
on one data dir; rounds alternate the two sides so that the machine's other load falls on both.

Calls: ``GET /v1/models`` (a small JSON answer from the inference service) and ``POST /models/{ns}/{name}`` with a
1 KiB body for a model that does not exist (the body streamed over the hop, a 404 from the compute process).
One keep-alive client per side, sequential calls: the number is latency, not throughput.

    .venv/bin/python benchmarks/bench_forward.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from hubstead.devtools.postgres import free_port  # noqa: E402


def start(data: Path, role: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "HUBSTEAD_DATA_DIR": str(data), "HUBSTEAD_SPACES": "0"}
    env.pop("HUBSTEAD_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "hubstead.cli", "serve", "--port", str(port), "--log-level",
                                "warning", "--role", role, "--workers", "1"], env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{role} process did not start")


def timed(client: httpx.Client, method: str, url: str, calls: int, body: bytes | None) -> list[float]:
    out = []
    for _ in range(calls):
        began = time.perf_counter()
        answer = client.request(method, url, content=body)
        out.append(time.perf_counter() - began)
        assert answer.status_code in (200, 404), answer.text
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-forward-")) / "data"
    compute, compute_url = start(data, "compute")
    api, api_url = start(data, "api")
    try:
        deadline = time.time() + 60
        while httpx.get(api_url + "/v1/models", timeout=10).status_code == 503 and time.time() < deadline:
            time.sleep(0.2)
        body_1k = b'{"inputs": "' + b"x" * 1000 + b'"}'
        cases = (("GET /v1/models", "GET", "/v1/models", None),
                 ("POST /models/a/b (1 KiB body)", "POST", "/models/nobody/nothing", body_1k))  # fmt: skip
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for name, method, path, body in cases:
            direct: list[float] = []
            hopped: list[float] = []
            with httpx.Client(timeout=30) as to_compute, httpx.Client(timeout=30) as to_api:
                timed(to_compute, method, compute_url + path, 20, body)  # warm both
                timed(to_api, method, api_url + path, 20, body)
                for _ in range(args.rounds):
                    direct += timed(to_compute, method, compute_url + path, args.calls, body)
                    hopped += timed(to_api, method, api_url + path, args.calls, body)
            d50, h50 = statistics.median(direct) * 1000, statistics.median(hopped) * 1000
            d95 = statistics.quantiles(direct, n=20)[-1] * 1000
            h95 = statistics.quantiles(hopped, n=20)[-1] * 1000
            print(f"{name}: direct p50 {d50:.2f} ms p95 {d95:.2f} ms | through the API process p50 {h50:.2f} ms "
                  f"p95 {h95:.2f} ms | ratio p50 {h50 / d50:.2f}, hop cost {h50 - d50:.2f} ms")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        for process in (api, compute):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
