"""The runner's commands on a Ray cluster (``--compute-backend ray --ray-address http://head:8265``): the Jobs API's
jobs (``compute.executor``: each attempt of a job) and the dataset conversions (``jobs.service``) each run as one
Ray job, submitted through the cluster's Jobs API (``JobSubmissionClient``, served by the dashboard).

The entrypoint is the command the local backend runs (bubblewrap included when the hub sandboxes jobs), behind a
short trampoline that gives it exactly the job's environment (not the Ray worker's), its working folder and the
flavour's rlimits, and that dies with the Ray process that started it (``PR_SET_PDEATHSIG``). The flavour asks
Ray for its cores, memory and GPUs (``entrypoint_num_cpus``/``_memory``/``_num_gpus``): Ray places the job on a
node with them free, or holds it PENDING. The job's environment (its token, ``HF_ENDPOINT``, secrets) travels in
a file readable only by the hub's user, next to the job's log, which the trampoline reads and removes: never in
Ray's job records or on a command line (and a job without a runtime environment of its own can start on an idle
Ray worker rather than a new one).

Status and logs are read back through the Jobs API: each poll appends what the Ray log gained to the job's log
file (the hub's log routes read that file), or, for a command with no log file of its own (a conversion), to the
hub's output, where a local run's output goes. A Ray job that FAILED because its node died (the state API says the
driver's node is DEAD) ends in words, "the Ray node running this job died", and is ``lost``: the executor retries
it while the job has attempts left, the conversion runner queues it again. A cluster that stops answering for
``UNREACHABLE_SECONDS`` fails the attempt in words. Cancel and the timeout stop the Ray job (``stop_job``).

Not enforced on Ray: the control group (memory is a scheduling request plus ``RLIMIT_DATA``, not a hard cgroup
cap; no process-count cap), and the sandbox needs ``bwrap`` and the hub's paths (the job's home, volumes, the
interpreter) on every node: a shared filesystem, or one host.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubstead.runner import logs as runner_logs
from hubstead.runner.backends import HOST, PORT
from hubstead.runner.cgroups import ControlGroup
from hubstead.runner.hardware import Flavor
from hubstead.runner.limits import Limits
from hubstead.runner.process import describe_exit

log = logging.getLogger("hubstead.runner")

POLL_SECONDS = 0.5  # the executor ticks every 0.1 s while jobs run; Ray is asked at most this often
UNREACHABLE_SECONDS = 60.0
NODE_DIED = "the Ray node running this job died"

_TRAMPOLINE = (
    "import ctypes, json, os, resource, signal, socket, sys\n"
    "config = json.loads(sys.argv[1])\n"
    "argv = sys.argv[2:]\n"
    "with open(config['env']) as f: env = json.load(f)\n"
    "os.unlink(config['env'])\n"
    "where = ''\n"
    "if config['serve']:\n"  # this node's address toward the head, and a port free on it
    "    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    probe.connect((config['serve'], 9)); host = probe.getsockname()[0]; probe.close()\n"
    "    probe = socket.socket(); probe.bind((host, 0)); port = probe.getsockname()[1]; probe.close()\n"
    "    put = lambda v: v.replace(config['host'], host).replace(config['port'], str(port))\n"
    "    argv = [put(a) for a in argv]; env = {k: put(v) for k, v in env.items()}\n"
    "    where = f\" serving at {host}:{port}\"\n"
    "gpus = os.environ.get('CUDA_VISIBLE_DEVICES') if config['gpus'] else None\n"
    "os.environ.clear(); os.environ.update(env)\n"
    "if gpus is not None: os.environ['CUDA_VISIBLE_DEVICES'] = gpus\n"
    "os.chdir(config['cwd'])\n"
    "for which, soft, hard in config['rlimits']:\n"
    "    resource.setrlimit(which, (soft, hard))\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "print(config['mark'] + os.uname().nodename + where, flush=True)\n"
    "os.execvp(argv[0], argv)\n"
)
MARK = "==> Running on the Ray node "  # the trampoline's first line: what Ray logged before it is Ray's own
_SERVING = re.compile(rb" serving at ([0-9a-fA-F.:]+):(\d+)\r?$")


class RayRun:
    """One attempt of a job as a Ray job: the executor's view of it (``runner.backends.Run``)."""

    cgroup: ControlGroup | None = None

    def __init__(self, client: Any, submission_id: str, limits: Limits, log_path: Path | None, address: str) -> None:
        self.client = client
        self.submission_id = submission_id
        self.limits = limits
        self.log_path = log_path
        self.cluster = address
        self.started = time.monotonic()
        self.stop_reason: str | None = None
        self._code: int | None = None
        self._reason: str | None = None
        self._asked = 0.0
        self._answered = time.monotonic()
        self._log_offset = 0
        self._marked = False
        self.lost = False
        self.address: tuple[str, int] | None = None  # a serving command's, from the trampoline's first line
        self.env_file: Path | None = None  # removed by the trampoline; by release() if the job never started

    @property
    def pid(self) -> int | None:
        return None  # nothing on this host to sample

    def poll(self) -> int | None:
        if self._code is not None or time.monotonic() - self._asked < POLL_SECONDS:
            return self._code
        self._asked = time.monotonic()
        try:
            info = self.client.get_job_info(self.submission_id)
        except Exception as exc:  # noqa: BLE001 - the cluster unreachable for a while is the attempt's end
            if time.monotonic() - self._answered > UNREACHABLE_SECONDS:
                self._reason = f"the Ray cluster at {self.cluster} stopped answering ({type(exc).__name__})"
                self._code = 1
            return self._code
        self._answered = time.monotonic()
        self._pull_logs()
        status = str(getattr(info.status, "value", info.status))
        if status == "SUCCEEDED":
            self._code = 0
        elif status == "STOPPED":
            self._code = -signal.SIGTERM
            self._reason = self.stop_reason or "stopped on the Ray cluster"
        elif status == "FAILED":
            exit_code = getattr(info, "driver_exit_code", None)
            self._code = exit_code if isinstance(exit_code, int) and exit_code != 0 else 1
            self._reason = self._failure(info, exit_code)
            self.lost = self._reason == NODE_DIED
        return self._code

    def _failure(self, info: Any, exit_code: object) -> str | None:
        """Why Ray says it failed: the node died (the state API's word on the driver's node), else the command's
        own exit status (None: the executor words it), else Ray's message."""
        node_id = getattr(info, "driver_node_id", None)
        message = str(getattr(info, "message", "") or "")
        if node_id and _node_dead(self.cluster, node_id):
            return NODE_DIED
        if isinstance(exit_code, int) and exit_code != 0:
            return None
        if "node has died" in message or "node was terminated" in message:
            return NODE_DIED
        return f"failed on the Ray cluster: {message.splitlines()[0] if message else 'no reason given'}"

    def _pull_logs(self, *, final: bool = False) -> None:
        try:
            text = self.client.get_job_logs(self.submission_id)
        except Exception:  # noqa: BLE001 - the next poll tries again
            return
        data = text.encode("utf-8", "replace")
        end = len(data) if final else data.rfind(b"\n") + 1  # whole lines only, but the last at the end
        if end > self._log_offset:
            kept = data[self._log_offset : end]
            if not self._marked:  # Ray's own lines (the entrypoint, the runtime env's set-up) are left out
                at = 0 if kept.startswith(MARK.encode()) else kept.find(b"\n" + MARK.encode()) + 1  # a line's start
                self._marked = at > 0 or kept.startswith(MARK.encode())
                kept = kept[at:] if self._marked else b""
                if self._marked and (serving := _SERVING.search(kept.split(b"\n", 1)[0])):
                    self.address = (serving[1].decode(), int(serving[2]))
            if self.log_path is None:
                sys.stderr.buffer.write(kept)
                sys.stderr.flush()
            else:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "ab") as out:
                    out.write(kept)
            self._log_offset = end

    def check(self) -> str | None:
        if self.poll() is not None:
            return None
        wall = self.limits.wall_seconds
        if wall is not None and time.monotonic() - self.started > wall:
            self.stop_reason = self.limits.stopped_by_wall_clock()
            self.stop(grace=0)
            return self.stop_reason
        return None

    def stop(self, grace: float = 5.0) -> int | None:
        try:
            self.client.stop_job(self.submission_id)
        except Exception:  # noqa: BLE001 - already ended, or the cluster is gone: the poll below says which
            pass
        deadline = time.monotonic() + max(grace, 1.0)
        while time.monotonic() < deadline:
            self._asked = 0.0
            if self.poll() is not None:
                break
            time.sleep(0.2)
        if self._code is None:  # Ray did not confirm: the hub stops waiting for it
            self._code = -signal.SIGTERM
            self._reason = self.stop_reason or "stopped on the Ray cluster"
        return self._code

    def exit_reason(self, code: int) -> str:
        if self.stop_reason:
            return self.stop_reason
        return self._reason or describe_exit(code, self.limits)

    def release(self) -> None:
        self._pull_logs(final=True)  # the last lines
        if self.env_file is not None:
            self.env_file.unlink(missing_ok=True)


def _node_dead(address: str, node_id: str) -> bool:
    try:
        from ray.util.state import get_node

        node = get_node(node_id, address=address, timeout=10)
    except Exception:  # noqa: BLE001 - no word from the state API: Ray's message decides
        return False
    return node is not None and str(getattr(node, "state", "")) == "DEAD"


class RayBackend:
    """Submits jobs to the Ray cluster whose dashboard is at ``address`` (``http://head:8265``)."""

    name = "ray"

    def __init__(self, address: str) -> None:
        self.address = address.rstrip("/")
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:
                raise RuntimeError("the Ray backend needs ray[default]: pip install 'hubstead[cluster]'") from exc
            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as exc:
                raise RuntimeError(f"the Ray cluster at {self.address} did not answer: {exc}") from exc
        return self._client

    def stop_leftovers(self, job_ids: Sequence[str]) -> None:
        """Ray jobs outlive a hub killed under them: stop those still pending or running for ``job_ids``."""
        wanted = set(job_ids)
        if not wanted:
            return
        try:
            client = self.client()
            for info in client.list_jobs():
                status = str(getattr(info.status, "value", info.status))
                if (info.metadata or {}).get("hubstead_job") in wanted and status in ("PENDING", "RUNNING"):
                    client.stop_job(info.submission_id)
        except Exception as exc:  # noqa: BLE001 - the cluster unreachable: its jobs cannot be reached either
            log.warning("could not stop the Ray jobs a previous hub left running: %s", exc)

    def launch(
        self, job_id: str, argv: Sequence[str], *, limits: Limits, flavor: Flavor, cwd: Path, env: Mapping[str, str],
        group_name: str, log_path: Path | None, serve: bool = False,
    ) -> RayRun:  # fmt: skip
        # The environment (the job's token, secrets) goes in a file only the hub's user reads, beside the job's log
        # or its working folder (the hub's data dir, hidden from the sandbox), read and removed by the trampoline:
        # not in Ray's job records, and a job with no runtime environment of its own starts on an idle Ray worker.
        env_file = (log_path.parent if log_path is not None else cwd.parent) / f"ray-env-{time.time_ns()}.json"
        env_file.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            json.dump(dict(env), out)
        config = {"env": str(env_file), "gpus": bool(flavor.gpus),  # Ray sets CUDA_VISIBLE_DEVICES for its GPUs
                  "cwd": str(cwd), "rlimits": limits.rlimits(cgroup_memory=False), "mark": MARK,
                  # a serving command listens on the node's address toward the head (the cluster's network)
                  "serve": (urlsplit(self.address).hostname or "127.0.0.1") if serve else None,
                  "host": HOST, "port": PORT}  # fmt: skip
        entrypoint = shlex.join([sys.executable, "-I", "-c", _TRAMPOLINE, json.dumps(config), *argv])
        client = self.client()
        attempt_id = f"{group_name}-{time.time_ns()}"  # one Ray job per attempt: a retry is a new submission
        try:
            submission_id = client.submit_job(
                entrypoint=entrypoint,
                submission_id=attempt_id,
                entrypoint_num_cpus=flavor.cpus,
                entrypoint_memory=flavor.memory_bytes or None,
                entrypoint_num_gpus=flavor.gpus or None,
                metadata={"hubstead_job": job_id},
            )
        except Exception as exc:
            env_file.unlink(missing_ok=True)
            raise RuntimeError(f"the Ray cluster at {self.address} did not take the job: {exc}") from exc
        if log_path is not None:
            runner_logs.append(log_path, f"==> Submitted to the Ray cluster at {self.address} as {submission_id}")
        else:
            log.info("%s submitted to the Ray cluster at %s as %s", job_id, self.address, submission_id)
        run = RayRun(client, submission_id, limits, log_path, self.address)
        run.env_file = env_file
        return run
