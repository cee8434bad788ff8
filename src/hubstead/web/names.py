"""A hint from a model's name: architecture, size, data, fine-tuning, language, format (tasks.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SIZES = {"tiny", "mini", "small", "base", "medium", "large", "xl", "xxl"}
VARIANTS = {"instruct", "chat", "base", "distilled", "uncased", "cased", "it"}
FORMATS = {"gguf", "awq", "gptq", "int8", "int4", "4bit", "8bit", "onnx", "mlx", "exl2", "fp16", "bf16"}
LANGUAGES = {
    "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it", "chinese": "zh",
    "japanese": "ja", "arabic": "ar", "russian": "ru", "portuguese": "pt", "dutch": "nl", "korean": "ko",
    "multilingual": "multilingual",
}  # fmt: skip
ARCHITECTURES = {
    "bert", "roberta", "distilbert", "albert", "electra", "deberta", "bart", "t5", "mt5", "gpt2", "gpt", "llama",
    "mistral", "mixtral", "qwen", "qwen2", "gemma", "phi", "falcon", "bloom", "opt", "whisper", "wav2vec2", "vit",
    "clip", "resnet", "convnext", "swin", "detr", "yolo", "minilm", "mpnet", "xlm", "smollm", "smollm2", "marian",
}  # fmt: skip
_PARAMS = re.compile(r"^\d+(\.\d+)?[mbk]$")


@dataclass
class NameHint:
    architecture: str | None = None
    size: str | None = None
    pretraining_data: str | None = None
    finetuned: bool = False
    finetuning_data: str | None = None
    language: str | None = None
    formats: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)

    def facts(self) -> list[tuple[str, str]]:
        out = []
        for label, value in (
            ("Architecture", self.architecture), ("Size", self.size), ("Data", self.pretraining_data),
            ("Fine-tuned on", self.finetuning_data if self.finetuned else None), ("Language", self.language),
        ):  # fmt: skip
            if value:
                out.append((label, value))
        if self.finetuned and not self.finetuning_data:
            out.append(("Fine-tuned", "yes"))
        if self.formats:
            out.append(("Format", ", ".join(self.formats)))
        if self.variants:
            out.append(("Variant", ", ".join(self.variants)))
        return out


def parse_model_name(repo_id: str) -> NameHint:
    """Read what a name like ``facebook/bart-large-mnli-finetuned-squad2-english`` says about the model."""
    name = repo_id.rsplit("/", 1)[-1].lower()
    hint = NameHint()
    tokens = [t for t in re.split(r"[-_.]", name) if t]
    data_words: list[str] = []
    for token in tokens:
        if token in ("finetuned", "ft", "fine", "tuned"):
            hint.finetuned = True
            continue
        if hint.architecture is None and (token in ARCHITECTURES or re.sub(r"\d+$", "", token) in ARCHITECTURES):
            hint.architecture = token
        elif token in SIZES and hint.size is None and token != "base":
            hint.size = token
        elif _PARAMS.match(token) and hint.size is None:
            hint.size = token.upper()
        elif token in FORMATS:
            hint.formats.append(token)
        elif token in VARIANTS:
            if token == "base" and hint.size is None:
                hint.size = "base"
            else:
                hint.variants.append(token)
        elif token in LANGUAGES:
            hint.language = LANGUAGES[token]
        elif hint.architecture is not None and not token.isdigit():
            data_words.append(token)
            if hint.finetuned:
                hint.finetuning_data = token
            elif hint.pretraining_data is None:
                hint.pretraining_data = token
    return hint
