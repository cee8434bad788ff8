#!/usr/bin/env python
"""Inference on a CUDA GPU, end to end: run on a machine with a GPU (it exits 2 without one).

Starts ``hubstead serve`` (``--inference-device auto``), pushes tiny models built from configs (a
classifier, a sentence-embedding BERT with a sentence-transformers pooling module, a GPT-2 with a chat
template; the same one again configured ``runtime: onnx``), calls them through the task API, ``/v1/embeddings``
and ``/v1/chat/completions`` (plain, streamed, and 8 streams at once), and checks that:

* every worker reports a CUDA device in ``/api/inference/status``, with one replica per model (replicas
  are a CPU measure);
* answers equal the same model run directly on the same GPU (transformers / sentence-transformers /
  ``model.generate``, greedy), and 8 concurrent streams equal each stream alone;
* a model configured for ONNX stays on PyTorch on a GPU, and says why.

Prints one JSON line per check and a summary; exit code 0 when all pass. Needs the hub's dependencies
and torch with CUDA (``PYTHONPATH=src`` is enough where they are installed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OWNER = "gpu"
RESULTS: list[dict] = []


def check(name: str, ok: bool, **detail: object) -> None:
    RESULTS.append({"check": name, "ok": bool(ok), **detail})
    print(json.dumps(RESULTS[-1], default=str), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORDS = ["user", "assistant", *(f"w{i}" for i in range(120))]


def prompts() -> list[str]:
    """Eight different prompts in the tiny tokenizer's words."""
    return [" ".join(f"w{(i * 7 + j * 3) % 120}" for j in range(6)) for i in range(8)]


def build_models(root: Path) -> dict[str, Path]:

    from inference_models import build

    models = {"classifier": build("text-classification", root / "classifier")}
    embedder = build("fill-mask", root / "embedder")  # a BERT; served as a sentence model through modules.json
    card = "---\npipeline_tag: feature-extraction\nlibrary_name: sentence-transformers\n---\n"
    (embedder / "README.md").write_text(card)
    (embedder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (embedder / "1_Pooling").mkdir()
    (embedder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32,
                                                                   "pooling_mode_mean_tokens": True}))
    (embedder / "2_Normalize").mkdir()
    (embedder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    models["embedder"] = embedder
    # A GPT-2 whose every token id is a word of the tokenizer, with weights wide enough that each prompt
    # gets its own greedy text (build()'s tiny model repeats one token).
    import torch
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as token_models
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    writer = root / "writer"
    writer.mkdir(parents=True)
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[BOS]", "[EOS]", *WORDS])}
    backend = Tokenizer(token_models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        bos_token="[BOS]", eos_token="[EOS]")
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant{% endif %}"
    )
    tokenizer.save_pretrained(writer)
    (writer / "README.md").write_text("---\npipeline_tag: text-generation\n---\n")
    special = set(tokenizer.all_special_ids)
    for seed in range(100):  # the first seed whose model writes words (not special tokens) for a prompt
        torch.manual_seed(seed)
        lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=2, n_positions=256,
                                        bos_token_id=2, eos_token_id=3, pad_token_id=0, initializer_range=0.3))
        chat = [{"role": "user", "content": prompts()[0]}]
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = lm.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=0)[0, ids["input_ids"].shape[1]:]
        if len(set(out.tolist()) - special) >= 4:
            break
    lm.save_pretrained(writer)
    models["writer"] = writer
    return models


def main() -> int:
    import numpy as np
    import torch

    dev = "cpu" if "--cpu" in sys.argv else "cuda"  # --cpu: a dry run of this script on a machine without one
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here (--cpu runs the same checks on the CPU)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="hubstead-gpu-"))
    models = build_models(root / "models")
    config = root / "inference.yaml"
    config.write_text(json.dumps({"models": {f"{OWNER}/embedder-onnx": {"runtime": "onnx"}}}))
    env = {**os.environ, "HUBSTEAD_DATA_DIR": str(root / "data"), "HUBSTEAD_INFERENCE_CONFIG": str(config),
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("HUBSTEAD_DATABASE_URL", None)
    if dev == "cpu":
        env.update(HUBSTEAD_INFERENCE_DEVICE="cpu", HUBSTEAD_INFERENCE_REPLICAS="1")
    cli = [sys.executable, "-m", "hubstead.cli"]
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                              stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError("the hub exited: " + (root / "server.log").read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        subprocess.run([*cli, "users", "create", OWNER], env=env, check=True, capture_output=True)
        token = subprocess.run([*cli, "tokens", "create", OWNER, "--role", "write"], env=env, check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]
        from huggingface_hub import HfApi

        api = HfApi(endpoint=url, token=token)
        for name, folder in [*models.items(), ("embedder-onnx", models["embedder"])]:
            api.create_repo(f"{OWNER}/{name}", exist_ok=True)
            api.upload_folder(folder_path=str(folder), repo_id=f"{OWNER}/{name}")
        auth = {"Authorization": f"Bearer {token}", "X-Wait-For-Model": "true"}
        client = httpx.Client(base_url=url, headers=auth, timeout=300)

        # --- classification ------------------------------------------------------------------------
        from transformers import pipeline

        texts = ["a happy day", "the worst film I have seen", "neutral words here"]
        got = client.post(f"/models/{OWNER}/classifier", json={"inputs": texts}).json()
        reference = pipeline("text-classification", model=str(models["classifier"]), device=dev, top_k=None)(texts)
        close = all(
            {g["label"]: g["score"] for g in gs}.keys() == {r["label"] for r in rs}
            and all(abs(g["score"] - {r["label"]: r["score"] for r in rs}[g["label"]]) < 1e-4 for g in gs)
            for gs, rs in zip(got, reference, strict=True)
        )
        check(f"text-classification equals the pipeline on {dev}", close, got=got[0])

        # --- embeddings ----------------------------------------------------------------------------
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(models["embedder"]), device=dev)
        want = st.encode(texts)
        for name in ("embedder", "embedder-onnx"):
            body = {"model": f"{OWNER}/{name}", "input": texts, "encoding_format": "float"}
            data = client.post("/v1/embeddings", json=body).json()["data"]
            vectors = np.array([d["embedding"] for d in data])
            check(f"/v1/embeddings ({name}) equals SentenceTransformer on {dev}",
                  np.allclose(vectors, want, atol=1e-4), max_diff=float(np.abs(vectors - want).max()))

        # --- chat ----------------------------------------------------------------------------------
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(models["writer"])
        lm = AutoModelForCausalLM.from_pretrained(models["writer"]).to(dev).eval()
        texts_in = prompts()

        def alone(prompt: str) -> str:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
            ids = {k: v.to(dev) for k, v in ids.items()}
            with torch.inference_mode():
                out = lm.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=0)
            return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

        def chat(prompt: str, stream: bool) -> str:
            body = {"model": f"{OWNER}/writer", "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 24, "temperature": 0, "stream": stream}
            if not stream:
                return client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
            text = ""
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        choices = json.loads(line[6:]).get("choices") or []
                        text += (choices[0]["delta"].get("content") or "") if choices else ""
            return text

        expected = [alone(p) for p in texts_in]
        plain = chat(texts_in[0], stream=False)
        check(f"chat (not streamed) equals model.generate on {dev}", plain == expected[0] and len(plain) > 10,
              got=plain, want=expected[0])
        results: list[str] = [""] * len(texts_in)

        def run(i: int) -> None:
            results[i] = chat(texts_in[i], stream=True)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts_in))]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("8 concurrent streams each equal model.generate alone", results == expected and len(set(results)) > 1,
              seconds=round(time.perf_counter() - started, 2),
              mismatches=[i for i in range(8) if results[i] != expected[i]])

        # --- where it ran ----------------------------------------------------------------------------
        status = client.get("/api/inference/status").json()["models"]
        devices = {m["repo_id"]: m.get("device") for m in status}
        check(f"every worker computes on {dev}", all(str(d).startswith(dev) for d in devices.values()),
              devices=devices)
        check("one replica per model", all(len(m.get("replicas") or []) == 1 for m in status),
              replicas={m["repo_id"]: len(m.get("replicas") or []) for m in status})
        onnx = next(m for m in status if m["repo_id"] == f"{OWNER}/embedder-onnx")
        if dev == "cuda":
            check("ONNX stays PyTorch on a GPU, with the reason",
                  onnx["form"] == "pytorch" and "cuda" in str(onnx.get("form_reason")), reason=onnx.get("form_reason"))
        metrics = client.get("/metrics").text
        check("metrics name the loaded models", "hubstead_model_memory_bytes" in metrics)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log = (root / "server.log").read_text(errors="replace")
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_server.log").write_text(log[-200_000:])
    failed = [r["check"] for r in RESULTS if not r["ok"]]
    print(json.dumps({"passed": len(RESULTS) - len(failed), "failed": failed}), flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
