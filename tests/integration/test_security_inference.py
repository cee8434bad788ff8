"""Inference errors say what went wrong in the repo's terms, never with the hub's own file paths."""

from __future__ import annotations

import base64
import json

import httpx

from support import LiveServer


def test_a_model_that_cannot_load_does_not_reveal_the_hubs_paths(server: LiveServer) -> None:
    """Found by the private-repo sweep: a public repo with a config.json and no weights answered an error
    quoting the absolute path of the hub's snapshot directory and a traceback through the hub's own code."""
    account = server.account("noweights")
    repo = f"{account.name}/no-weights"
    auth = {"authorization": f"Bearer {account.write_token}"}
    r = httpx.post(f"{server.url}/api/repos/create", json={"name": repo, "type": "model"}, headers=auth)
    assert r.status_code == 200, r.text
    config = json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}).encode()
    card = b"---\npipeline_tag: fill-mask\n---\n"
    lines = [{"key": "header", "value": {"summary": "config only", "description": ""}}]
    for path, data in (("config.json", config), ("README.md", card)):
        lines.append({"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(),
                                               "encoding": "base64"}})
    body = "\n".join(json.dumps(line) for line in lines).encode()
    r = httpx.post(f"{server.url}/api/models/{repo}/commit/main", content=body,
                   headers={**auth, "content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text

    r = httpx.post(f"{server.url}/models/{repo}", json={"inputs": "Paris is the [MASK] of France."},
                   headers={**auth, "x-wait-for-model": "true"}, timeout=300)
    assert r.status_code == 422, r.text  # the repo's files cannot be loaded: the repo's fault, not the hub's
    text = r.text + r.headers.get("x-error-message", "")
    data_dir = str(server.data_dir)
    assert data_dir not in text and "/inference/snapshots/" not in text, text
    assert repo in text and "Traceback" not in text and "site-packages" not in text, text
