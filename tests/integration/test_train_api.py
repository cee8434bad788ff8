"""Train as a service through HTTP: ``POST /api/train`` refuses in words, before any job exists, what cannot run (a
missing column, a label of the wrong type, a causal LM for classification, a model too big for the flavour, an output
repo elsewhere, a dataset the caller cannot read); a tiny run goes end to end as a compute job (its metric points
read back from ``GET /api/train/...``, the model pushed); ``hubstead train --follow`` submits and streams the log."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from support import Account, LiveServer
from train_support import push_dataset, push_model, sentiment_rows, tiny_bert, tiny_llama

pytestmark = pytest.mark.slow


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.write_token}"}


def _wait_converted(server: LiveServer, account: Account, repo_id: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = httpx.get(f"{server.url}/datasets-server/splits", params={"dataset": repo_id}, headers=_auth(account))
        if answer.status_code == 200 and answer.json()["splits"]:
            return
        time.sleep(0.3)
    raise AssertionError(f"the viewer did not convert {repo_id}: {answer.text}")


def _fake_big_safetensors(claimed: int) -> bytes:
    """A safetensors file whose header declares one float32 tensor of ``claimed`` bytes (the data is not there)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [claimed // 4], "data_offsets": [0, claimed]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 64


@pytest.fixture(scope="module")
def hub(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An account with a tiny BERT, a tiny Llama, a "big" BERT (its header claims 3 GiB), a sentiment dataset and
    one whose label is a float; a second account with a private dataset."""
    import datasets

    account = server.account("trainapi")
    other = server.account("trainother")
    root = tmp_path_factory.mktemp("train-api")
    ns = account.name
    push_model(server, account.write_token, f"{ns}/tiny-bert", tiny_bert(root / "bert"))
    push_model(server, account.write_token, f"{ns}/tiny-llama", tiny_llama(root / "llama"))
    big = root / "big"
    big.mkdir()
    (big / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    (big / "model.safetensors").write_bytes(_fake_big_safetensors(3 * 2**30))
    push_model(server, account.write_token, f"{ns}/big-bert", big)
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    push_dataset(server, account.write_token, f"{ns}/sentiment",
                 {"train": sentiment_rows(96), "test": sentiment_rows(32, seed=1)}, features)
    scores = [{"text": r["text"], "label": float(r["label"]) / 2} for r in sentiment_rows(20)]
    push_dataset(server, account.write_token, f"{ns}/scores", {"train": scores})
    push_dataset(server, other.write_token, f"{other.name}/secret", {"train": sentiment_rows(20)})
    HfApi(endpoint=server.url, token=other.write_token).update_repo_settings(f"{other.name}/secret", private=True,
                                                                            repo_type="dataset")
    for repo_id, owner in ((f"{ns}/sentiment", account), (f"{ns}/scores", account), (f"{other.name}/secret", other)):
        _wait_converted(server, owner, repo_id)
    return {"account": account, "other": other, "ns": ns}


def _form(hub: dict[str, Any], out: str, **changes: Any) -> dict[str, Any]:
    ns = hub["ns"]
    form: dict[str, Any] = {
        "task": "text-classification", "base_model": f"{ns}/tiny-bert", "dataset": f"{ns}/sentiment",
        "eval_split": "test", "output": {"repo_id": f"{ns}/{out}"},
        "hyperparameters": {"max_steps": 24, "batch_size": 16, "learning_rate": 5e-3, "logging_steps": 2,
                            "eval_steps": 8, "save_steps": 8, "max_length": 32},
    }
    form.update(changes)
    return form


def _post(server: LiveServer, account: Account, form: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/api/train", json=form, headers=_auth(account), timeout=60)


def _jobs(server: LiveServer, account: Account) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/jobs/{account.name}", headers=_auth(account))
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_bad_runs_are_refused_in_words_before_any_job_exists(server: LiveServer, hub: dict[str, Any]) -> None:
    """Each refusal is a 4xx with the Hub's error shape naming the problem, and no job is queued for any of them."""
    account, other, ns = hub["account"], hub["other"], hub["ns"]
    before = len(_jobs(server, account))
    cases: list[tuple[dict[str, Any], int, str]] = [
        (_form(hub, "o1", columns={"text": "sentence"}), 400, "the text column 'sentence' is not in the dataset"),
        (_form(hub, "o2", dataset=f"{ns}/scores", eval_split=None), 400,
         "must be a class label, an integer or a string for classification, not a float"),
        (_form(hub, "o3", base_model=f"{ns}/tiny-llama"), 400, "is a causal language model"),
        (_form(hub, "o4", base_model=f"{ns}/big-bert"), 400, "needs about 12.5 GiB to train with method full; "
                                                             "cpu-basic has"),
        (_form(hub, "o5", output={"repo_id": f"{other.name}/stolen"}), 403, f"You cannot write in {other.name}"),
        (_form(hub, "o6", dataset=f"{other.name}/secret", eval_split=None), 404, f"{other.name}/secret was not found"),
        (_form(hub, "o7", train_split="validation"), 400, "has no split 'validation' (its splits: test, train)"),
        (_form(hub, "o8", task="sft"), 400, "is not a causal language model"),
        (_form(hub, "o9", base_model=f"{ns}/nope"), 404, "not found"),
        (_form(hub, "o10", output={"repo_id": f"{ns}/tiny-bert"}), 400, "already exists"),
        (_form(hub, "o11", hyperparameters={"learning_rate": 5}), 400, "learning_rate must be between"),
        (_form(hub, "o12", flavor="gpu-64x"), 400, "Unknown flavor"),
    ]
    for form, status, words in cases:
        answer = _post(server, account, form)
        assert answer.status_code == status, (form, answer.status_code, answer.text)
        assert words in answer.json()["error"], (words, answer.json())
        assert answer.headers.get("X-Error-Message"), answer.headers
    anonymous = httpx.post(f"{server.url}/api/train", json=_form(hub, "o13"))
    assert anonymous.status_code == 401
    read_only = httpx.post(f"{server.url}/api/train", json=_form(hub, "o14"),
                           headers={"Authorization": f"Bearer {account.read_token}"})
    assert read_only.status_code == 403
    assert len(_jobs(server, account)) == before


def _wait_run(server: LiveServer, account: Account, ns: str, job_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        view = httpx.get(f"{server.url}/api/train/{ns}/{job_id}", headers=_auth(account)).json()
        if view["finished"]:
            return dict(view)
        time.sleep(0.5)
    raise AssertionError(f"the run did not finish: {view}")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_tiny_run_goes_end_to_end_and_reads_back(server: LiveServer, hub: dict[str, Any]) -> None:
    """POST /api/train queues a compute job (image hubstead/python, label hubstead-train, 2 attempts) that trains,
    evaluates and pushes; GET /api/train/... then has the train-loss points (the loss went down), the eval metric,
    the final evaluation and the pushed repo's link; the repo holds the model, its card and the curve."""
    account, ns = hub["account"], hub["ns"]
    answer = _post(server, account, _form(hub, "api-run", name="first run"))
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["namespace"] == ns and run["url"].endswith(f"/train/{ns}/{run['jobId']}")
    job = run["job"]
    assert job["dockerImage"] == "hubstead/python" and job["labels"] == {"hubstead-train": "text-classification",
                                                                         "name": "first run"}
    assert job["command"] == ["python", "-m", "hubstead.train.program"] and job["retry"] == 1
    view = _wait_run(server, account, ns, run["jobId"])
    assert view["stage"] == "COMPLETED", (view["message"], view["error"], view["logTail"])
    losses = [p["loss"] for p in view["points"] if "loss" in p]
    assert len(losses) >= 5 and min(losses[-3:]) < losses[0], losses
    assert view["metric"] == "eval_accuracy" and any("eval_loss" in p for p in view["points"])
    assert view["eval"]["eval_accuracy"] > 0.5, view["eval"]
    assert view["output"]["repoId"] == f"{ns}/api-run" and view["output"]["url"].endswith(f"/{ns}/api-run")
    files = HfApi(endpoint=server.url, token=account.write_token).list_repo_files(f"{ns}/api-run")
    assert {"model.safetensors", "README.md", "training_curve.svg", "config.json"} <= set(files), files
    listed = httpx.get(f"{server.url}/api/train/{ns}", headers=_auth(account)).json()
    assert run["jobId"] in [r["jobId"] for r in listed]
    # Runs belong to the namespace's members, like its jobs; a plain job is not a run.
    stranger = httpx.get(f"{server.url}/api/train/{ns}/{run['jobId']}", headers=_auth(hub["other"]))
    assert stranger.status_code == 404


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_the_cli_submits_and_follows(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """``hubstead train ... --follow`` posts to the running hub, streams the run's log (its metric lines among it)
    and exits 0 with the model's link; a bad run is refused with the server's words and exit status 2."""
    account, ns = hub["account"], hub["ns"]
    base = [sys.executable, "-m", "hubstead.cli", "train", "--endpoint", server.url, "--token", account.write_token,
            "--model", f"{ns}/tiny-bert", "--dataset", f"{ns}/sentiment", "--task", "text-classification",
            "--eval-split", "test"]
    params = ["--param", "max_steps=6", "--param", "logging_steps=2", "--param", "eval_steps=3", "--param",
              "save_steps=3", "--param", "max_length=32", "--param", "batch_size=16"]
    done = subprocess.run([*base, "--output", f"{ns}/cli-run", *params, "--follow"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "queued in" in done.stdout and "HUBSTEAD-METRIC" in done.stdout and "ended: COMPLETED" in done.stdout
    assert f"/{ns}/cli-run" in done.stdout
    refused = subprocess.run([*base, "--output", f"{ns}/cli-bad", "--column", "text=nothing"], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
    assert refused.returncode == 2 and "'nothing' is not in the dataset" in refused.stderr, refused.stderr


def test_the_forms_fragments_read_the_viewers_schema_and_the_tasks_defaults(server: LiveServer,
                                                                           hub: dict[str, Any]) -> None:
    """``/train/-/columns`` lists a readable dataset's splits and each column with its type, under the task's roles;
    a private dataset of someone else reads as not found (no column names leak); ``/train/-/params`` shows the
    task's defaults for the method (LoRA's settings only for LoRA); ``/train`` sends a visitor to sign in."""
    from support import web_session

    ns, other = hub["ns"], hub["other"]
    viewer = server.account("trainpage", password="train-page-pass-1234")
    client, _ = web_session(server, viewer.name, "train-page-pass-1234")
    page = client.get("/train/-/columns", params={"dataset": f"{ns}/sentiment", "task": "text-classification"})
    assert page.status_code == 200
    assert "text · string" in page.text and "label · class label (negative, positive)" in page.text
    assert 'name="col_text_pair"' in page.text and "<option>test</option>" in page.text.replace(" selected", "")
    hidden = client.get("/train/-/columns", params={"dataset": f"{other.name}/secret", "task": "text-classification"})
    assert f"{other.name}/secret was not found" in hidden.text and "· string" not in hidden.text
    sft = client.get("/train/-/params", params={"task": "sft", "method": "lora"}).text
    assert 'name="param_lora_r" value="16"' in sft and 'name="param_learning_rate" value="0.0002"' in sft
    full = client.get("/train/-/params", params={"task": "text-classification", "method": "full"}).text
    assert "param_lora_r" not in full and 'name="param_epochs" value="3.0"' in full
    visitor = httpx.get(f"{server.url}/train", follow_redirects=False)
    assert visitor.status_code == 303 and visitor.headers["location"].startswith("/login")
