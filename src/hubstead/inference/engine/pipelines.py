"""Tasks served through transformers pipelines: their pre- and post-processing is the reference.

Requests with the same parameters still batch: the pipeline gets the list and a batch size, and pads
each batch to its longest input.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np

from hubstead.inference.engine.common import RequestFailed, apply_adapter, device_for
from hubstead.inference.engine.encoder import Prepared


def _plain(value: Any) -> Any:
    """numpy scalars and arrays into JSON-able Python."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """WAV (any PCM width) with the standard library; FLAC/OGG/MP3 through soundfile when installed."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
        dtype: Any = {1: np.uint8, 2: np.int16, 4: np.int32}.get(width)
        if dtype is None:
            raise RequestFailed(f"Unsupported WAV sample width: {width} bytes")
        samples: Any = np.frombuffer(frames, dtype=dtype).astype(np.float32)
        samples = (samples - 128) / 128 if width == 1 else samples / float(np.iinfo(dtype).max)
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1)
        return samples, rate
    except (wave.Error, EOFError):
        pass
    try:
        import soundfile
    except ImportError as exc:
        raise RequestFailed("Only WAV audio can be read on this server (install soundfile for FLAC/OGG)", 415) from exc
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the caller's bad file
        raise RequestFailed(f"The audio could not be decoded: {exc}", 415) from exc
    return samples.mean(axis=1), rate


class PipelineRunner:
    """One model behind one transformers pipeline."""

    def __init__(self, model_dir: Path, task: str, spec: dict[str, Any]) -> None:
        from transformers import pipeline

        self.task = task
        self.device = device_for(spec)
        try:
            self.pipe = pipeline(task, model=str(model_dir), device=self.device)
        except (OSError, ValueError, KeyError) as exc:
            raise RequestFailed(f"The model cannot serve {task}: {exc}", 422) from exc
        self.pipe.model = apply_adapter(self.pipe.model, spec)
        tokenizer = getattr(self.pipe, "tokenizer", None)
        self.mask_token = getattr(tokenizer, "mask_token", None)
        self.max_length = getattr(tokenizer, "model_max_length", None)

    def info(self) -> dict[str, Any]:
        return {
            "form": "pytorch",
            "form_reason": "transformers pipeline",
            "device": str(self.device),
            "max_length": self.max_length if self.max_length and self.max_length < 1_000_000 else None,
        }

    def prepare(self, job: dict[str, Any]) -> Prepared:
        inputs = job["inputs"]
        if self.task == "fill-mask":
            for text in inputs:
                if not self.mask_token or self.mask_token not in text:
                    raise RequestFailed(f"No mask token ({self.mask_token}) found in the input: {text[:80]!r}")
        items = inputs if isinstance(inputs, list) else [inputs]
        lengths = [max(1, len(json.dumps(item)) // 4) for item in items]
        group = (job["task"], json.dumps(job["parameters"], sort_keys=True))
        return Prepared(job=job, sequences=[{"input_ids": [0] * n} for n in lengths], group=group)

    def run(self, batch: list[Prepared]) -> list[Any]:
        params = dict(batch[0].job["parameters"])
        items: list[Any] = []
        counts = []
        for prepared in batch:
            inputs = prepared.job["inputs"]
            listed = inputs if isinstance(inputs, list) else [inputs]
            items.extend(self._input(item) for item in listed)
            counts.append(len(listed))
        kwargs = self._kwargs(params)
        try:
            if len(items) == 1:  # a one-item list would come back unwrapped for some tasks
                outputs = [self.pipe(items[0], **kwargs)]
            else:
                outputs = list(self.pipe(items, batch_size=min(len(items), 64), **kwargs))
        except (ValueError, KeyError, IndexError) as exc:
            raise RequestFailed(f"{self.task} failed on this input: {exc}", 422) from exc
        results, start = [], 0
        for count in counts:
            results.append([_plain(o) for o in outputs[start : start + count]])
            start += count
        return results

    def _input(self, item: Any) -> Any:
        if self.task == "question-answering":
            return {"question": item["question"], "context": item["context"]}
        if self.task == "image-classification":
            from PIL import Image, UnidentifiedImageError

            try:
                image = Image.open(io.BytesIO(base64.b64decode(item)))
                image.load()
            except (UnidentifiedImageError, OSError) as exc:
                raise RequestFailed("The image could not be decoded", 415) from exc
            return image.convert("RGB")
        if self.task == "automatic-speech-recognition":
            samples, rate = decode_audio(base64.b64decode(item))
            return {"raw": samples, "sampling_rate": rate}
        return item

    def _kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.task in ("summarization", "translation", "text2text-generation"):
            kwargs = {k: v for k, v in params.items() if k not in ("src_lang", "tgt_lang")}
            if self.task == "translation":
                kwargs.update({k: params[k] for k in ("src_lang", "tgt_lang") if k in params})
            return kwargs
        if self.task == "token-classification":
            kwargs = dict(params)
            if "stride" in kwargs and kwargs.get("aggregation_strategy") == "none":
                kwargs.pop("stride")
            return kwargs
        return params
