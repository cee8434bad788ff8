"""A PEFT adapter repo is served by the inference API on its base model, under the adapter's own id.

A tiny BERT classifier is the base; a LoRA adapter for it is made locally with peft (random LoRA weights,
``init_lora_weights=False``, so its answers differ from the base's) and pushed as its own repo with an
adapter card. The server's answers are compared with peft run locally on base + adapter.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from huggingface_hub import HfApi  # noqa: E402

from inference_models import build  # noqa: E402
from support import LiveServer, web_session  # noqa: E402

TEXT = "i love this movie"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The base (two weight versions) and two adapters, built once for the module."""
    import torch
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("adapters")
    base = build("text-classification", root / "base")
    base2 = root / "base2"
    shutil.copytree(base, base2)
    torch.manual_seed(7)
    retrained = AutoModelForSequenceClassification.from_pretrained(base)
    with torch.no_grad():
        for parameter in retrained.bert.encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    retrained.save_pretrained(base2)
    return {"base": base, "base2": base2, "v1": _adapter(base, root / "v1", seed=1), "v2": _adapter(base, root / "v2", seed=2)}


def _adapter(base: Path, folder: Path, *, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=32, target_modules=["query", "value"],
                        init_lora_weights=False)
    model = get_peft_model(AutoModelForSequenceClassification.from_pretrained(base), config)
    with torch.no_grad():  # the head the adapter trains (modules_to_save): large enough that answers move
        for parameter in model.base_model.model.classifier.modules_to_save["default"].parameters():
            parameter.normal_(0, 1.0)
    model.save_pretrained(str(folder))
    return folder


def _push_adapter(api: HfApi, folder: Path, repo_id: str, base_id: str, *, pipeline_tag: str | None,
                  private: bool = False) -> None:
    """The adapter's files, its config naming ``base_id`` on this hub, and an adapter card."""
    staged = folder.parent / f"{folder.name}-{repo_id.replace('/', '-')}"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(folder, staged)
    config = json.loads((staged / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_id  # peft wrote the local folder the base came from
    (staged / "adapter_config.json").write_text(json.dumps(config))
    tag = f"pipeline_tag: {pipeline_tag}\n" if pipeline_tag else ""
    (staged / "README.md").write_text(
        f"---\nbase_model: {base_id}\nbase_model_relation: adapter\nlibrary_name: peft\n{tag}---\n# LoRA\n"
    )
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(staged), repo_id=repo_id)


def _push_base(api: HfApi, folder: Path, repo_id: str, *, private: bool = False) -> None:
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)


def _reference(base: Path, adapter: Path | None) -> dict[str, float]:
    """What peft computes locally: the base pipeline with the (unmerged) adapter applied."""
    from peft import PeftModel
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(base))
    if adapter is not None:
        pipe.model = PeftModel.from_pretrained(pipe.model, str(adapter)).eval()
    return {o["label"]: o["score"] for o in pipe(TEXT, top_k=None)}


def _client(server: LiveServer, repo_id: str, token: str):  # type: ignore[no-untyped-def]
    from huggingface_hub import InferenceClient

    return InferenceClient(model=f"{server.url}/models/{repo_id}", token=token, headers={"X-Wait-For-Model": "true"})


def _scores(answer: Any) -> dict[str, float]:
    items = answer[0] if answer and isinstance(answer[0], list) else answer
    return {(o["label"] if isinstance(o, dict) else o.label): (o["score"] if isinstance(o, dict) else o.score)
            for o in items}


def _same(got: dict[str, float], want: dict[str, float]) -> bool:
    return got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-4 for k in want)


def _apart(one: dict[str, float], other: dict[str, float]) -> bool:
    return any(abs(one[k] - other[k]) > 1e-2 for k in one)


def test_adapter_is_served_on_its_base_reloads_and_its_widget_works(server: LiveServer, folders: dict[str, Path]) -> None:
    """The real InferenceClient on the adapter's id gets what peft computes for base + adapter (not the base's
    answer); the adapter's page widget (session + CSRF) gets the same; the base's model tree and the
    base_model listing name the adapter; a new adapter commit (whose card drops pipeline_tag: the base's is
    used) and then a new base commit each reload the served model."""
    owner = server.account("lora", password="pw-lora-owner-1")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    base_id, adapter_id = f"{owner.name}/tiny-bert", f"{owner.name}/tiny-bert-lora"
    _push_base(api, folders["base"], base_id)
    _push_adapter(api, folders["v1"], adapter_id, base_id, pipeline_tag="text-classification")

    want = _reference(folders["base"], folders["v1"])
    assert _apart(want, _reference(folders["base"], None))  # the adapter changes the answer
    got = _scores(_client(server, adapter_id, owner.read_token).text_classification(TEXT))
    assert _same(got, want), (got, want)

    # the widget on the adapter's page calls the same API with the browser's session
    web, csrf = web_session(server, owner.name, "pw-lora-owner-1")
    page = web.get(f"/{adapter_id}")
    assert page.status_code == 200 and 'id="inference-widget"' in page.text
    url = re.search(r'data-url="([^"]+)"', page.text)
    assert url and url.group(1) == f"/models/{adapter_id}"
    answer = web.post(url.group(1), json={"inputs": TEXT}, headers={"X-CSRF-Token": csrf, "x-wait-for-model": "true"},
                      timeout=300)
    assert answer.status_code == 200, answer.text
    assert _same(_scores(answer.json()), want)

    # the model tree: the base's page lists it under Adapters; the Hub's base_model filter finds it
    tree = httpx.get(f"{server.url}/{base_id}").text
    assert "Adapters" in tree and adapter_id in tree
    assert adapter_id in [m.id for m in api.list_models(filter=f"base_model:{base_id}")]
    card = api.model_info(adapter_id).card_data
    assert card is not None and card["base_model"] == base_id

    # a new adapter commit reloads; its card has no pipeline_tag, so the task is the base's
    _push_adapter(api, folders["v2"], adapter_id, base_id, pipeline_tag=None)
    want2 = _reference(folders["base"], folders["v2"])
    assert _apart(want2, want)
    got2 = _scores(_client(server, adapter_id, owner.read_token).text_classification(TEXT))
    assert _same(got2, want2), (got2, want2)
    page = web.get(f"/{adapter_id}").text  # the widget still shows, with the base's task
    assert 'data-task="text-classification"' in page and f'data-url="/models/{adapter_id}"' in page

    # a new base commit reloads the adapter too: it is applied to the base's new weights
    api.upload_file(path_or_fileobj=str(folders["base2"] / "model.safetensors"), path_in_repo="model.safetensors",
                    repo_id=base_id)
    want3 = _reference(folders["base2"], folders["v2"])
    assert _apart(want3, want2)
    got3 = _scores(_client(server, adapter_id, owner.read_token).text_classification(TEXT))
    assert _same(got3, want3), (got3, want3)


def test_adapter_on_a_base_the_caller_cannot_read_is_refused(server: LiveServer, folders: dict[str, Path]) -> None:
    """An adapter is served only to callers who can read its base as well: a private base the caller cannot
    read, and a base that does not exist, are the same 424 in words (nothing loads); a bad adapter_config is
    a 424 too, never a 500."""
    owner = server.account("lorapriv")
    other = server.account("loraother")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    base_id, adapter_id = f"{owner.name}/secret-base", f"{owner.name}/public-lora"
    _push_base(api, folders["base"], base_id, private=True)
    _push_adapter(api, folders["v1"], adapter_id, base_id, pipeline_tag="text-classification")
    missing_id = f"{owner.name}/lora-on-nothing"
    _push_adapter(api, folders["v1"], missing_id, f"{owner.name}/no-such-base", pipeline_tag="text-classification")

    for repo_id, base in ((adapter_id, base_id), (missing_id, f"{owner.name}/no-such-base")):
        r = httpx.post(f"{server.url}/models/{repo_id}", json={"inputs": TEXT},
                       headers={"Authorization": f"Bearer {other.read_token}", "x-wait-for-model": "true"}, timeout=60)
        assert r.status_code == 424, r.text
        assert f"adapter on {base}" in r.json()["error"] and "read access to both" in r.json()["error"]
        assert r.headers["x-error-code"] == "BaseModelUnavailable"

    gated_base, gated_adapter = f"{owner.name}/gated-base", f"{owner.name}/lora-on-gated"
    _push_base(api, folders["base"], gated_base)
    api.update_repo_settings(gated_base, gated="manual")
    _push_adapter(api, folders["v1"], gated_adapter, gated_base, pipeline_tag="text-classification")
    r = httpx.post(f"{server.url}/models/{gated_adapter}", json={"inputs": TEXT},
                   headers={"Authorization": f"Bearer {other.read_token}"}, timeout=60)
    assert r.status_code == 403 and r.headers["x-error-code"] == "GatedRepo", r.text
    assert f"an adapter on {gated_base}, a gated model" in r.json()["error"]

    broken = f"{owner.name}/broken-lora"
    api.create_repo(broken)
    api.upload_file(path_or_fileobj=b"{not json", path_in_repo="adapter_config.json", repo_id=broken)
    r = httpx.post(f"{server.url}/models/{broken}", json={"inputs": TEXT},
                   headers={"Authorization": f"Bearer {owner.read_token}"}, timeout=60)
    assert r.status_code == 424 and "adapter_config.json is not valid JSON" in r.json()["error"], r.text

    status = httpx.get(f"{server.url}/api/inference/status", headers={"Authorization": f"Bearer {owner.read_token}"})
    assert all(m["repo_id"] not in (adapter_id, missing_id, broken) for m in status.json().get("models", []))


def test_text_generation_adapter_generates_like_peft(server: LiveServer, tmp_path: Path) -> None:
    """A LoRA on a tiny GPT-2 (a causal-LM adapter, served by the generation runner): greedy text through the
    real client equals peft's generate on base + adapter, and differs from the base's own."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build("text-generation", tmp_path / "gpt2")
    torch.manual_seed(3)
    config = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=64, target_modules=["c_attn"], fan_in_fan_out=True,
                        init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), config).save_pretrained(str(tmp_path / "lora"))

    owner = server.account("loragen")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    base_id, adapter_id = f"{owner.name}/tiny-gpt2", f"{owner.name}/tiny-gpt2-lora"
    _push_base(api, base, base_id)
    _push_adapter(api, tmp_path / "lora", adapter_id, base_id, pipeline_tag="text-generation")

    tokenizer = AutoTokenizer.from_pretrained(base)
    ids = tokenizer("hello world", return_tensors="pt")["input_ids"]

    def greedy(model: Any) -> list[int]:
        with torch.no_grad():
            out = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        generated: list[int] = out[0][ids.shape[1]:].tolist()
        return generated[: generated.index(199)] if 199 in generated else generated  # the server stops at eos

    # token ids, not text: the tiny model's vocabulary is larger than its tokenizer's, so most ids decode to ""
    plain = greedy(AutoModelForCausalLM.from_pretrained(base).eval())
    want = greedy(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(tmp_path / "lora")).eval())
    assert want != plain
    got = _client(server, adapter_id, owner.read_token).text_generation("hello world", max_new_tokens=8,
                                                                         temperature=0.0, details=True)
    assert [t.id for t in got.details.tokens] == want


def test_the_hub_process_never_imports_peft(tmp_path: Path) -> None:
    """The adapter code the hub runs (lookups, adapters, the service) imports neither peft nor torch: peft is
    imported only inside the worker process, where the adapter is applied."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from hubstead.config import load_settings\n"
        "from hubstead.app import create_app\n"
        "import hubstead.inference.adapters, hubstead.inference.routes.lookups, hubstead.inference.widgets\n"
        f"app = create_app(load_settings(data_dir={str(tmp_path)!r}))\n"
        "heavy = [m for m in ('peft', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
