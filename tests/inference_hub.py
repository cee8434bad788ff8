"""Live servers for the inference tests (integration and browser): one with every task's model, and
one with a small memory budget and a short queue. Session-scoped: models are built and pushed once."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inference_models import build, minilm_dir, smollm2_safetensors
from support import LiveServer

OWNER = "infer"
METRICS_TOKEN = "metrics-scrape-token-for-tests"  # /metrics needs a token (HUBSTEAD_METRICS_TOKEN)
TASKS = ["text-classification", "text-ranking", "token-classification", "question-answering", "fill-mask", "zero-shot-classification",
         "summarization", "translation", "text-generation", "image-classification", "automatic-speech-recognition"]


class Hub:
    def __init__(self, server: LiveServer, token: str, read_token: str, models: dict[str, Path]) -> None:
        self.server = server
        self.token = token
        self.read_token = read_token
        self.models = models

    @property
    def url(self) -> str:
        return self.server.url

    def model_url(self, name: str) -> str:
        return f"{self.url}/models/{OWNER}/{name}"

    def post(self, name: str, body: Any, *, wait: bool = True, token: str | None = "read",
             headers: dict[str, str] | None = None) -> httpx.Response:
        headers = {**({"x-wait-for-model": "true"} if wait else {}), **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {self.read_token if token == 'read' else token}"
        return httpx.post(self.model_url(name), json=body, headers=headers, timeout=300)

    def client(self, name: str):  # type: ignore[no-untyped-def]
        from huggingface_hub import InferenceClient

        return InferenceClient(model=self.model_url(name), token=self.read_token, headers={"X-Wait-For-Model": "true"})

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total


def push(api, folder: Path, name: str, *, private: bool = False) -> None:  # type: ignore[no-untyped-def]
    api.create_repo(f"{OWNER}/{name}", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=f"{OWNER}/{name}")


@pytest.fixture(scope="session")
def inference_hub() -> Iterator[Hub]:
    from huggingface_hub import HfApi

    root = Path(tempfile.mkdtemp(prefix="hubstead-inference-"))
    port_server = LiveServer(data_dir=root / "data", database_url=None, backend="sqlite")
    config = root / "inference.yaml"
    config.write_text(json.dumps({"models": {
        f"{OWNER}/remote-chat": {"engine_url": f"{port_server.url}/v1", "engine_model": f"{OWNER}/smollm"},
        f"{OWNER}/minilm-onnx": {"runtime": "onnx"},
        f"{OWNER}/minilm-int8": {"runtime": "onnx-int8", "min_cosine": 0.95},
        f"{OWNER}/minilm-replicas": {"replicas": 2},
    }}))
    # One worker per model (the default on 2+ cores is two for encoders), except minilm-replicas: the
    # suite then loads half the processes; test_replicas_* covers the pool.
    port_server.extra_env.update(HUBSTEAD_INFERENCE_CONFIG=str(config), HUBSTEAD_INFERENCE_MEMORY="10GiB",
                                 HUBSTEAD_INFERENCE_REPLICAS="1", HUBSTEAD_METRICS_TOKEN=METRICS_TOKEN)
    port_server.start()
    port_server.cli("users", "create", OWNER)
    token = port_server.cli("tokens", "create", OWNER, "--role", "write").stdout.strip().splitlines()[-1]
    read_token = port_server.cli("tokens", "create", OWNER, "--role", "read").stdout.strip().splitlines()[-1]
    api = HfApi(endpoint=port_server.url, token=token)
    models: dict[str, Path] = {}
    for task in TASKS:
        models[task] = build(task, root / "models" / task)
        push(api, models[task], task)
    models["minilm"] = minilm_dir()
    for name in ("minilm", "minilm-onnx", "minilm-int8", "minilm-replicas"):
        push(api, models["minilm"], name)
    models["smollm"] = smollm2_safetensors(root / "models" / "smollm")
    push(api, models["smollm"], "smollm")
    remote = root / "models" / "remote-chat"
    remote.mkdir()
    (remote / "README.md").write_text("---\npipeline_tag: text-generation\n---\nServed by an external engine.\n")
    push(api, remote, "remote-chat")
    yield Hub(port_server, token, read_token, models)
    port_server.stop()
    shutil.rmtree(root, ignore_errors=True)



@pytest.fixture(scope="session")
def small_inference_hub() -> Iterator[Hub]:
    from huggingface_hub import HfApi

    root = Path(tempfile.mkdtemp(prefix="hubstead-inference-small-"))
    server = LiveServer(data_dir=root / "data", database_url=None, backend="sqlite",
                        extra_env={"HUBSTEAD_INFERENCE_MEMORY": "520MiB", "HUBSTEAD_INFERENCE_MAX_QUEUE": "2",
                                   "HUBSTEAD_INFERENCE_THREADS": "1", "HUBSTEAD_INFERENCE_REPLICAS": "1",
                                   "HUBSTEAD_METRICS_TOKEN": METRICS_TOKEN})
    server.start()
    server.cli("users", "create", OWNER)
    token = server.cli("tokens", "create", OWNER, "--role", "write").stdout.strip().splitlines()[-1]
    api = HfApi(endpoint=server.url, token=token)
    models = {"first": build("text-classification", root / "m" / "first"),
              "writer": build("text-generation", root / "m" / "writer"), "minilm": minilm_dir()}
    models["second"] = models["first"]
    for name, folder in models.items():
        push(api, folder, name)
    yield Hub(server, token, token, models)
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


