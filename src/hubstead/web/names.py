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
_LAYERS = re.compile(r"^l(\d{1,3})$")  # MiniLM-L6, L12: the layer count, not a data set
_VERSION = re.compile(r"^v\d+(\.\d+)?$")
# A word is read as the pre-training data only when it names a known data set: a name's other words (``all`` in
# ``all-MiniLM-L6-v2``, a team's code word) say nothing certain, and the hint must not claim what it cannot know.
DATASETS = {
    "mnli", "snli", "xnli", "squad", "squad2", "imdb", "sst2", "glue", "superglue", "wikitext", "c4", "pile",
    "openwebtext", "cnn", "xsum", "samsum", "conll03", "conll2003", "emotion", "yelp", "qqp", "mrpc", "stsb", "qnli",
    "rte", "cola", "boolq", "msmarco", "nq", "triviaqa", "dolly", "alpaca", "ultrachat", "openhermes", "wikipedia",
    "bookcorpus", "pubmed", "librispeech", "commonvoice", "imagenet", "coco", "cifar10", "cifar100", "mnist",
}  # fmt: skip


@dataclass
class NameHint:
    architecture: str | None = None
    size: str | None = None
    pretraining_data: str | None = None
    finetuned: bool = False
    finetuning_data: str | None = None
    layers: str | None = None
    version: str | None = None
    language: str | None = None
    formats: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)

    def facts(self) -> list[tuple[str, str]]:
        out = []
        for label, value in (
            ("Architecture", self.architecture), ("Size", self.size), ("Data", self.pretraining_data),
            ("Fine-tuned on", self.finetuning_data if self.finetuned else None), ("Layers", self.layers),
            ("Version", self.version), ("Language", self.language),
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
        elif (layers := _LAYERS.match(token)) and hint.architecture is not None and hint.layers is None:
            hint.layers = layers.group(1)
        elif _VERSION.match(token) and hint.version is None:
            hint.version = token
        elif hint.architecture is not None and not token.isdigit():
            if hint.finetuned:  # "finetuned-squad2": the word after says what it was tuned on
                if hint.finetuning_data is None:
                    hint.finetuning_data = token
            elif hint.pretraining_data is None and token in DATASETS:
                hint.pretraining_data = token
    return hint
