"""Text generation with continuous batching: requests join and leave the running batch token by token.

The batch is one left-padded KV cache (the layout TGI uses). At every step the worker:
1. admits waiting requests: their prompts are prefilled together in a cache of their own, which is
   then left-padded to the running batch's length and concatenated to it (along the batch axis);
2. decodes one token for every running sequence in a single forward pass;
3. drops sequences that finished, were cancelled or whose client left, and trims the cache columns
   that only padding still uses.

So a long answer never holds a short one back, and a new request waits at most one step to start.
"""

from __future__ import annotations

import inspect
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hubstead.inference.engine.batching import drain
from hubstead.inference.engine.common import RequestFailed, apply_adapter, device_for

log = logging.getLogger("hubstead.inference")

Send = Callable[[dict[str, Any]], None]


@dataclass
class Sequence:
    """One request being generated."""

    id: int
    prompt: list[int]
    max_new_tokens: int
    sampling: dict[str, Any]
    stop: list[str]
    details: bool
    generator: torch.Generator | None = None
    generated: list[int] = field(default_factory=list)
    text: str = ""  # emitted so far
    tokens: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    started: float = field(default_factory=time.perf_counter)


@dataclass
class RunningBatch:
    """Sequences sharing one KV cache. ``mask`` covers every cached position; ``pending`` holds the
    token each row feeds next (sampled, not yet in the cache)."""

    rows: list[Sequence]
    cache: Any
    mask: torch.Tensor
    pending: torch.Tensor


def _left_pad(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class GenerationRunner:
    """A causal language model serving many streams at once."""

    def __init__(self, model_dir: Path, spec: dict[str, Any]) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device_for(spec)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = apply_adapter(base, spec).to(self.device).eval()
        config = self.model.config
        self.max_context = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        generation = getattr(self.model, "generation_config", None)
        eos: set[int] = set()
        for value in (getattr(generation, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                eos.add(value)
            elif isinstance(value, list):
                eos.update(v for v in value if isinstance(v, int))
        self.eos = eos
        self.default_sample = bool(getattr(generation, "do_sample", False))
        self.max_sequences = int(spec.get("max_sequences", 32))
        self.prefill_budget = int(spec.get("max_batch_tokens", 4096))
        parameters = inspect.signature(self.model.forward).parameters
        self.cache_arg = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are used: computing the output layer for every prompt position
        # made prefill ~25% slower (and every running stream waits for a prefill).
        self.last_logits_only = "logits_to_keep" in parameters
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))

    def info(self) -> dict[str, Any]:
        return {
            "form": "pytorch",
            "form_reason": "PyTorch with continuous batching",
            "device": str(self.device),
            "max_length": self.max_context,
            "chat_template": self.has_template,
        }

    # --- requests ------------------------------------------------------------------------------

    def prepare(self, request_id: int, job: dict[str, Any]) -> Sequence:
        params = job["parameters"]
        if job["task"] == "chat":
            if not self.has_template:
                raise RequestFailed("This model has no chat template; use /v1/completions or text-generation", 400)
            try:
                rendered = self.tokenizer.apply_chat_template(job["inputs"], add_generation_prompt=True, tokenize=False)
            except Exception as exc:  # noqa: BLE001 - template errors (bad roles, order) are the caller's
                raise RequestFailed(f"The chat template refused these messages: {exc}", 400) from exc
            prompt = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        else:
            prompt = self.tokenizer(job["inputs"])["input_ids"]
        if not prompt:
            raise RequestFailed("The prompt is empty after tokenization", 400)
        room = self.max_context - len(prompt)
        if room < 1:
            raise RequestFailed(
                f"The prompt is {len(prompt)} tokens; this model's context holds {self.max_context}", 413
            )
        default_new = 256 if job["task"] in ("chat", "completion") else 100
        max_new = min(params.get("max_new_tokens") or default_new, room)
        sampling = {k: params.get(k) for k in ("temperature", "top_p", "top_k", "repetition_penalty", "do_sample")}
        generator = None
        if params.get("seed") is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(params["seed"]))
        return Sequence(
            id=request_id,
            prompt=list(prompt),
            max_new_tokens=max_new,
            sampling=sampling,
            stop=list(params.get("stop") or []),
            details=bool(params.get("details")),
            generator=generator,
        )

    # --- the loop ------------------------------------------------------------------------------

    def serve(self, inbox: queue.Queue[Any], send: Send, cancelled: set[int]) -> None:
        waiting: deque[Sequence] = deque()
        batch: RunningBatch | None = None
        while True:
            messages = drain(inbox, block=batch is None and not waiting)
            for message in messages:
                if message is None:
                    return
                try:
                    waiting.append(self.prepare(message["id"], message["job"]))
                except RequestFailed as exc:
                    send({"op": "error", "id": message["id"], "status": exc.status, "message": exc.message})
            if cancelled:
                waiting = deque(s for s in waiting if s.id not in cancelled)
                if batch is not None:
                    for row in batch.rows:
                        if row.id in cancelled:
                            row.finish_reason = "cancelled"
                    batch = self._drop_finished(batch)
            admitted = self._admit(waiting, 0 if batch is None else len(batch.rows))
            if admitted:
                started = time.perf_counter()
                fresh = self._prefill(admitted, send)
                send(
                    {
                        "op": "batch",
                        "kind": "prefill",
                        "size": len(admitted),
                        "seconds": time.perf_counter() - started,
                        "tokens": sum(len(s.prompt) for s in admitted),
                    }
                )
                batch = self._merge(batch, self._drop_finished(fresh))
            if batch is not None:
                started = time.perf_counter()
                self._decode(batch, send)
                send(
                    {
                        "op": "batch",
                        "kind": "decode",
                        "size": len(batch.rows),
                        "seconds": time.perf_counter() - started,
                        "tokens": len(batch.rows),
                    }
                )
                batch = self._drop_finished(batch)

    def _admit(self, waiting: deque[Sequence], running: int) -> list[Sequence]:
        admitted: list[Sequence] = []
        longest = 0
        while waiting and running + len(admitted) < self.max_sequences:
            candidate = waiting[0]
            new_longest = max(longest, len(candidate.prompt))
            if admitted and new_longest * (len(admitted) + 1) > self.prefill_budget:
                break
            admitted.append(waiting.popleft())
            longest = new_longest
        return admitted

    # --- model steps ---------------------------------------------------------------------------

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> Any:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": positions,
            self.cache_arg: cache,
            "use_cache": True,
        }
        if self.last_logits_only:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            return self.model(**kwargs)

    def _prefill(self, rows: list[Sequence], send: Send) -> RunningBatch:
        from transformers import DynamicCache

        longest = max(len(s.prompt) for s in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, seq in enumerate(rows):
            ids[i, longest - len(seq.prompt) :] = torch.tensor(seq.prompt)
            mask[i, longest - len(seq.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        output = self._forward(ids, mask, positions, cache)
        logits = output.logits[:, -1, :].float()
        next_tokens = self._choose(rows, logits, send)
        return RunningBatch(rows=rows, cache=cache, mask=mask, pending=next_tokens)

    def _decode(self, batch: RunningBatch, send: Send) -> None:
        ones = batch.mask.new_ones((batch.mask.shape[0], 1))
        mask = torch.cat([batch.mask, ones], dim=1)
        positions = batch.mask.sum(dim=1, keepdim=True)
        output = self._forward(batch.pending[:, None], mask, positions, batch.cache)
        batch.mask = mask
        batch.pending = self._choose(batch.rows, output.logits[:, -1, :].float(), send)

    def _choose(self, rows: list[Sequence], logits: torch.Tensor, send: Send) -> torch.Tensor:
        """Pick each row's next token, record it, and stream its text to the client."""
        chosen = []
        logprobs = torch.log_softmax(logits, dim=-1)
        for i, seq in enumerate(rows):
            token = self._sample(seq, logits[i])
            chosen.append(token)
            if seq.finish_reason is None:
                self._emit(seq, token, float(logprobs[i, token]), send)
        return torch.tensor(chosen, dtype=torch.long, device=self.device)

    def _sample(self, seq: Sequence, logits: torch.Tensor) -> int:
        s = seq.sampling
        penalty = s.get("repetition_penalty")
        if penalty and penalty != 1.0:
            seen = torch.tensor(sorted(set(seq.prompt + seq.generated)), device=logits.device)
            values = logits[seen]
            logits = logits.clone()
            logits[seen] = torch.where(values > 0, values / penalty, values * penalty)
        temperature = s.get("temperature")
        sample = s.get("do_sample")
        if sample is None:
            sample = (temperature is not None and temperature > 0) or (temperature is None and self.default_sample)
        if not sample or temperature == 0:
            return int(torch.argmax(logits))
        logits = logits / (temperature or 1.0)
        top_k = s.get("top_k")
        if top_k and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k).values[-1]
            logits = torch.where(logits < kth, torch.full_like(logits, float("-inf")), logits)
        probs = torch.softmax(logits, dim=-1)
        top_p = s.get("top_p")
        if top_p is not None and 0 < top_p < 1:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
            filtered = torch.zeros_like(probs)
            filtered[order[keep]] = probs[order[keep]]
            probs = filtered / filtered.sum()
        return int(torch.multinomial(probs, 1, generator=seq.generator))

    def _emit(self, seq: Sequence, token: int, logprob: float, send: Send) -> None:
        special = token in self.eos
        if seq.details:
            seq.tokens.append(
                {"id": token, "text": self.tokenizer.decode([token]), "logprob": logprob, "special": special}
            )
        if special:
            seq.finish_reason = "stop"
            self._finish(seq, send)
            return
        seq.generated.append(token)
        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        finish = None
        for stop in seq.stop:
            at = text.find(stop, max(0, len(seq.text) - len(stop)))
            if at >= 0:
                text, finish = text[:at], "stop"
        if len(seq.generated) >= seq.max_new_tokens and finish is None:
            finish = "length"
        # Hold back a partial UTF-8 character until the next token completes it.
        if finish is None and text.endswith("\ufffd"):
            return
        delta = text[len(seq.text) :]
        seq.text = text
        send({"op": "token", "id": seq.id, "text": delta, "token": {"id": token, "logprob": logprob}})
        if finish:
            seq.finish_reason = finish
            self._finish(seq, send)

    def _finish(self, seq: Sequence, send: Send) -> None:
        value: dict[str, Any] = {
            "generated_text": seq.text,
            "finish_reason": seq.finish_reason,
            "prompt_tokens": len(seq.prompt),
            "completion_tokens": len(seq.generated),
        }
        if seq.details:
            value["tokens"] = seq.tokens
        send({"op": "done", "id": seq.id, "value": value})

    # --- batch surgery -------------------------------------------------------------------------

    def _layers(self, cache: Any) -> list[Any]:
        return list(cache.layers)

    def _merge(self, running: RunningBatch | None, fresh: RunningBatch | None) -> RunningBatch | None:
        if running is None or not running.rows:
            return fresh
        if fresh is None or not fresh.rows:
            return running
        length = max(running.mask.shape[1], fresh.mask.shape[1])
        for mine, theirs in zip(self._layers(running.cache), self._layers(fresh.cache), strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, length, 2), _left_pad(theirs.keys, length, 2)], dim=0)
            mine.values = torch.cat([_left_pad(mine.values, length, 2), _left_pad(theirs.values, length, 2)], dim=0)
        running.mask = torch.cat([_left_pad(running.mask, length, 1), _left_pad(fresh.mask, length, 1)], dim=0)
        running.pending = torch.cat([running.pending, fresh.pending])
        running.rows = running.rows + fresh.rows
        return running

    def _drop_finished(self, batch: RunningBatch | None) -> RunningBatch | None:
        if batch is None:
            return None
        keep = [i for i, row in enumerate(batch.rows) if row.finish_reason is None]
        if len(keep) == len(batch.rows):
            return batch
        if not keep:
            return None
        index = torch.tensor(keep, device=batch.mask.device)
        mask = batch.mask[index]
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        for layer in self._layers(batch.cache):
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
        batch.mask = mask[:, first:]
        batch.pending = batch.pending[index]
        batch.rows = [batch.rows[i] for i in keep]
        return batch
