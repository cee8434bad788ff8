"""What an inference request may say, checked in the hub process before any model sees it.

The Hugging Face inference API takes ``{"inputs": ..., "parameters": {...}}`` and answers with the
task's usual JSON. Each task here turns that body into a normalized job (plain data that crosses to a
worker process) or refuses it with a 400 that names the field. Nothing here imports torch.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from hubstead.errors import HubError
from hubstead.tasks import normalize_task

# The runner family a worker uses for a task: our own batched encoder, a transformers pipeline, or
# the continuous-batching generator.
ENCODER_TASKS = frozenset({"feature-extraction", "sentence-similarity", "text-classification", "text-ranking"})
PIPELINE_TASKS = frozenset(
    {
        "token-classification",
        "question-answering",
        "fill-mask",
        "zero-shot-classification",
        "summarization",
        "translation",
        "text2text-generation",
        "image-classification",
        "automatic-speech-recognition",
    }
)
GENERATION_TASKS = frozenset({"text-generation"})
SERVED_TASKS = ENCODER_TASKS | PIPELINE_TASKS | GENERATION_TASKS

# What a model tagged with one task can also serve through /pipeline/{task}.
COMPATIBLE_TASKS = {
    "sentence-similarity": {"feature-extraction"},
    "feature-extraction": {"sentence-similarity"},
    "fill-mask": {"feature-extraction", "sentence-similarity"},
    "text-classification": {"zero-shot-classification", "text-ranking"},
    "zero-shot-classification": {"text-classification"},
    "text-ranking": {"text-classification"},
    "translation": {"text2text-generation", "summarization"},
    "summarization": {"text2text-generation", "translation"},
    "text2text-generation": {"summarization", "translation"},
}

AGGREGATIONS = ("none", "simple", "first", "average", "max")


class InferenceError(HubError):
    """An inference request that cannot be answered; the status says whose fault it is."""

    def __init__(self, message: str, *, status_code: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.headers.update(headers or {})


class ModelLoadingError(InferenceError):
    """The model is still loading: the Hub's 503 with ``estimated_time`` so that clients wait and retry."""

    def __init__(self, repo_id: str, estimated_time: float) -> None:
        super().__init__(
            f"Model {repo_id} is currently loading",
            status_code=503,
            headers={"Retry-After": str(max(1, round(estimated_time)))},
        )
        self.estimated_time = estimated_time


@dataclass
class Job:
    """A checked request, as plain data a worker process can take: which task, what inputs, how."""

    task: str
    inputs: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    # True when the caller sent one item rather than a list (the answer then has one item too).
    single: bool = True

    def as_message(self) -> dict[str, Any]:
        return {"task": self.task, "inputs": self.inputs, "parameters": self.parameters, "single": self.single}


def can_serve(pipeline_tag: str | None, task: str) -> bool:
    """Whether a model tagged ``pipeline_tag`` may be asked for ``task``."""
    if pipeline_tag is None:
        return task in SERVED_TASKS
    return task == pipeline_tag or task in COMPATIBLE_TASKS.get(pipeline_tag, set())


def task_for_body(pipeline_tag: str, body: Any) -> str:
    """The task a request to ``/models/{id}`` means. Clients post every task to that one URL, so where a
    model serves several, the body's shape decides: an embedding model gets plain text for
    feature-extraction and ``{source_sentence, sentences}`` for similarity; a cross-encoder gets
    ``{query, texts}`` for ranking."""
    if not isinstance(body, dict):
        return pipeline_tag
    inputs = body.get("inputs")
    if pipeline_tag in ("sentence-similarity", "feature-extraction"):
        pair = isinstance(inputs, dict) or (inputs is None and "source_sentence" in body)
        return "sentence-similarity" if pair else "feature-extraction"
    if pipeline_tag in ("text-classification", "text-ranking") and isinstance(inputs, dict) and "texts" in inputs:
        return "text-ranking"
    if pipeline_tag == "text-ranking" and isinstance(inputs, str | list):
        return "text-classification"
    return pipeline_tag


def parse_job(task: str, body: Any, *, raw: bytes | None = None) -> Job:
    """Check ``body`` (the parsed JSON) for ``task`` and return the job; 400 naming the field if not.

    ``raw`` carries a non-JSON body (an image or an audio file posted as bytes)."""
    task = normalize_task(task)
    if task not in SERVED_TASKS:
        raise InferenceError(f"Task {task!r} is not served; served tasks: {', '.join(sorted(SERVED_TASKS))}")
    if raw is not None:
        if task not in ("image-classification", "automatic-speech-recognition"):
            raise InferenceError(f"Task {task} takes a JSON body with 'inputs'")
        return Job(task=task, inputs=_media(raw), parameters={})
    if not isinstance(body, dict):
        raise InferenceError("The request body must be a JSON object with an 'inputs' field")
    if "inputs" not in body:
        raise InferenceError("Missing 'inputs' in the request body")
    inputs = body["inputs"]
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InferenceError("'parameters' must be a JSON object")
    # Clients differ in where they put things: huggingface_hub 1.x+ sends feature-extraction options at
    # the root, 0.x sends question-answering and sentence-similarity fields at the root with inputs null.
    root = {k: v for k, v in body.items() if k not in ("inputs", "parameters", "stream", "options")}
    if inputs is None and task == "question-answering":
        inputs = {k: root.pop(k) for k in ("question", "context") if k in root}
    elif inputs is None and task == "sentence-similarity":
        inputs = {k: root.pop(k) for k in ("source_sentence", "sentences") if k in root}
    if inputs is None:
        raise InferenceError("'inputs' must not be null")
    if task == "feature-extraction":
        params = {**root, **params}
    checker = _CHECKERS[task]
    return checker(task, inputs, dict(params))


# --- helpers ------------------------------------------------------------------------------------


def _text(value: Any, name: str = "inputs") -> str:
    if not isinstance(value, str):
        raise InferenceError(f"'{name}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InferenceError(f"'{name}' must not be empty")
    return value


def _texts(value: Any, name: str = "inputs", *, limit: int = 1024) -> tuple[list[str], bool]:
    """A string or a non-empty list of strings, and whether it was a single string."""
    if isinstance(value, str):
        return [_text(value, name)], True
    if isinstance(value, list) and value:
        if len(value) > limit:
            raise InferenceError(f"'{name}' holds {len(value)} items; at most {limit} per request")
        return [_text(v, f"{name}[{i}]") for i, v in enumerate(value)], False
    raise InferenceError(f"'{name}' must be a string or a non-empty list of strings")


def _int(params: dict[str, Any], name: str, *, low: int, high: int, default: int | None = None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InferenceError(f"parameters.{name} must be an integer")
    if not low <= value <= high:
        raise InferenceError(f"parameters.{name} must be between {low} and {high}, got {value}")
    return value


def _float(params: dict[str, Any], name: str, *, low: float, high: float) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InferenceError(f"parameters.{name} must be a number")
    if not low <= float(value) <= high:
        raise InferenceError(f"parameters.{name} must be between {low} and {high}, got {value}")
    return float(value)


def _bool(params: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = params.get(name, default)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InferenceError(f"parameters.{name} must be true or false")
    return value


def _choice(params: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in choices:
        raise InferenceError(f"parameters.{name} must be one of {', '.join(choices)}")
    return value.lower()


def _known(params: dict[str, Any], allowed: set[str], task: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InferenceError(
            f"Unknown parameters for {task}: {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}"
        )


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise InferenceError(f"{name} must be a non-empty list of strings")
    return value


def _media(data: bytes) -> str:
    if not data:
        raise InferenceError("The request body is empty; send the image or audio bytes")
    return base64.b64encode(data).decode()


def _media_input(value: Any) -> str:
    """Images and audio in JSON travel base64-encoded (or as a data: URL)."""
    if not isinstance(value, str) or not value:
        raise InferenceError("'inputs' must be base64-encoded bytes")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InferenceError("'inputs' is not valid base64") from exc
    return value


def _truncation(params: dict[str, Any], out: dict[str, Any]) -> None:
    truncate = _bool(params, "truncate")
    out["truncate"] = True if truncate is None else truncate
    direction = _choice(params, "truncation_direction", ("left", "right"))
    out["truncation_direction"] = direction or "right"


# --- per task -----------------------------------------------------------------------------------


def _check_text_classification(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"top_k", "function_to_apply", "truncate", "truncation_direction"}, task)
    texts, single = _texts(inputs)
    out: dict[str, Any] = {"top_k": _int(params, "top_k", low=1, high=10_000)}
    out["function_to_apply"] = _choice(params, "function_to_apply", ("softmax", "sigmoid", "none"))
    _truncation(params, out)
    return Job(task, texts, out, single)


def _check_feature_extraction(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(
        params,
        {"normalize", "truncate", "truncation_direction", "prompt_name", "pooling", "dimensions", "encoding_format"},
        task,
    )
    texts, single = _texts(inputs)
    out: dict[str, Any] = {"normalize": _bool(params, "normalize")}
    out["pooling"] = _choice(params, "pooling", ("mean", "cls", "max", "none"))
    if params.get("prompt_name") is not None and not isinstance(params["prompt_name"], str):
        raise InferenceError("parameters.prompt_name must be a string")
    out["prompt_name"] = params.get("prompt_name")
    out["dimensions"] = _int(params, "dimensions", low=1, high=65_536)
    _truncation(params, out)
    return Job(task, texts, out, single)


def _check_sentence_similarity(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"truncate", "truncation_direction"}, task)
    if not isinstance(inputs, dict):
        raise InferenceError("'inputs' must be an object with 'source_sentence' and 'sentences'")
    source = _text(inputs.get("source_sentence"), "inputs.source_sentence")
    sentences, _ = _texts(inputs.get("sentences"), "inputs.sentences")
    out: dict[str, Any] = {}
    _truncation(params, out)
    return Job(task, {"source_sentence": source, "sentences": sentences}, out, True)


def _check_text_ranking(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"top_n", "return_text", "raw_scores", "truncate", "truncation_direction"}, task)
    if not isinstance(inputs, dict):
        raise InferenceError("'inputs' must be an object with 'query' and 'texts'")
    query = _text(inputs.get("query"), "inputs.query")
    texts, _ = _texts(inputs.get("texts"), "inputs.texts")
    out: dict[str, Any] = {
        "top_n": _int(params, "top_n", low=1, high=10_000),
        "return_text": bool(_bool(params, "return_text", False)),
        "raw_scores": bool(_bool(params, "raw_scores", False)),
    }
    _truncation(params, out)
    return Job(task, {"query": query, "texts": texts}, out, True)


def _check_token_classification(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"aggregation_strategy", "ignore_labels", "stride"}, task)
    texts, single = _texts(inputs)
    out: dict[str, Any] = {"aggregation_strategy": _choice(params, "aggregation_strategy", AGGREGATIONS) or "simple"}
    if params.get("ignore_labels") is not None:
        out["ignore_labels"] = _strings(params["ignore_labels"], "parameters.ignore_labels")
    stride = _int(params, "stride", low=0, high=4096)
    if stride:
        out["stride"] = stride
    return Job(task, texts, out, single)


def _check_question_answering(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    allowed = {
        "top_k",
        "doc_stride",
        "max_answer_len",
        "max_seq_len",
        "max_question_len",
        "handle_impossible_answer",
        "align_to_words",
    }
    _known(params, allowed, task)
    if not isinstance(inputs, dict):
        raise InferenceError("'inputs' must be an object with 'question' and 'context'")
    question = _text(inputs.get("question"), "inputs.question")
    context = _text(inputs.get("context"), "inputs.context")
    out: dict[str, Any] = {}
    for name, high in (
        ("top_k", 100),
        ("doc_stride", 4096),
        ("max_answer_len", 4096),
        ("max_seq_len", 8192),
        ("max_question_len", 4096),
    ):
        value = _int(params, name, low=1, high=high)
        if value is not None:
            out[name] = value
    for name in ("handle_impossible_answer", "align_to_words"):
        flag = _bool(params, name)
        if flag is not None:
            out[name] = flag
    return Job(task, {"question": question, "context": context}, out, True)


def _check_fill_mask(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"top_k", "targets"}, task)
    texts, single = _texts(inputs)
    out: dict[str, Any] = {"top_k": _int(params, "top_k", low=1, high=1000, default=5)}
    if params.get("targets") is not None:
        out["targets"] = _strings(params["targets"], "parameters.targets")
    return Job(task, texts, out, single)


def _check_zero_shot(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"candidate_labels", "multi_label", "hypothesis_template"}, task)
    if isinstance(inputs, dict):  # older clients nest the labels in the inputs
        params = {**params, **{k: v for k, v in inputs.items() if k != "text"}}
        inputs = inputs.get("text")
    text = _text(inputs)
    if "candidate_labels" not in params:
        raise InferenceError("parameters.candidate_labels is required for zero-shot-classification")
    out: dict[str, Any] = {"candidate_labels": _strings(params["candidate_labels"], "parameters.candidate_labels")}
    out["multi_label"] = bool(_bool(params, "multi_label", False))
    template = params.get("hypothesis_template")
    if template is not None:
        if not isinstance(template, str) or "{}" not in template:
            raise InferenceError("parameters.hypothesis_template must be a string containing {}")
        out["hypothesis_template"] = template
    return Job(task, text, out, True)


GENERATE_PARAMS = {
    "max_new_tokens",
    "max_length",
    "min_length",
    "min_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "do_sample",
    "repetition_penalty",
    "num_beams",
    "early_stopping",
}


def _generate_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, high in (
        ("max_new_tokens", 4096),
        ("max_length", 8192),
        ("min_length", 4096),
        ("min_new_tokens", 4096),
        ("top_k", 100_000),
        ("num_beams", 8),
    ):
        value = _int(params, name, low=0 if name.startswith("min") else 1, high=high)
        if value is not None:
            out[name] = value
    for key, low_f, high_f in (("temperature", 0.0, 100.0), ("top_p", 0.0, 1.0), ("repetition_penalty", 0.0, 100.0)):
        number = _float(params, key, low=low_f, high=high_f)
        if number is not None:
            out[key] = number
    for name in ("do_sample", "early_stopping"):
        flag = _bool(params, name)
        if flag is not None:
            out[name] = flag
    return out


def _check_seq2seq(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    allowed = GENERATE_PARAMS | {
        "clean_up_tokenization_spaces",
        "truncation",
        "generate_parameters",
        "src_lang",
        "tgt_lang",
    }
    _known(params, allowed, task)
    params.pop("truncation", None)  # the pipeline truncates to the model's length in any case
    texts, single = _texts(inputs)
    nested = params.pop("generate_parameters", None) or {}
    if not isinstance(nested, dict):
        raise InferenceError("parameters.generate_parameters must be an object")
    out = _generate_params({**nested, **{k: v for k, v in params.items() if k in GENERATE_PARAMS}})
    if params.get("clean_up_tokenization_spaces") is not None:
        out["clean_up_tokenization_spaces"] = bool(_bool(params, "clean_up_tokenization_spaces"))
    for name in ("src_lang", "tgt_lang"):
        if params.get(name) is not None:
            out[name] = _text(params[name], f"parameters.{name}")
    return Job(task, texts, out, single)


def check_sampling(params: dict[str, Any], *, allowed: set[str] | None = None) -> dict[str, Any]:
    """Sampling settings for the generator, from Hub-style or OpenAI-style names."""
    out: dict[str, Any] = {}
    max_new = _int(params, "max_new_tokens", low=1, high=32_768)
    if max_new is None:
        max_new = _int(params, "max_tokens", low=1, high=32_768)
    if max_new is None:
        max_new = _int(params, "max_completion_tokens", low=1, high=32_768)
    out["max_new_tokens"] = max_new
    out["temperature"] = _float(params, "temperature", low=0.0, high=100.0)
    out["top_p"] = _float(params, "top_p", low=0.0, high=1.0)
    out["top_k"] = _int(params, "top_k", low=1, high=1_000_000)
    out["repetition_penalty"] = _float(params, "repetition_penalty", low=0.01, high=100.0)
    out["do_sample"] = _bool(params, "do_sample")
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InferenceError("seed must be an integer")
    out["seed"] = seed
    stop = params.get("stop", params.get("stop_sequences"))
    if stop is None:
        out["stop"] = []
    elif isinstance(stop, str):
        out["stop"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) and s for s in stop) and len(stop) <= 16:
        out["stop"] = stop
    else:
        raise InferenceError("stop must be a string or a list of at most 16 non-empty strings")
    return out


def _check_text_generation(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    allowed = {
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "do_sample",
        "repetition_penalty",
        "seed",
        "stop",
        "stop_sequences",
        "return_full_text",
        "details",
        "decoder_input_details",
        "watermark",
        "truncate",
        "best_of",
        "typical_p",
        "frequency_penalty",
        "grammar",
        "adapter_id",
        "top_n_tokens",
        "max_tokens",
    }
    _known(params, allowed, task)
    text = _text(inputs)
    out = check_sampling(params)
    out["return_full_text"] = bool(_bool(params, "return_full_text", False))
    out["details"] = bool(_bool(params, "details", False))
    return Job(task, text, out, True)


def _check_image_classification(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"top_k", "function_to_apply"}, task)
    out: dict[str, Any] = {"top_k": _int(params, "top_k", low=1, high=1000, default=5)}
    fn = _choice(params, "function_to_apply", ("softmax", "sigmoid", "none"))
    if fn:
        out["function_to_apply"] = fn
    return Job(task, _media_input(inputs), out, True)


def _check_asr(task: str, inputs: Any, params: dict[str, Any]) -> Job:
    _known(params, {"return_timestamps", "generate_kwargs", "generation_parameters"}, task)
    return Job(task, _media_input(inputs), {}, True)


_CHECKERS = {
    "text-classification": _check_text_classification,
    "feature-extraction": _check_feature_extraction,
    "sentence-similarity": _check_sentence_similarity,
    "text-ranking": _check_text_ranking,
    "token-classification": _check_token_classification,
    "question-answering": _check_question_answering,
    "fill-mask": _check_fill_mask,
    "zero-shot-classification": _check_zero_shot,
    "summarization": _check_seq2seq,
    "translation": _check_seq2seq,
    "text2text-generation": _check_seq2seq,
    "text-generation": _check_text_generation,
    "image-classification": _check_image_classification,
    "automatic-speech-recognition": _check_asr,
}


def runner_family(task: str) -> str:
    if task in ENCODER_TASKS:
        return "encoder"
    if task in GENERATION_TASKS:
        return "generation"
    return "pipeline"
