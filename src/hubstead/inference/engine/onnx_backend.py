"""ONNX Runtime serving for encoder and sequence-classification models, behind an accuracy gate.

Inference workers load a transformers model in PyTorch first; this module turns it into an ONNX graph
(optimized and optionally int8-quantized) that runs several times faster on CPU. ORT's transformer
fusions (fused Attention, SkipLayerNormalization, ...) are not always faster than the graph ORT's own
session optimizations make of the plain export: on an AMD EPYC (Zen 4/5, AVX-512) with ORT 1.32 the fused
all-MiniLM-L6-v2 was 11-20% slower. So an fp32 build times both on this machine and serves the faster.

Speed is only worth having if the answers stay the same, so every build is compared with the PyTorch
model on held-out texts and reports whether it may be served. A rejected build is a normal outcome, not
an error: the caller keeps serving PyTorch. Builds are cached on disk so a worker restart does not pay
for the export again.

Only inference worker processes import this module: it pulls in torch, onnx and onnxruntime.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import logging
import os
import pathlib
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

log = logging.getLogger(__name__)

KINDS = ("encoder", "sequence-classification")
FORM_FP32 = "onnx-fp32"
FORM_INT8 = "onnx-int8"

# Why these numbers: an fp32 graph differs from PyTorch only by kernel rounding (cosine ~0.99999), so
# anything under 0.999 means a broken export. Dynamic int8 weights cost about 1-2% of cosine on small
# sentence encoders, which keeps retrieval rankings intact but is worth refusing below 0.98.
DEFAULT_MIN_COSINE = {FORM_FP32: 0.999, FORM_INT8: 0.98}
# A classifier that changes its answer is wrong however close its logits are; int8 may flip a borderline
# sample now and then (one in ~33), fp32 never should.
MIN_LABEL_AGREEMENT = {FORM_FP32: 1.0, FORM_INT8: 0.97}

# int8 schemes, tried in order until one passes the gate. Quantizing everything (the embedding table and
# the fused attention too) makes all-MiniLM-L6-v2 4x smaller and ~1.9x faster than fp32 but scores a
# pooled cosine min of ~0.978; keeping the fused attention in fp32 scores ~0.986 at 3x smaller, ~1.5x faster.
INT8_SCHEMES: tuple[tuple[str, list[str] | None], ...] = (
    ("all-ops", None),
    ("attention-fp32", ["MatMul", "Gather", "EmbedLayerNormalization"]),
)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BUILD_RECORD = "build.json"
LOCK_FILE = ".lock"
TMP_PREFIX = ".build-"
LEGACY_OPSET = 17
DYNAMO_OPSET = 18
# The protobuf limit for a single-file ONNX model; anything bigger needs external data, which this
# module does not manage (its caches are one file per build).
MAX_SINGLE_FILE_BYTES = 2_000_000_000
# Model families whose graphs ORT's "bert" fusions (attention, embed+layernorm, skip-layernorm, gelu)
# understand; others are served with ORT's generic graph optimizations only.
BERT_LIKE = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra"})

# Held-out sentences for the accuracy gate: varied topics, punctuation, numbers, a question, a single
# word and one long paragraph, so padding, truncation and long-range attention are all exercised.
SAMPLE_TEXTS: tuple[str, ...] = (
    "Hello.",
    "The cat sat on the mat.",
    "How do I reset my password if I no longer have access to my email?",
    "Interest rates rose by 0.25 percentage points on Wednesday.",
    "A quick brown fox jumps over the lazy dog.",
    "The committee postponed its decision until the next quarterly meeting.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "I loved this film, although the ending felt rushed.",
    "The service was slow and the food arrived cold; I will not be coming back.",
    "Please restart the server after applying the security patch.",
    "Mount Everest is the highest mountain above sea level, at 8,849 metres.",
    "She plays the violin in a string quartet every Sunday afternoon.",
    "Can you recommend a good book about the history of mathematics?",
    "The train to Edinburgh departs from platform 4 at 09:15.",
    "Neural networks learn representations by adjusting weights through gradient descent.",
    "Rain is expected across the north-west, clearing by the evening.",
    "Tokenization splits text into subword units before the model sees it.",
    "Our quarterly revenue grew 12% year over year, driven by subscription sales.",
    "The museum reopened after a two-year renovation of its east wing.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Why is the sky blue during the day but red at sunset?",
    "He forgot his umbrella, so he waited under the bus shelter.",
    "Version 2.3 fixes a memory leak in the image decoder.",
    "The children built a sandcastle that the tide washed away within minutes.",
    "Absolutely terrible customer support.",
    "Vaccines train the immune system to recognise specific pathogens.",
    "The library is closed on public holidays.",
    "Several species of migratory birds stop at the wetlands each spring.",
    "Refunds are processed within five to seven business days.",
    "Chess engines evaluate millions of positions per second.",
    "Fresh basil, tomatoes and mozzarella make a simple summer salad.",
    (
        "When the city council announced the new cycling network, residents were divided: some welcomed "
        "the protected lanes and the quieter streets, while shop owners worried that removing parking "
        "spaces would drive customers to the out-of-town retail park. After a year of trials, footfall "
        "on the high street had risen by almost a fifth, accident reports had fallen, and the council "
        "voted to extend the scheme to the neighbouring districts, promising further consultation with "
        "businesses about delivery times and loading bays before construction begins next spring."
    ),
)


class OnnxExportError(RuntimeError):
    """The model could not be turned into a working ONNX graph (not an accuracy miss)."""


@dataclass
class OnnxBuild:
    """A built (or cached) ONNX graph, its accuracy verdict, and the session that serves it."""

    form: str
    accepted: bool
    metrics: dict
    reason: str
    path: str
    file_bytes: int
    session: ort.InferenceSession | None = field(default=None, repr=False, compare=False)
    input_names: tuple[str, ...] = field(default=(), compare=False)
    # Sessions on the same graph by intra-op thread count (a replica computing alone uses every core).
    sessions: dict[int, ort.InferenceSession] = field(default_factory=dict, repr=False, compare=False)

    def use_threads(self, threads: int) -> None:
        """Serve from a session with ``threads`` compute threads (made on first use, then kept)."""
        session = self.sessions.get(threads)
        if session is None:
            session = self.sessions[threads] = _session(pathlib.Path(self.path), threads)
        self.session = session

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph and return its first output ([B,T,H] hidden states or [B,C] logits).

        Feeds only the inputs the graph takes, as int64; a missing attention_mask or token_type_ids is
        filled the way the PyTorch model would default it (all ones, all zeros).
        """
        if self.session is None:
            raise RuntimeError("OnnxBuild has no session")
        if "input_ids" not in inputs:
            raise KeyError("input_ids is required")
        ids = np.asarray(inputs["input_ids"], dtype=np.int64)
        feed: dict[str, np.ndarray] = {}
        for name in self.input_names:
            if name in inputs:
                feed[name] = np.asarray(inputs[name], dtype=np.int64)
            elif name == "attention_mask":
                feed[name] = np.ones_like(ids)
            elif name == "token_type_ids":
                feed[name] = np.zeros_like(ids)
            else:
                raise KeyError(f"the ONNX graph needs input {name!r}")
        return self.session.run(None, feed)[0]


def build_onnx(
    model: Any,
    tokenizer: Any,
    *,
    kind: str,
    cache_dir: pathlib.Path,
    quantize: bool,
    min_cosine: float | None = None,
    sample_texts: list[str] | None = None,
    threads: int | None = None,
) -> OnnxBuild:
    """Export, optimize (and optionally quantize) ``model``, gate it against PyTorch, cache the result.

    ``cache_dir`` must be unique per model commit and form; a finished build there (``build.json``) is
    reused without exporting again, and its verdict is re-judged against the current ``min_cosine``.
    Raises OnnxExportError only when no working graph can be produced; an accuracy miss returns a build
    with ``accepted=False``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    form = FORM_INT8 if quantize else FORM_FP32
    threshold = DEFAULT_MIN_COSINE[form] if min_cosine is None else float(min_cosine)
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir):
        cached = _load_cached(cache_dir, form, kind, threads)
        if cached is not None:
            record, session = cached
            accepted, reason = _judge(kind, form, record["metrics"], threshold)
            reason += _scheme_note(record) + _graph_note(record)
            return _make_build(cache_dir, record, accepted, reason, session)
        _remove_stale_temps(cache_dir)
        record, session = _build(model, tokenizer, kind, form, threshold, cache_dir, sample_texts, threads)
        accepted, reason = _judge(kind, form, record["metrics"], threshold)
        reason += _scheme_note(record) + _graph_note(record)
        record.update(accepted=accepted, reason=reason, min_cosine=threshold)
        _write_json_atomic(cache_dir / BUILD_RECORD, record)
        log.info("ONNX build %s in %s: %s", form, cache_dir, reason)
        return _make_build(cache_dir, record, accepted, reason, session)


# ---------------------------------------------------------------------------------------------------------
# Build pipeline


def _build(
    model: Any,
    tokenizer: Any,
    kind: str,
    form: str,
    threshold: float,
    cache_dir: pathlib.Path,
    sample_texts: list[str] | None,
    threads: int | None,
) -> tuple[dict, ort.InferenceSession]:
    """Export, fuse and (for int8) quantize in a private temp folder, gate, then move the result into place.

    For int8 the quantization schemes are tried from smallest/fastest to most accurate, and the first
    that passes the gate is kept; if none passes, the first is kept so its numbers can be reported.
    """
    _check_exportable(model)
    started = time.monotonic()
    work = pathlib.Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=cache_dir))
    stage = "export"
    try:
        names = _input_names(model, tokenizer)
        raw = work / "raw.onnx"
        exporter = _export(model, tokenizer, names, kind, raw)
        stage = "graph optimization"
        fused = work / "fused.onnx"
        fusion = _optimize(model, raw, fused)
        if form == FORM_FP32 and fusion["method"] == "ort-bert-fusion":
            stage = "graph timing"
            fusion.update(_faster_graph(raw, fused, tokenizer, names, sample_texts))
            if fusion["served"] == "unfused":
                os.replace(raw, fused)
        schemes: list[tuple[str | None, list[str] | None]] = [(None, None)]
        if form == FORM_INT8:
            schemes = [s for s in INT8_SCHEMES if s[0] != "attention-fp32" or _has_op(fused, "Attention")]
        tried: list[dict] = []
        candidates: list[tuple[str | None, pathlib.Path, dict]] = []
        for scheme, op_types in schemes:
            candidate = fused
            if scheme is not None:
                stage = f"int8 quantization ({scheme})"
                candidate = work / f"int8-{scheme}.onnx"
                _quantize(fused, candidate, op_types)
            stage = f"accuracy check ({scheme or form})"
            session = _session(candidate, threads)
            graph_inputs = tuple(i.name for i in session.get_inputs())
            metrics = _measure(model, tokenizer, kind, session, graph_inputs, sample_texts)
            del session
            tried.append({"scheme": scheme, "file_bytes": candidate.stat().st_size, **metrics})
            candidates.append((scheme, candidate, metrics))
            if _judge(kind, form, metrics, threshold)[0]:
                break
        else:
            candidates.append(candidates[0])  # none passed: keep the first scheme's file and numbers
        scheme, served, metrics = candidates[-1]
        stage = "saving"
        final = cache_dir / f"model.{form.removeprefix('onnx-')}.onnx"
        _fsync(served)
        os.replace(served, final)
        session = _session(final, threads)
    except OnnxExportError:
        raise
    except Exception as exc:
        # A graph that exports but cannot be optimized, quantized, loaded or run is still a failed export.
        raise OnnxExportError(f"ONNX {form} build failed during {stage}: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "form": form,
        "kind": kind,
        "path": final.name,
        "file_bytes": final.stat().st_size,
        "metrics": metrics,
        "input_names": [i.name for i in session.get_inputs()],
        "exporter": exporter,
        "fusion": fusion,
        "build_seconds": round(time.monotonic() - started, 2),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }
    if form == FORM_INT8:
        record["quantization"] = {
            "scheme": scheme,
            "per_channel": True,
            "reduce_range": _reduce_range(),
            "tried": tried,
        }
    return record, session


def _graph_note(record: dict) -> str:
    """Say so when the plain export is served because ORT's transformer fusion timed slower here."""
    fusion = record.get("fusion") or {}
    if fusion.get("served") != "unfused":
        return ""
    slower = fusion["timing_ms"]["fused"] / fusion["timing_ms"]["unfused"]
    return f"; unfused graph served: ORT's transformer fusion ran {slower:.2f}x slower here"


def _scheme_note(record: dict) -> str:
    """Say so when int8 is not the default scheme, and what the default scored."""
    quant = record.get("quantization") or {}
    tried = quant.get("tried") or []
    if not tried or quant.get("scheme") == tried[0]["scheme"]:
        return ""
    return (
        f" (int8 scheme {quant['scheme']!r}: the {tried[0]['scheme']!r} scheme scored cosine min "
        f"{tried[0]['cosine_min']:.6f})"
    )


def _check_exportable(model: Any) -> None:
    """Refuse models this backend cannot serve well before spending minutes on an export."""
    params = list(model.parameters())
    dtypes = {p.dtype for p in params}
    if dtypes - {torch.float32}:
        raise OnnxExportError(f"ONNX export needs float32 weights; the model has {sorted(map(str, dtypes))}")
    size = sum(p.numel() * p.element_size() for p in params)
    if size > MAX_SINGLE_FILE_BYTES:
        raise OnnxExportError(f"model weights are {size / 1e9:.1f} GB, over the 2 GB single-file ONNX limit")


def _input_names(model: Any, tokenizer: Any) -> list[str]:
    """The inputs both the tokenizer produces and the model's forward accepts, in a fixed order."""
    produced = set(getattr(tokenizer, "model_input_names", None) or MODEL_INPUTS)
    params = inspect.signature(model.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = [n for n in MODEL_INPUTS if n in produced and (takes_any or n in params)]
    if "input_ids" not in names:
        raise OnnxExportError("the model's forward does not take input_ids")
    return names


class _Positional(torch.nn.Module):
    """Calls the model with keyword inputs and returns one tensor.

    Exporters pass inputs positionally, and transformers' forward signatures are not stable in order
    (transformers 5's BertModel, called positionally, fails with "got multiple values for argument
    'use_cache'"), so the model itself is only ever called with keywords.
    """

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True)), return_dict=True)[0]


def _export(model: Any, tokenizer: Any, names: list[str], kind: str, path: pathlib.Path) -> str:
    """Export with the legacy TorchScript exporter, falling back to the dynamo exporter; returns which."""
    # Two sentences of different lengths so the traced graph carries a real padding mask.
    example = tokenizer(
        ["Hubstead serves this model.", "A second, somewhat longer sentence, so that the batch has padding."],
        padding=True,
        return_tensors="pt",
    )
    device = next(model.parameters()).device
    args = tuple(example[n].to(device) for n in names)
    output = "last_hidden_state" if kind == "encoder" else "logits"
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch", 1: "sequence"} if kind == "encoder" else {0: "batch"}
    wrapper = _Positional(model, names).eval()
    errors: list[str] = []
    # The dynamo exporter cannot map dynamic_axes onto a *tensors signature; it takes torch.export specs.
    dynamic = torch.export.Dim.DYNAMIC
    dynamo_shapes = {"tensors": tuple({0: dynamic, 1: dynamic} for _ in names)}
    attempts: tuple[tuple[str, dict[str, Any]], ...] = (
        ("torchscript", {"dynamo": False, "opset_version": LEGACY_OPSET, "dynamic_axes": axes}),
        (
            "dynamo",
            {"dynamo": True, "opset_version": DYNAMO_OPSET, "dynamic_shapes": dynamo_shapes, "external_data": False},
        ),
    )
    for exporter, options in attempts:
        path.unlink(missing_ok=True)
        try:
            with _eager_attention(model), warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, args, str(path), input_names=names, output_names=[output], **options)
            onnx.checker.check_model(str(path))
            return exporter
        except Exception as exc:  # any exporter failure means "try the next one"
            log.warning("ONNX export with the %s exporter failed: %s", exporter, exc)
            errors.append(f"{exporter}: {type(exc).__name__}: {exc}")
    raise OnnxExportError("ONNX export failed with every exporter; " + " | ".join(errors))


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Trace the eager attention code path, then put the model's own implementation back.

    SDPA traces to a graph ORT's attention fusion does not recognise (measured on MiniLM: 0 of 6 attention
    blocks fused with sdpa, 6 of 6 with eager), and the export must not change how the caller's PyTorch
    model runs afterwards.
    """
    original = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switched = False
    if original not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            switched = True
        except Exception as exc:  # eager is an optimization, not a requirement
            log.info("could not switch to eager attention for export: %s", exc)
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(original)


def _optimize(model: Any, raw: pathlib.Path, out: pathlib.Path) -> dict:
    """Apply ORT's transformer fusions for BERT-like models; otherwise keep the graph as exported.

    Graphs that are not fused still get ORT_ENABLE_ALL when the session loads them. A fused graph that
    ORT cannot load is discarded in favour of the plain one.
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", "")
    if model_type in BERT_LIKE:
        try:
            from onnxruntime.transformers.optimizer import optimize_model

            heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
            hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
            optimized = optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden)
            optimized.save_model_to_file(str(out))
            ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])  # loads, or raises
            stats = optimized.get_fused_operator_statistics()
            return {"method": "ort-bert-fusion", "fused": {k: v for k, v in stats.items() if v}}
        except Exception as exc:  # fusion is an optimization; the plain graph still works
            log.warning("ORT transformer fusion failed for %s, serving the unfused graph: %s", model_type, exc)
            out.unlink(missing_ok=True)
            shutil.copyfile(raw, out)
            return {"method": "session-optimizations-only", "error": f"{type(exc).__name__}: {exc}"}
    shutil.copyfile(raw, out)
    return {"method": "session-optimizations-only"}


GRAPH_TIMING_BATCH = 8  # sequences per run: what a replica's batches hold under load (see inference.pool.WorkerPool)
GRAPH_TIMING_ROUNDS = 3
# The plain graph must be this much faster to replace the fused one: near-ties (tiny models, a noisy
# machine) then keep one answer instead of flipping between builds. MiniLM's plain graph was 15-20% faster.
UNFUSED_MUST_TAKE = 0.95


def _faster_graph(
    unfused: pathlib.Path, fused: pathlib.Path, tokenizer: Any, names: list[str], sample_texts: list[str] | None
) -> dict:
    """Time the plain export and the fused graph on this CPU, one thread each as a busy replica runs, on
    the held-out texts in batches; say which to serve. Near-ties (within 5%) keep the fused graph.

    Both run with ORT_ENABLE_ALL, so "unfused" still gets ORT's own graph optimizations. The best of
    several alternating rounds is compared, so a burst of other load does not decide."""
    texts = list(sample_texts) if sample_texts else list(SAMPLE_TEXTS)
    feeds = []
    for start in range(0, len(texts), GRAPH_TIMING_BATCH):
        enc = tokenizer(texts[start : start + GRAPH_TIMING_BATCH], padding="longest", return_tensors="np")
        feeds.append({n: np.asarray(enc[n], dtype=np.int64) if n in enc else np.zeros_like(enc["input_ids"])
                      for n in names})
    sessions = {"fused": _session(fused, 1), "unfused": _session(unfused, 1)}
    best = dict.fromkeys(sessions, float("inf"))
    for session in sessions.values():
        session.run(None, feeds[0])  # first-run allocations are not timed
    for _ in range(GRAPH_TIMING_ROUNDS):
        for name, session in sessions.items():
            started = time.perf_counter()
            for feed in feeds:
                session.run(None, feed)
            best[name] = min(best[name], time.perf_counter() - started)
    served = "unfused" if best["unfused"] < best["fused"] * UNFUSED_MUST_TAKE else "fused"
    return {"served": served, "timing_ms": {name: round(seconds * 1000, 2) for name, seconds in best.items()}}


def _quantize(source: pathlib.Path, out: pathlib.Path, op_types: list[str] | None) -> None:
    """Dynamic int8 quantization: int8 weights, activations quantized per call, no calibration data.

    Per-channel weight scales are what make this usable on sentence encoders: per-tensor scales gave
    all-MiniLM-L6-v2 a pooled cosine of only 0.92 against PyTorch, per-channel 0.98.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Fused contrib ops (Attention, SkipLayerNormalization) defeat the quantizer's shape inference;
        # every tensor in these graphs is float, so say so rather than fail.
        quantize_dynamic(
            str(source),
            str(out),
            op_types_to_quantize=op_types,
            per_channel=True,
            reduce_range=_reduce_range(),
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _has_op(path: pathlib.Path, op_type: str) -> bool:
    return any(node.op_type == op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


@functools.cache
def _reduce_range() -> bool:
    """7-bit weights on x86 CPUs without VNNI, where ORT's u8s8 int8 kernels can saturate (ORT's advice)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return not any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def _session(path: pathlib.Path, threads: int | None) -> ort.InferenceSession:
    """The serving session: all graph optimizations, one request's work spread over the cores."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or _cpu_count()
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: spinning took CPU from the hub process and cost 20%
    # of the throughput of short requests on 2 cores (568 -> 704 requests/s without it).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _cpu_count() -> int:
    """CPUs this process may run on (respects taskset/cpusets, unlike os.cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------------------
# Accuracy gate


def _max_length(model: Any, tokenizer: Any) -> int:
    """Truncation length: the tokenizer's limit, capped by the model's position table."""
    limit = getattr(tokenizer, "model_max_length", None) or 512
    if limit > 100_000:  # transformers' "no limit set" sentinel is 1e30
        limit = 512
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions:
        limit = min(limit, positions)
    return int(limit)


def _batches(kind: str, texts: list[str]) -> list[tuple[list[str], list[str] | None]]:
    """Gate inputs: the texts alone, plus consecutive pairs for classifiers (cross-encoders, NLI)."""
    batches: list[tuple[list[str], list[str] | None]] = [(texts, None)]
    if kind == "sequence-classification" and len(texts) >= 2:
        batches.append((texts[0::2][: len(texts) // 2], texts[1::2][: len(texts) // 2]))
    return batches


def _measure(
    model: Any,
    tokenizer: Any,
    kind: str,
    session: ort.InferenceSession,
    graph_inputs: tuple[str, ...],
    sample_texts: list[str] | None,
) -> dict:
    """Run PyTorch and ORT on the same padded batches and compare what a caller would use."""
    texts = list(sample_texts) if sample_texts else list(SAMPLE_TEXTS)
    max_length = _max_length(model, tokenizer)
    device = next(model.parameters()).device
    reference: list[np.ndarray] = []
    candidate: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for first, second in _batches(kind, texts):
        enc = tokenizer(first, second, padding="longest", truncation=True, max_length=max_length, return_tensors="np")
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.int64)).to(device) for k, v in enc.items()}
            tensors = {k: v for k, v in tensors.items() if k in MODEL_INPUTS}
            reference.append(model(**tensors, return_dict=True)[0].float().cpu().numpy())
        candidate.append(session.run(None, {n: np.asarray(enc[n], dtype=np.int64) for n in graph_inputs})[0])
        masks.append(np.asarray(enc["attention_mask"]))
    if kind == "encoder":
        return _encoder_metrics(reference, candidate, masks)
    return _classifier_metrics(np.concatenate(reference), np.concatenate(candidate))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.maximum(norms, 1e-12)


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence-transformers pooling: average the real tokens, ignore padding."""
    weights = mask[..., None].astype(np.float64)
    return (hidden.astype(np.float64) * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _encoder_metrics(reference: list[np.ndarray], candidate: list[np.ndarray], masks: list[np.ndarray]) -> dict:
    triples = list(zip(reference, candidate, masks, strict=True))
    cos = np.concatenate([_cosines(_mean_pool(r, m), _mean_pool(c, m)) for r, c, m in triples])
    diff = max(float(np.abs((r - c) * m[..., None]).max()) for r, c, m in triples)
    return {
        "cosine_min": round(float(cos.min()), 6),
        "cosine_mean": round(float(cos.mean()), 6),
        "max_abs_diff": round(diff, 6),
        "samples": int(cos.size),
    }


def _classifier_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Label agreement and logits cosine.

    A single-logit model (a cross-encoder score) has no argmax: its label is the sign of the logit, and
    a per-sample cosine of one number is only its sign, so the cosine is taken over all samples' scores.
    """
    if reference.shape[-1] == 1:
        agree = (reference[:, 0] > 0) == (candidate[:, 0] > 0)
        cos = _cosines(reference[:, 0], candidate[:, 0])[None]
    else:
        agree = reference.argmax(axis=-1) == candidate.argmax(axis=-1)
        cos = _cosines(reference, candidate)
    return {
        "label_agreement": round(float(agree.mean()), 6),
        "labels_agreeing": int(agree.sum()),
        "cosine_min": round(float(cos.min()), 6),
        "cosine_mean": round(float(cos.mean()), 6),
        "max_abs_diff": round(float(np.abs(reference - candidate).max()), 6),
        "samples": int(agree.size),
    }


def _judge(kind: str, form: str, metrics: dict, min_cosine: float) -> tuple[bool, str]:
    """The verdict and a sentence a person can check: the numbers and the thresholds they met or missed."""
    samples = metrics["samples"]
    what = "pooled-embedding cosine" if kind == "encoder" else "logits cosine"
    cosine = f"{what} min {metrics['cosine_min']:.6f} (mean {metrics['cosine_mean']:.6f})"
    failures = []
    if metrics["cosine_min"] < min_cosine:
        failures.append(f"{cosine} is below the {min_cosine:g} threshold")
    labels = ""
    if kind == "sequence-classification":
        need = MIN_LABEL_AGREEMENT[form]
        labels = f"label agreement {metrics['label_agreement']:.4f} ({metrics['labels_agreeing']}/{samples})"
        if metrics["label_agreement"] < need:
            failures.append(f"{labels} is below the required {need:g}")
    if failures:
        return False, f"rejected: {form} differs from PyTorch on {samples} samples: " + "; ".join(failures)
    checks = [f"{cosine} >= {min_cosine:g}"]
    if labels:
        checks.append(f"{labels} >= {MIN_LABEL_AGREEMENT[form]:g}")
    return True, f"accepted: {form} matches PyTorch on {samples} samples: " + "; ".join(checks)


# ---------------------------------------------------------------------------------------------------------
# Cache


def _make_build(
    cache_dir: pathlib.Path, record: dict, accepted: bool, reason: str, session: ort.InferenceSession
) -> OnnxBuild:
    path = cache_dir / record["path"]
    return OnnxBuild(
        form=record["form"],
        accepted=accepted,
        metrics=dict(record["metrics"]),
        reason=reason,
        path=str(path),
        file_bytes=int(record["file_bytes"]),
        session=session,
        input_names=tuple(i.name for i in session.get_inputs()),
    )


def _load_cached(
    cache_dir: pathlib.Path, form: str, kind: str, threads: int | None
) -> tuple[dict, ort.InferenceSession] | None:
    """A finished build matching this request, with its session; None means build again."""
    record_path = cache_dir / BUILD_RECORD
    if not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text())
        path = cache_dir / record["path"]
        if record["form"] != form or record.get("kind", kind) != kind:
            log.warning(
                "ONNX cache %s holds %s/%s, wanted %s/%s; rebuilding",
                cache_dir,
                record["form"],
                record.get("kind"),
                form,
                kind,
            )
            return None
        if path.stat().st_size != record["file_bytes"]:
            log.warning("ONNX cache %s: %s has the wrong size; rebuilding", cache_dir, path.name)
            return None
        return record, _session(path, threads)
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        log.warning("ONNX cache %s is unusable (%s); rebuilding", cache_dir, exc)
        return None


def _write_json_atomic(path: pathlib.Path, data: dict) -> None:
    """Write next to the target, flush to disk, then rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync(path: pathlib.Path) -> None:
    """Make the model bytes durable before the rename that publishes them."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _remove_stale_temps(cache_dir: pathlib.Path) -> None:
    """Leftovers of a build that crashed; safe to delete because we hold the cache lock."""
    for entry in cache_dir.iterdir():
        if entry.name.startswith(TMP_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f"{BUILD_RECORD}.tmp-"):
            entry.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(cache_dir: pathlib.Path) -> Iterator[None]:
    """One builder per cache folder: a second worker waits, then reuses the first one's build."""
    with open(cache_dir / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
