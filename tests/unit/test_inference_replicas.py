"""A replica computes with all cores while it alone has work, and with its share while others have some too."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from typing import Any

import pytest

from hubstead.inference.engine.worker import ReplicaShare


def spec_with(counter: Any) -> dict[str, Any]:
    return {"replicas_with_work": counter, "threads": 1, "threads_alone": 4}


def test_alone_uses_every_core_and_shares_while_another_replica_has_work() -> None:
    counter = multiprocessing.get_context("spawn").Value("i", 0)
    first, second = ReplicaShare(spec_with(counter)), ReplicaShare(spec_with(counter))
    first.set_active(True)
    assert counter.value == 1 and first.threads() == 4
    second.set_active(True)
    assert counter.value == 2 and first.threads() == 1 and second.threads() == 1
    first.set_active(True)  # already counted: no double count
    assert counter.value == 2
    second.set_active(False)
    assert counter.value == 1 and first.threads() == 4
    first.set_active(False)
    first.set_active(False)
    assert counter.value == 0


SCHEDULING_PROBE = """
import json, os, threading, multiprocessing
from hubstead.inference.engine.worker import ReplicaShare

def policies():
    return sorted({os.sched_getscheduler(int(tid)) for tid in os.listdir("/proc/self/task")})

counter = multiprocessing.Value("i", 0)
share = ReplicaShare({"replicas_with_work": counter, "threads": 1, "threads_alone": 2})
release = threading.Event()
earlier = threading.Thread(target=release.wait)  # a pool thread started before the switch
earlier.start()
seen = {}
share.set_active(True)
share.schedule()
seen["alone"] = policies()
counter.value = 2  # a sibling has work too
share.schedule()
seen["sharing"] = policies()
later = threading.Thread(target=lambda: seen.setdefault("started_while_sharing", os.sched_getscheduler(0)))
later.start()
later.join()
counter.value = 1
share.schedule()
seen["alone_again"] = policies()
release.set()
earlier.join()
print(json.dumps(seen))
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_a_replica_computes_as_batch_work_only_while_it_shares_the_cores() -> None:
    """Every thread of the process switches, threads started meanwhile inherit it, and alone it switches back."""
    probe = subprocess.run([sys.executable, "-c", SCHEDULING_PROBE], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen == {
        "alone": [os.SCHED_OTHER],
        "sharing": [os.SCHED_BATCH],
        "started_while_sharing": os.SCHED_BATCH,
        "alone_again": [os.SCHED_OTHER],
    }


def test_a_single_worker_leaves_its_threads_alone() -> None:
    share = ReplicaShare({"threads": 2})
    share.set_active(True)
    assert share.threads() is None


def test_the_config_file_refuses_a_bad_replica_count(tmp_path: Any) -> None:
    import pytest

    from hubstead.inference.service import load_model_configs

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  acme/embedder: {replicas: 3}\n  acme/other: {runtime: onnx}\n")
    configs = load_model_configs(path)
    assert configs["acme/embedder"].replicas == 3 and configs["acme/other"].replicas is None
    for bad in ("0", "two", "1.5", "true"):
        path.write_text(f"models:\n  acme/embedder: {{replicas: {bad}}}\n")
        with pytest.raises(SystemExit, match="replicas must be a whole number"):
            load_model_configs(path)
