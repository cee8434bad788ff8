"""Tasks transformers 5 dropped from its pipelines, served directly from the model classes.

- Extractive question answering (``AutoModelForQuestionAnswering``): the best answer span in the
  context, over overlapping windows when the context is longer than the model (the algorithm the
  removed ``question-answering`` pipeline used: span score = p(start) * p(end), start <= end, limited
  length, only context tokens).
- Summarization, translation and text2text-generation (``AutoModelForSeq2SeqLM``): batched
  ``generate``; translation models with language codes (M2M100, NLLB, mBART) get the source language
  set on the tokenizer and the target forced as the first generated token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hubstead.inference.engine.common import RequestFailed, apply_adapter, device_for
from hubstead.inference.engine.encoder import Prepared
from hubstead.inference.protocol import GENERATE_PARAMS

OUTPUT_KEY = {
    "summarization": "summary_text",
    "translation": "translation_text",
    "text2text-generation": "generated_text",
}
GENERATE_KEYS = GENERATE_PARAMS


class Seq2SeqRunner:
    def __init__(self, model_dir: Path, task: str, spec: dict[str, Any]) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.task = task
        self.device = device_for(spec)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        try:
            self.model = apply_adapter(AutoModelForSeq2SeqLM.from_pretrained(model_dir), spec).to(self.device).eval()
        except ValueError as exc:
            raise RequestFailed(f"This model is not a sequence-to-sequence model: {exc}", 422) from exc
        limit = getattr(self.tokenizer, "model_max_length", None)
        config_limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(n for n in (limit, config_limit, 1024) if n and n < 1_000_000)

    def info(self) -> dict[str, Any]:
        return {
            "form": "pytorch",
            "form_reason": "PyTorch generate",
            "device": str(self.device),
            "max_length": self.max_length,
        }

    def prepare(self, job: dict[str, Any]) -> Prepared:
        params = job["parameters"]
        if self.task == "translation" and (params.get("src_lang") or params.get("tgt_lang")):
            self._check_languages(params)
        lengths = [
            len(self.tokenizer(t, truncation=True, max_length=self.max_length)["input_ids"]) for t in job["inputs"]
        ]
        group = (job["task"], json.dumps(params, sort_keys=True))
        return Prepared(job=job, sequences=[{"input_ids": [0] * n} for n in lengths], group=group)

    def _check_languages(self, params: dict[str, Any]) -> None:
        for name in ("src_lang", "tgt_lang"):
            code = params.get(name)
            if code and self.tokenizer.convert_tokens_to_ids(code) == self.tokenizer.unk_token_id:
                lang_code_to_id = getattr(self.tokenizer, "lang_code_to_id", None) or {}
                if code not in lang_code_to_id:
                    raise RequestFailed(f"parameters.{name}: {code!r} is not a language code this model knows")

    def run(self, batch: list[Prepared]) -> list[Any]:
        params = dict(batch[0].job["parameters"])
        texts = [t for p in batch for t in p.job["inputs"]]
        generate = {k: v for k, v in params.items() if k in GENERATE_KEYS}
        if params.get("src_lang"):
            self.tokenizer.src_lang = params["src_lang"]
        if params.get("tgt_lang"):
            generate["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(params["tgt_lang"])
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        encoded.pop("token_type_ids", None)
        with torch.inference_mode():
            output = self.model.generate(**{k: v.to(self.device) for k, v in encoded.items()}, **generate)
        decoded = self.tokenizer.batch_decode(
            output,
            skip_special_tokens=True,
            clean_up_tokenization_spaces=bool(params.get("clean_up_tokenization_spaces", True)),
        )
        key = OUTPUT_KEY[batch[0].job["task"]] if batch[0].job["task"] in OUTPUT_KEY else OUTPUT_KEY[self.task]
        results, start = [], 0
        for prepared in batch:
            count = len(prepared.job["inputs"])
            results.append([{key: text} for text in decoded[start : start + count]])
            start += count
        return results


class QuestionAnsweringRunner:
    def __init__(self, model_dir: Path, spec: dict[str, Any]) -> None:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        self.device = device_for(spec)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if not getattr(self.tokenizer, "is_fast", False):
            raise RequestFailed("Question answering needs a fast tokenizer (tokenizer.json)", 422)
        base = AutoModelForQuestionAnswering.from_pretrained(model_dir)
        self.model = apply_adapter(base, spec).to(self.device).eval()
        limit = getattr(self.tokenizer, "model_max_length", None)
        config_limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(n for n in (limit, config_limit, 384) if n and n < 1_000_000)

    def info(self) -> dict[str, Any]:
        return {
            "form": "pytorch",
            "form_reason": "PyTorch span extraction",
            "device": str(self.device),
            "max_length": self.max_length,
        }

    def prepare(self, job: dict[str, Any]) -> Prepared:
        n = len(self.tokenizer(job["inputs"]["question"], job["inputs"]["context"])["input_ids"])
        return Prepared(job=job, sequences=[{"input_ids": [0] * min(n, self.max_length)}], group=("qa",))

    def run(self, batch: list[Prepared]) -> list[Any]:
        return [[self.answer(p.job["inputs"], p.job["parameters"])] for p in batch]

    def answer(self, inputs: dict[str, str], params: dict[str, Any]) -> Any:
        question, context = inputs["question"], inputs["context"]
        max_seq = min(params.get("max_seq_len") or self.max_length, self.max_length)
        stride = min(params.get("doc_stride") or 128, max_seq // 2)
        max_answer = params.get("max_answer_len") or 15
        top_k = params.get("top_k") or 1
        encoded = self.tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=max_seq,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").tolist()
        encoded.pop("overflow_to_sample_mapping", None)
        sequence_ids = [encoded.sequence_ids(i) for i in range(len(offsets))]
        with torch.inference_mode():
            output = self.model(**{k: v.to(self.device) for k, v in encoded.items()})
        starts = output.start_logits.float().cpu().numpy()
        ends = output.end_logits.float().cpu().numpy()
        candidates: list[tuple[float, int, int]] = []
        null_score = 0.0
        for window in range(len(offsets)):
            in_context = np.array([s == 1 for s in sequence_ids[window]])
            start_p = _softmax(np.where(in_context, starts[window], -1e4))
            end_p = _softmax(np.where(in_context, ends[window], -1e4))
            null_score = max(null_score, float(_softmax(starts[window])[0] * _softmax(ends[window])[0]))
            scores = np.triu(np.outer(start_p, end_p)) - np.triu(np.outer(start_p, end_p), k=max_answer)
            flat = np.argsort(-scores, axis=None)[: top_k * 4]
            for index in flat:
                s, e = np.unravel_index(index, scores.shape)
                if not (in_context[s] and in_context[e]):
                    continue
                candidates.append((float(scores[s, e]), offsets[window][s][0], offsets[window][e][1]))
        best: dict[tuple[int, int], float] = {}
        for score, start, end in candidates:
            best[(start, end)] = max(score, best.get((start, end), 0.0))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:top_k]
        answers: list[dict[str, Any]] = [
            {"answer": context[s:e], "score": score, "start": s, "end": e} for (s, e), score in ranked
        ]
        if params.get("handle_impossible_answer") and (not ranked or null_score > ranked[0][1]):
            answers = [{"answer": "", "score": null_score, "start": 0, "end": 0}, *answers][:top_k]
        if not answers:
            raise RequestFailed("No answer span found in the context")
        return answers[0] if top_k == 1 else answers


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()
