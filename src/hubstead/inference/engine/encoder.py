"""Encoder models served with our own batching: embeddings, similarity, classification, reranking.

Why not the transformers pipeline here: these are the highest-volume calls, and a pipeline call per
request cannot share a forward pass. Requests are tokenized on arrival (no padding), gathered by
token budget, padded only to the longest sequence of the batch, run once (PyTorch or ONNX Runtime),
then split back per request. Sentence-transformers repos are read for their pooling, normalization,
maximum length and prompts, so embeddings equal ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from hubstead.inference.engine.common import RequestFailed, apply_adapter, device_for

log = logging.getLogger("hubstead.inference")

EMBED_TASKS = ("feature-extraction", "sentence-similarity")
CLASSIFY_TASKS = ("text-classification", "text-ranking")


@dataclass
class SentenceConfig:
    """What a sentence-transformers repo says about turning token states into one vector."""

    pooling: str | None = None  # mean | cls | max | lasttoken; None: not a sentence-transformers repo
    normalize: bool = False
    max_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def read_sentence_config(model_dir: Path) -> SentenceConfig:
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return SentenceConfig()
    config = SentenceConfig()
    for module in json.loads(modules_file.read_text()):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = model_dir / module.get("path", "")
        if kind == "Pooling":
            pooling = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
            for mode, flag in (
                ("cls", "pooling_mode_cls_token"),
                ("max", "pooling_mode_max_tokens"),
                ("lasttoken", "pooling_mode_lasttoken"),
                ("mean", "pooling_mode_mean_tokens"),
            ):
                if pooling.get(flag):
                    config.pooling = mode
            config.pooling = config.pooling or "mean"
        elif kind == "Normalize":
            config.normalize = True
        elif kind == "Dense":
            raise RequestFailed("This sentence-transformers model has a Dense module, which is not served yet", 501)
    bert_config = model_dir / "sentence_bert_config.json"
    if bert_config.is_file():
        config.max_length = json.loads(bert_config.read_text()).get("max_seq_length")
    st_config = model_dir / "config_sentence_transformers.json"
    if st_config.is_file():
        data = json.loads(st_config.read_text())
        config.prompts = {k: v for k, v in (data.get("prompts") or {}).items() if isinstance(v, str)}
        config.default_prompt_name = data.get("default_prompt_name")
    return config


ONNX_EXPORT_TIMEOUT_SECONDS = 3600
ONNX_KIND = {"embed": "encoder", "classify": "sequence-classification"}  # onnx_backend's name for each group


def load_encoder(model_dir: Path, group: str, spec: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The tokenizer and the model (in eval mode, on the CPU) of an embedding or classification repo, with the
    spec's adapter applied when it names one."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    loader = AutoModel if group == "embed" else AutoModelForSequenceClassification
    model = apply_adapter(loader.from_pretrained(model_dir), spec or {})
    return AutoTokenizer.from_pretrained(model_dir), model.eval()


@dataclass
class Prepared:
    """One request, tokenized: its sequences and what to do with their outputs."""

    job: dict[str, Any]
    sequences: list[dict[str, list[int]]]
    group: tuple[Any, ...]
    request_id: int = -1

    def lengths(self) -> list[int]:
        return [len(s["input_ids"]) for s in self.sequences]


class EncoderRunner:
    """One encoder model, loaded once, answering batches of prepared requests."""

    def __init__(self, model_dir: Path, group: str, spec: dict[str, Any]) -> None:
        self.group = group
        self.device = device_for(spec)
        self.sentence = read_sentence_config(model_dir) if group == "embed" else SentenceConfig()
        self.tokenizer, model = load_encoder(model_dir, group, spec)
        self.model = model.to(self.device)
        config = self.model.config
        limits = [
            n
            for n in (
                self.sentence.max_length,
                getattr(self.tokenizer, "model_max_length", None),
                getattr(config, "max_position_embeddings", None),
            )
            if n and n < 1_000_000
        ]
        self.max_length = min(limits) if limits else 512
        self.input_names = [
            n for n in ("input_ids", "attention_mask", "token_type_ids") if n in self.tokenizer.model_input_names
        ]
        if "attention_mask" not in self.input_names:
            self.input_names.append("attention_mask")
        self.labels = [config.id2label[i] for i in range(config.num_labels)] if group == "classify" else []
        self.problem_type = getattr(config, "problem_type", None)
        self.form = "pytorch"
        self.form_reason = "PyTorch, as configured"
        self.onnx: Any = None
        runtime = spec.get("runtime", "pytorch")
        if runtime in ("onnx", "onnx-int8") and self.device.type != "cpu":
            # Our ONNX path is a CPU speed-up (CPUExecutionProvider): on a GPU, PyTorch is the fast form.
            self.form_reason = f"PyTorch on {self.device} (ONNX Runtime is served on CPU workers only)"
        elif runtime in ("onnx", "onnx-int8"):
            self._try_onnx(model_dir, spec, runtime)

    # --- ONNX Runtime --------------------------------------------------------------------------

    def _try_onnx(self, model_dir: Path, spec: dict[str, Any], runtime: str) -> None:
        """Serve through ONNX Runtime when the exported graph matches PyTorch; otherwise stay on PyTorch."""
        from hubstead.inference.engine.onnx_backend import BUILD_RECORD, build_onnx

        quantize = runtime == "onnx-int8"
        kind = ONNX_KIND[self.group]
        cache_dir = Path(spec["onnx_cache_dir"]) / ("int8" if quantize else "fp32")
        if not (cache_dir / BUILD_RECORD).exists():
            self._export_in_child(model_dir, spec, quantize, cache_dir)
        try:  # from the cache the child filled; built here only if the child could not
            build = build_onnx(
                self.model.cpu(),
                self.tokenizer,
                kind=kind,
                cache_dir=cache_dir,
                quantize=quantize,
                min_cosine=spec.get("min_cosine"),
                threads=spec.get("threads"),
            )
        except Exception as exc:  # noqa: BLE001 - an export failure falls back to PyTorch, with the reason kept
            log.exception("ONNX export failed for %s", spec.get("repo_id"))
            self.form_reason = f"ONNX export failed ({exc}); serving PyTorch"
            self.model.to(self.device)
            return
        self.form_reason = build.reason
        if not build.accepted:
            self.model.to(self.device)
            return
        self.onnx = build
        self.form = build.form
        if spec.get("threads_alone"):  # a replica: both thread counts ready before the first request
            build.sessions[int(spec["threads"])] = build.session
            for threads in (int(spec["threads_alone"]), int(spec["threads"])):
                build.use_threads(threads)
        self.model = None  # the PyTorch weights are no longer needed: free their memory

    def _export_in_child(self, model_dir: Path, spec: dict[str, Any], quantize: bool, cache_dir: Path) -> None:
        """Build the ONNX cache in a separate process (``engine/onnx_export.py``): an export leaves ~300 MiB
        behind in the process that ran it. On failure the worker builds in-process and keeps the reason."""
        command = [sys.executable, "-m", "hubstead.inference.engine.onnx_export", "--model-dir", str(model_dir),
                   "--group", self.group, "--cache-dir", str(cache_dir)]
        if quantize:
            command.append("--int8")
        if spec.get("min_cosine") is not None:
            command += ["--min-cosine", str(spec["min_cosine"])]
        if spec.get("threads"):
            command += ["--threads", str(spec["threads"])]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=ONNX_EXPORT_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("ONNX export in a child process did not finish (%s); building in the worker", exc)
            return
        if done.returncode != 0:
            log.warning("ONNX export in a child process failed (%s); building in the worker", done.stderr[-500:])

    def use_threads(self, threads: int) -> None:
        if self.onnx is not None:
            self.onnx.use_threads(threads)
        elif torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    # --- requests ------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "form_reason": self.form_reason,
            "max_length": self.max_length,
            "labels": self.labels,
            "pooling": self.sentence.pooling,
            "device": str(self.device),
        }

    def _encode(self, texts: list[Any], truncate: bool, direction: str) -> list[dict[str, list[int]]]:
        """Token ids (unpadded) for every text or (text, text) pair, in one tokenizer call."""
        if not texts:
            return []
        self.tokenizer.truncation_side = direction
        if isinstance(texts[0], tuple):
            encoded = self.tokenizer(
                [t[0] for t in texts],
                [t[1] for t in texts],
                truncation="only_second" if truncate else False,
                max_length=self.max_length if truncate else None,
                padding=False,
            )
        else:
            encoded = self.tokenizer(
                texts, truncation=bool(truncate), max_length=self.max_length if truncate else None, padding=False
            )
        names = [name for name in self.input_names if name in encoded]
        return [{name: encoded[name][i] for name in names} for i in range(len(texts))]

    def prepare_many(self, jobs: list[dict[str, Any]]) -> list[Prepared | RequestFailed]:
        """Tokenize the requests that arrived together: one tokenizer call per kind of input and
        truncation setting (per request, the tokenizer wrapper's overhead outweighs the work on short texts)."""
        out: list[Prepared | RequestFailed | None] = [None] * len(jobs)
        texts_of: dict[int, list[Any]] = {}
        groups: dict[tuple[bool, bool, str], list[int]] = {}
        for i, job in enumerate(jobs):
            try:
                texts = self._texts(job)
            except RequestFailed as exc:
                out[i] = exc
                continue
            params = job["parameters"]
            truncate = bool(params.get("truncate", True))
            key = (bool(texts) and isinstance(texts[0], tuple), truncate, params.get("truncation_direction", "right"))
            texts_of[i] = texts
            groups.setdefault(key, []).append(i)
        for (_, truncate, direction), members in groups.items():
            sequences = self._encode([t for i in members for t in texts_of[i]], truncate, direction)
            start = 0
            for i in members:
                mine = sequences[start : start + len(texts_of[i])]
                start += len(mine)
                out[i] = self._check_lengths(mine) or Prepared(job=jobs[i], sequences=mine, group=("forward",))
        return cast(list[Prepared | RequestFailed], out)  # every job is refused or joins a group above

    def _texts(self, job: dict[str, Any]) -> list[Any]:
        task, inputs, params = job["task"], job["inputs"], job["parameters"]
        if self.group == "embed" and task not in EMBED_TASKS or self.group == "classify" and task not in CLASSIFY_TASKS:
            raise RequestFailed(f"This worker does not serve {task}", 400)
        if task == "feature-extraction":
            prompt = self._prompt(params.get("prompt_name"))
            return [prompt + t for t in inputs] if prompt else list(inputs)
        if task == "sentence-similarity":
            return [inputs["source_sentence"], *inputs["sentences"]]
        if task == "text-ranking":
            return [(inputs["query"], text) for text in inputs["texts"]]
        return list(inputs)

    def _check_lengths(self, sequences: list[dict[str, list[int]]]) -> RequestFailed | None:
        for i, seq in enumerate(sequences):
            if len(seq["input_ids"]) > self.max_length:
                return RequestFailed(
                    f"Input {i} is {len(seq['input_ids'])} tokens long; this model takes at most {self.max_length}. "
                    "Send parameters.truncate=true to truncate it.",
                    413,
                )
        return None

    def _prompt(self, name: str | None) -> str:
        name = name or self.sentence.default_prompt_name
        if not name:
            return ""
        if name not in self.sentence.prompts:
            raise RequestFailed(
                f"Unknown prompt_name {name!r}; this model has: {', '.join(self.sentence.prompts) or 'none'}"
            )
        return self.sentence.prompts[name]

    def forward(self, sequences: list[dict[str, list[int]]]) -> tuple[np.ndarray, np.ndarray]:
        """Pad to the longest sequence, run once; returns (model output, attention mask)."""
        longest = max(len(s["input_ids"]) for s in sequences)
        pad_id = self.tokenizer.pad_token_id or 0
        arrays: dict[str, np.ndarray] = {}
        for name in self.input_names:
            fill = pad_id if name == "input_ids" else 0
            array = np.full((len(sequences), longest), fill, dtype=np.int64)
            for row, seq in enumerate(sequences):
                values = seq.get(name) if name != "attention_mask" or name in seq else None
                if name == "attention_mask" and values is None:
                    values = [1] * len(seq["input_ids"])
                if values is not None:
                    array[row, : len(values)] = values
            arrays[name] = array
        if self.onnx is not None:
            return self.onnx.run(arrays), arrays["attention_mask"]
        assert self.model is not None
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}
            output = self.model(**tensors)
            result = output.logits if self.group == "classify" else output.last_hidden_state
            return result.float().cpu().numpy(), arrays["attention_mask"]

    def run(self, batch: list[Prepared]) -> list[Any]:
        sequences = [s for p in batch for s in p.sequences]
        output, mask = self.forward(sequences)
        results, start = [], 0
        for prepared in batch:
            count = len(prepared.sequences)
            part, part_mask = output[start : start + count], mask[start : start + count]
            start += count
            try:
                results.append(self._answer(prepared.job, part, part_mask))
            except RequestFailed as exc:
                results.append(exc)
        return results

    # --- shaping answers -----------------------------------------------------------------------

    def _pool(self, hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
        if mode == "cls":
            return hidden[:, 0]
        if mode == "lasttoken":
            last = mask.sum(axis=1) - 1
            return hidden[np.arange(len(hidden)), last]
        weights = mask[:, :, None].astype(hidden.dtype)
        if mode == "max":
            return np.where(weights > 0, hidden, -1e9).max(axis=1)
        return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)

    def embeddings(self, hidden: np.ndarray, mask: np.ndarray, params: dict[str, Any]) -> np.ndarray | list[Any]:
        mode = params.get("pooling") or self.sentence.pooling
        if mode is None or mode == "none":
            # Not a sentence model: token embeddings per input, as the transformers pipeline gives.
            return [hidden[i, : int(mask[i].sum())] for i in range(len(hidden))]
        vectors = self._pool(hidden, mask, mode)
        if params.get("dimensions"):
            if params["dimensions"] > vectors.shape[1]:
                raise RequestFailed(f"dimensions must be at most {vectors.shape[1]} for this model")
            vectors = vectors[:, : params["dimensions"]]
        normalize = params.get("normalize")
        if normalize is None:
            normalize = self.sentence.normalize
        if normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors

    def _answer(self, job: dict[str, Any], output: np.ndarray, mask: np.ndarray) -> Any:
        task, params = job["task"], job["parameters"]
        if task == "feature-extraction":
            # float32 arrays: a tenth of the bytes of Python floats through the pipe, and the hub writes
            # them out without a float object per value (orjson, or raw bytes for base64).
            vectors = self.embeddings(output, mask, params)
            values: Any = (
                np.ascontiguousarray(vectors, dtype=np.float32)
                if isinstance(vectors, np.ndarray)
                else [np.ascontiguousarray(v, dtype=np.float32) for v in vectors]
            )
            return {"vectors": values, "tokens": int(mask.sum())} if job.get("usage") else values
        if task == "sentence-similarity":
            vectors = self.embeddings(output, mask, {"pooling": self.sentence.pooling or "mean", "normalize": True})
            vectors = np.asarray(vectors)
            return [float(x) for x in vectors[1:] @ vectors[0]]
        if task == "text-ranking":
            return self._ranking(job, output, params)
        return [self._labels(row, params) for row in output]

    def _scores(self, logits: np.ndarray, function: str | None) -> np.ndarray:
        if function is None:
            function = "sigmoid" if self.problem_type == "multi_label_classification" or len(logits) == 1 else "softmax"
        if function == "sigmoid":
            return 1.0 / (1.0 + np.exp(-logits))
        if function == "softmax":
            shifted = np.exp(logits - logits.max())
            return shifted / shifted.sum()
        return logits

    def _labels(self, logits: np.ndarray, params: dict[str, Any]) -> list[dict[str, Any]]:
        scores = self._scores(logits.astype(np.float64), params.get("function_to_apply"))
        order = np.argsort(-scores)
        top_k = params.get("top_k") or len(order)
        return [{"label": self.labels[i], "score": float(scores[i])} for i in order[:top_k]]

    def _ranking(self, job: dict[str, Any], logits: np.ndarray, params: dict[str, Any]) -> list[dict[str, Any]]:
        texts = job["inputs"]["texts"]
        if logits.shape[1] == 1:
            raw = logits[:, 0]
            scores = raw if params.get("raw_scores") else 1.0 / (1.0 + np.exp(-raw))
        else:  # an NLI-style head: the probability of the last (positive) label
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores = (shifted / shifted.sum(axis=1, keepdims=True))[:, -1]
        ranked = sorted(range(len(texts)), key=lambda i: -float(scores[i]))
        if params.get("top_n"):
            ranked = ranked[: params["top_n"]]
        out = []
        for i in ranked:
            item: dict[str, Any] = {"index": i, "score": float(scores[i])}
            if params.get("return_text"):
                item["text"] = texts[i]
            out.append(item)
        return out
