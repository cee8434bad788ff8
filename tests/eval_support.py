"""Builders for evaluation-runner tests: generated benchmarks pushed (with their ``eval.yaml``) to a live test hub,
and a way to run the evaluation program (``python -m hubstead.evals.program``, which calls the framework's runner)
as a job does: a subprocess whose ``HF_ENDPOINT`` and ``HF_TOKEN`` are the test hub's, with a HOME of its own and
nothing of the caller's, its result lines read back.

The tiny models and the word tokenizer come from ``train_support`` (their vocabulary is :data:`VOCAB`), so every
generated sentence is made of its words.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import LiveServer
from train_support import NEGATIVE, NEUTRAL, PEOPLE, PLACES, POSITIVE


def sts_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Sentence pairs of vocabulary words with a similarity score in [0, 5]: pairs sharing more words and the same
    mood score higher (a tiny random model need not agree: the test compares with the same model)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        mood = rng.choice([POSITIVE, NEGATIVE])
        first = rng.sample(NEUTRAL, 3) + [rng.choice(mood)]
        shared = rng.randint(0, 3)
        second = first[:shared] + rng.sample(NEUTRAL, 3 - shared) + [rng.choice(rng.choice([POSITIVE, NEGATIVE]))]
        rows.append({"left": " ".join(first), "right": " ".join(second),
                     "similarity": round(shared * 1.5 + rng.random() * 0.5, 3)})
    return rows


def choice_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Multiple-choice questions over the vocabulary: where does a person live (four places in a random order, one
    right)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        person, choices = rng.choice(PEOPLE), rng.sample(PLACES, 4)
        rows.append({"question": f"{person} lives in {' '.join(rng.sample(PLACES, 4))} question {person} lives in",
                     "choices": choices, "answer": rng.randrange(4)})
    return rows


def push_benchmark(server: LiveServer, token: str, repo_id: str, eval_yaml: str,
                   splits: dict[str, list[dict[str, Any]]], config: str | None = None) -> str:
    """A dataset repo with each split as parquet (under ``<config>/`` when a config is named, declared in the card)
    and ``eval.yaml`` at its root; returns the commit sha."""
    import tempfile

    import datasets
    from huggingface_hub import HfApi

    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hubstead-eval-data-") as tmp:
        folder = config or "data"
        for split, rows in splits.items():
            path = Path(tmp) / folder / f"{split}.parquet"
            path.parent.mkdir(exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(str(path))
        if config:
            files = "\n".join(f"  - split: {s}\n    path: {config}/{s}.parquet" for s in splits)
            (Path(tmp) / "README.md").write_text(f"---\nconfigs:\n- config_name: {config}\n  data_files:\n{files}\n---\n")
        (Path(tmp) / "eval.yaml").write_text(eval_yaml)
        info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=tmp)
    return str(info.oid)


# Imported at the program's start (``PYTHONPATH``): records every host the process looks up or connects to.
_AUDIT = """
import os, sys
_log = os.environ["HUBSTEAD_TEST_CONNECTS"]
def _hook(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        host, port = args[1][:2]
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else host
    with open(_log, "a") as out:
        out.write(f"{host}:{port}\\n")
    if str(host) not in os.environ.get("HF_ENDPOINT", ""):  # who asked, for the failing test's message
        import traceback
        with open(_log + ".stacks", "a") as out:
            out.write(f"--- {host}:{port}\\n" + "".join(traceback.format_stack(limit=25)))
sys.addaudithook(_hook)
"""


def runner_env(server: LiveServer, token: str, home: Path, spec: dict[str, Any]) -> dict[str, str]:
    """The environment a compute job gives the evaluation program (this hub, a token, its own HOME), one thread;
    plus an audit hook writing each host the process looks up or connects to into ``home/connects.log``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "audit").mkdir(exist_ok=True)
    (home / "audit" / "sitecustomize.py").write_text(_AUDIT)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1", "HF_ENDPOINT": server.url, "HF_TOKEN": token, "HF_HUB_DISABLE_TELEMETRY": "1",
            "HUBSTEAD_EVAL_SPEC": json.dumps(spec), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(home / "audit"), "HUBSTEAD_TEST_CONNECTS": str(home / "connects.log")}


def foreign_hosts(server: LiveServer, home: Path) -> list[str]:
    """What a run in ``home`` looked up or connected to other than the test hub (its host and port)."""
    from urllib.parse import urlsplit

    hub = urlsplit(server.url)
    log = home / "connects.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted({line for line in lines if line != f"{hub.hostname}:{hub.port}"})


def foreign_stacks(home: Path) -> str:
    """Where the run asked for hosts other than the hub (stacks), for a failing assertion's message."""
    stacks = home / "connects.log.stacks"
    return stacks.read_text()[-6000:] if stacks.exists() else ""


def run_runner(server: LiveServer, token: str, home: Path, spec: dict[str, Any],
               timeout: int = 300) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], str | None]:
    """Run ``python -m hubstead.evals.program`` on the spec as a job would (it imports the framework's runner and
    calls ``run_task`` per task): (the process, each ``HUBSTEAD-EVAL`` score with the task's ``HUBSTEAD-PROGRESS``
    reports as ``progress`` [[done, total], ...], the ``HUBSTEAD-ERROR`` reason or None)."""
    from hubstead.evals.program import ERROR_MARK
    from hubstead.evals.spec import EVAL_MARK, PROGRESS_MARK, read_marks

    result = subprocess.run([sys.executable, "-m", "hubstead.evals.program"],
                            env=runner_env(server, token, home, spec), capture_output=True, text=True,
                            timeout=timeout, cwd=str(home))
    lines = result.stdout.splitlines()
    progress = read_marks(lines, PROGRESS_MARK)
    scores = [{**score, "progress": [[p["done"], p["total"]] for p in progress if p["task_id"] == score["task_id"]]}
              for score in read_marks(lines, EVAL_MARK)]
    failed = next((line[len(ERROR_MARK):] for line in lines if line.startswith(ERROR_MARK)), None)
    return result, scores, failed


def new_cache_entries(before: set[Path]) -> list[Path]:
    """Entries that appeared in this (test) process's mteb and datasets caches since ``before``: a job writes its
    caches under its own HOME, never here."""
    return sorted(set(_cache_entries()) - before)


def _cache_entries() -> list[Path]:
    roots = [Path.home() / ".cache" / "mteb", Path.home() / ".cache" / "huggingface" / "datasets"]
    return [entry for root in roots if root.is_dir() for entry in root.iterdir()]


def cache_snapshot() -> set[Path]:
    return set(_cache_entries())


def wait_evaluation(server: LiveServer, token: str, namespace: str, job_id: str,
                    timeout: float = 400) -> dict[str, Any]:
    """The run view (``GET /api/evaluations/{namespace}/{job_id}``) once its job ended and the hub wrote (or
    declined to write) its results."""
    import time

    import httpx

    deadline = time.time() + timeout
    view: dict[str, Any] = {}
    while time.time() < deadline:
        view = httpx.get(f"{server.url}/api/evaluations/{namespace}/{job_id}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        if view.get("finished") and (view["stage"] != "COMPLETED" or view["results"]
                                     or any("Results not written" in line for line in view["logTail"])):
            return view
        time.sleep(0.5)
    raise AssertionError(f"evaluation {job_id} did not end: {view}")
