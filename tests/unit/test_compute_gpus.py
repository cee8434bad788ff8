"""GPU flavours on a host with GPUs (two, here pretended: the GPU list is the only thing replaced): each job gets
its own device in CUDA_VISIBLE_DEVICES, and a GPU job waits for a free device even when CPU slots are free."""

from __future__ import annotations

import time

import pytest

from hubstead.auth import service as auth
from hubstead.auth.service import Principal
from hubstead.compute import executor as executor_module
from hubstead.compute import jobfiles, service
from hubstead.compute import spec as spec_module
from hubstead.compute.executor import ComputeExecutor
from hubstead.compute.models import ComputeJob
from hubstead.context import Hub
from hubstead.runner.hardware import Flavor, flavors

pytestmark = pytest.mark.slow


def test_each_gpu_job_holds_its_own_device(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    offered = {**flavors(), "gpu-1x": Flavor("gpu-1x", "GPU: 1 x Test GPU", 1.0, 2 * 2**30, gpus=1,
                                             gpu_model="Test GPU")}  # fmt: skip
    monkeypatch.setattr(executor_module, "gpu_indices", lambda: [0, 1])
    monkeypatch.setattr(executor_module, "flavors", lambda: offered)
    monkeypatch.setattr(spec_module, "flavors", lambda: offered)
    with hub.db.session() as session:
        user = auth.create_user(session, name="gpuuser")
        caller = Principal(user=user, token_role="write")
        code = "import os, time; print('devices', os.environ['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(1.5)"
        ids = [service.submit(hub, session, caller, "gpuuser", {"dockerImage": "hubstead/python", "command":
                              ["python", "-c", code], "flavor": "gpu-1x"}).id for _ in range(3)]  # fmt: skip
    executor = ComputeExecutor(hub)
    executor.slots, executor.per_namespace = 4, 4
    executor.tick()
    with hub.db.session() as session:
        stages = {job_id: session.get(ComputeJob, job_id).stage for job_id in ids}  # type: ignore[union-attr]
        held = sorted(str(session.get(ComputeJob, job_id).devices) for job_id in ids  # type: ignore[union-attr]
                      if stages[job_id] == "RUNNING")  # fmt: skip
    assert list(stages.values()).count("RUNNING") == 2 and held == ["0", "1"], stages
    deadline = time.time() + 60
    while time.time() < deadline:
        executor.tick()
        with hub.db.session() as session:
            if all(session.get(ComputeJob, job_id).stage == "COMPLETED" for job_id in ids):  # type: ignore[union-attr]
                break
        time.sleep(0.1)
    seen = [jobfiles.log_path(hub.settings, job_id).read_text() for job_id in ids]
    devices = [next(line.split()[1] for line in text.splitlines() if line.startswith("devices")) for text in seen]
    assert sorted(devices[:2]) == ["0", "1"] and devices[2] in ("0", "1"), devices
