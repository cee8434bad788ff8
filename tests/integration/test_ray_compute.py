"""Jobs on a real Ray cluster (``--compute-backend ray``): a head and a second node started on this machine
(``ray start``, one core each), a private hub (SQLite) submitting to it through the Jobs API. A job runs there
(Ray's own record says so) with its log and its secret (which Ray's records never hold) and a failure in words; a
dataset's conversion and a space's app run there too; cancel stops the Ray job; a job on the
second node survives that node being killed mid-job (Ray reports the node dead, the hub runs the job again on
the head and it completes)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from support import LiveServer

pytestmark = pytest.mark.slow
ray_state = pytest.importorskip("ray.util.state")
ray_jobs = pytest.importorskip("ray.job_submission")

PY = "hubstead/python"
RAY = str(Path(sys.executable).parent / "ray")


def _ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class Cluster:
    dashboard: str
    head: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    worker_node_id: str
    temp: Path

    def wait_ready(self) -> None:
        """Until both nodes are ALIVE; remembers which is the second."""
        deadline = time.monotonic() + 90
        while len(nodes := _alive_nodes(self.dashboard)) < 2:
            for name, process in (("head", self.head), ("worker", self.worker)):
                assert process.poll() is None, (self.temp / f"{name}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Ray cluster did not come up in 90 s"
            time.sleep(0.5)
        self.worker_node_id = next(n.node_id for n in nodes if not n.is_head_node)  # type: ignore[attr-defined]

    def jobs(self) -> dict[str, list[object]]:
        """The hub's job id -> the Ray jobs submitted for it (one per attempt), from Ray's own record."""
        out: dict[str, list[object]] = {}
        for info in ray_jobs.JobSubmissionClient(self.dashboard).list_jobs():
            hub_job = (info.metadata or {}).get("hubstead_job")
            if hub_job:
                out.setdefault(hub_job, []).append(info)
        return out


def _end_session(process: subprocess.Popen[bytes]) -> None:
    """Kill every process in the session ``ray start --block`` led (its raylet, workers, the jobs they started)."""
    sid = process.pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
    process.wait(timeout=10)


def _alive_nodes(dashboard: str) -> list[object]:
    try:
        return [n for n in ray_state.list_nodes(address=dashboard, timeout=5) if str(n.state) == "ALIVE"]
    except Exception:  # noqa: BLE001 - the dashboard still starting
        return []


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit AF_UNIX
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # notice a dead node within about 2 s (the default is about 15 s)
           "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
           "RAY_health_check_failure_threshold": "3"}  # fmt: skip
    gcs, dash, client, *node_ports = _ports(15)
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--block", "--disable-usage-stats"]

    def node_args(ports: list[int]) -> list[str]:  # distinct per node: both run on this one machine
        names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]  # fmt: skip
        return [arg for name, port in zip(names, ports, strict=True) for arg in (name, str(port))]

    started: list[subprocess.Popen[bytes]] = []
    try:
        head = subprocess.Popen(
            [RAY, "start", "--head", "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
             "--ray-client-server-port", str(client), "--include-dashboard", "true", "--temp-dir", str(temp),
             *node_args(node_ports[:6]), *common],
            env=env, stdout=open(temp / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append(head)
        worker = subprocess.Popen(  # at once: it waits for the head's GCS itself
            [RAY, "start", "--address", f"127.0.0.1:{gcs}", *node_args(node_ports[6:12]), *common],
            env=env, stdout=open(temp / "worker.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append(worker)
        cluster = Cluster(f"http://127.0.0.1:{dash}", head, worker, "", temp)
        yield cluster  # the hub fixture waits for both nodes (the hub starts meanwhile)
    finally:
        for process in reversed(started):
            _end_session(process)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(cluster: Cluster, own_server_with: Callable[[dict[str, str]], LiveServer]) -> LiveServer:
    live = own_server_with({"HUBSTEAD_COMPUTE_BACKEND": "ray", "HUBSTEAD_RAY_ADDRESS": cluster.dashboard,
                            "HUBSTEAD_COMPUTE_SLOTS": "2", "HUBSTEAD_COMPUTE_PER_NAMESPACE": "2"})  # fmt: skip
    cluster.wait_ready()
    return live


def _logs(api: HfApi, job_id: str, namespace: str) -> str:
    return "\n".join(api.fetch_job_logs(job_id=job_id, namespace=namespace))


def test_jobs_run_on_the_ray_cluster_with_their_logs_and_failures(hub: LiveServer, cluster: Cluster) -> None:
    """Two jobs through run_job: one prints its environment's view and completes, one fails with a reason; Ray's
    record holds a SUCCEEDED and a FAILED Ray job for them; the logs and the reason come back through the hub."""
    account = hub.account("ray")
    api = HfApi(endpoint=hub.url, token=account.write_token)
    secret = f"s3cret-{time.time_ns()}"
    hello = ("import hashlib, os; print('hello from', os.environ['JOB_ID'], 'on', "
             "'a ray worker env' if any(k.startswith('RAY_') for k in os.environ) else 'its own env', "
             "hashlib.sha256(os.environ['HUB_TEST_SECRET'].encode()).hexdigest())")  # fmt: skip
    good = api.run_job(image=PY, command=["python", "-c", hello], secrets={"HUB_TEST_SECRET": secret},
                       namespace=account.name)  # fmt: skip
    bad = api.run_job(image=PY, command=["python", "-c", "print('HUBSTEAD-ERROR the data was empty'); exit(3)"],
                      namespace=account.name)  # fmt: skip
    done = api.wait_for_job([good.id, bad.id], namespace=account.name, timeout=60, poll_interval=0.3)
    assert [d.status.stage for d in done] == ["COMPLETED", "ERROR"], [d.status for d in done]
    assert done[1].status.message == "the data was empty (ended with exit code 3)"
    text = _logs(api, good.id, account.name)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert f"hello from {good.id} on its own env {digest}" in text and "Submitted to the Ray cluster" in text, text
    assert "Running entrypoint" not in text  # Ray's own lines (the trampoline's command) are left out
    ray = cluster.jobs()
    assert secret not in repr(ray[good.id])  # the environment reached the job, but not Ray's job records
    assert [str(j.status) for j in ray[good.id]] == ["SUCCEEDED"]  # type: ignore[attr-defined]
    assert [str(j.status) for j in ray[bad.id]] == ["FAILED"]  # type: ignore[attr-defined]


def test_a_dataset_conversion_runs_as_a_ray_job(hub: LiveServer, cluster: Cluster) -> None:
    """The dataset viewer's conversion goes to the cluster too (the runner's one backend): a pushed CSV is converted
    by a Ray job (Ray's record: SUCCEEDED, named after the hub's job, the hub's database URL and secret key nowhere
    in it) and its rows come back through the viewer."""
    account = hub.account("raydata")
    api = HfApi(endpoint=hub.url, token=account.write_token)
    repo_id = f"{account.name}/pets"
    api.create_repo(repo_id, repo_type="dataset")
    csv = "id,name\n" + "".join(f"{i},pet-{i}\n" for i in range(57))
    commit = api.upload_file(path_or_fileobj=csv.encode(), path_in_repo="data.csv", repo_id=repo_id,
                             repo_type="dataset").oid  # fmt: skip
    headers = {"Authorization": f"Bearer {account.read_token}"}
    deadline = time.monotonic() + 90
    while True:
        job = httpx.get(f"{hub.url}/api/datasets/{repo_id}/viewer-status", headers=headers, timeout=30).json()["job"]
        if job and job["revision"] == commit and job["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    rows = httpx.get(f"{hub.url}/datasets-server/rows", headers=headers, timeout=30,
                     params={"dataset": repo_id, "config": "default", "split": "train", "length": 100}).json()  # fmt: skip
    assert rows["num_rows_total"] == 57 and [r["row"]["name"] for r in rows["rows"]][-1] == "pet-56"
    ray = {name: infos for name, infos in cluster.jobs().items() if name.startswith("conversion-")}
    (name,) = [name for name in ray if name.endswith(f"-{job['id']}")]
    deadline = time.monotonic() + 30  # the job records its outcome, then its process exits: Ray sees the exit
    while [str(j.status) for j in ray[name]] == ["RUNNING"] and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.3)
        ray = cluster.jobs()
    assert [str(j.status) for j in ray[name]] == ["SUCCEEDED"]  # type: ignore[attr-defined]
    assert "DATABASE_URL" not in repr(ray[name]) and "SECRET_KEY" not in repr(ray[name])


def test_a_space_runs_on_a_ray_node_behind_the_hubs_proxy(hub: LiveServer, cluster: Cluster) -> None:
    """A space's app runs on the cluster too: a Ray job named after the space, RUNNING, listening on its node's
    address at a port the node chose, reached only through the hub's proxy and its access check (a private space
    answers its owner, and 404 to anyone else), its secret nowhere in Ray's records. A pause stops the Ray job."""
    account = hub.account("rayspace")
    api = HfApi(endpoint=hub.url, token=account.write_token)
    repo = f"{account.name}/shown"
    api.create_repo(repo, repo_type="space", space_sdk="static", private=True)
    secret = f"s3cret-{time.time_ns()}"
    api.add_space_secret(repo, "SHOWN_SECRET", secret)
    readme = "---\ntitle: Shown\nsdk: static\n---\n"
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=b"<h1>served from a Ray node</h1>", path_in_repo="index.html", repo_id=repo,
                    repo_type="space")  # fmt: skip
    deadline = time.monotonic() + 90
    while (runtime := api.get_space_runtime(repo)).stage not in ("RUNNING", "RUNTIME_ERROR", "BUILD_ERROR"):
        assert time.monotonic() < deadline, runtime.raw
        time.sleep(0.5)
    assert runtime.stage == "RUNNING", runtime.raw
    url = f"{hub.url}/spaces/{repo}/app/"
    owner = httpx.get(url, headers={"Authorization": f"Bearer {account.read_token}"}, timeout=30)
    assert owner.status_code == 200 and "served from a Ray node" in owner.text
    assert httpx.get(url, timeout=30).status_code == 404

    spaces = {name: infos for name, infos in cluster.jobs().items() if name.startswith("space-")}
    assert len(spaces) == 1 and [str(j.status) for j in next(iter(spaces.values()))] == ["RUNNING"], spaces
    (name, (info,)) = next(iter(spaces.items()))
    assert secret not in repr(info) and "HF_TOKEN" not in repr(info)
    logs = ray_jobs.JobSubmissionClient(cluster.dashboard).get_job_logs(info.submission_id)  # type: ignore[attr-defined]
    assert "==> Running on the Ray node" in logs and "serving at 127.0.0.1:" in logs, logs

    api.pause_space(repo)
    deadline = time.monotonic() + 30
    while str(cluster.jobs()[name][-1].status) != "STOPPED":  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, cluster.jobs()[name]
        time.sleep(0.3)


def test_cancel_and_a_node_killed_mid_job(hub: LiveServer, cluster: Cluster) -> None:
    """Two long jobs (attempts=2) take the cluster's two cores, one per node. The one on the head is cancelled:
    CANCELED, its Ray job STOPPED. The second node is killed under the other: Ray reports the node dead, the hub
    says so in the log and runs the job again (on the head, freed by the cancel), where it resumes and completes."""
    account = hub.account("raynode")
    api = HfApi(endpoint=hub.url, token=account.write_token)
    code = ("import pathlib, time\nm = pathlib.Path.home() / 'seen'\n"
            "if m.exists():\n    print('resumed on another node')\nelse:\n"
            "    m.write_text('1'); print('first run', flush=True); time.sleep(120)")  # fmt: skip
    jobs = [api.run_job(image=PY, command=["python", "-c", code], attempts=2, namespace=account.name)
            for _ in range(2)]  # fmt: skip
    deadline = time.monotonic() + 45
    while not all("first run" in _logs(api, j.id, account.name) for j in jobs):
        assert time.monotonic() < deadline, [_logs(api, j.id, account.name) for j in jobs]
        time.sleep(0.3)
    ray = cluster.jobs()
    on_worker = [j.id for j in jobs if ray[j.id][-1].driver_node_id == cluster.worker_node_id]  # type: ignore[attr-defined]
    assert len(on_worker) == 1, "one core per node: one job on each"
    victim = on_worker[0]
    on_head = next(j.id for j in jobs if j.id != victim)

    api.cancel_job(job_id=on_head, namespace=account.name)
    _end_session(cluster.worker)  # the second node dies mid-job

    canceled = api.wait_for_job(on_head, namespace=account.name, timeout=30, poll_interval=0.3)
    assert canceled.status.stage == "CANCELED"
    survived = api.wait_for_job(victim, namespace=account.name, timeout=60, poll_interval=0.3)
    text = _logs(api, victim, account.name)
    assert survived.status.stage == "COMPLETED", (survived.status, text)
    assert "Ray node running this job died" in text and "resumed on another node" in text, text
    ray = cluster.jobs()
    assert str(ray[on_head][-1].status) == "STOPPED"  # type: ignore[attr-defined]
    assert [str(j.status) for j in sorted(ray[victim], key=lambda j: j.start_time)] == [  # type: ignore[attr-defined]
        "FAILED", "SUCCEEDED"]  # fmt: skip
