"""Train's service rules that need no hub: which base models fit which task, what a safetensors header claims,
the memory a run needs, and how the Train page's fields become ``POST /api/train``'s JSON."""

from __future__ import annotations

import json
import struct

import pytest

from hubstead.train import service
from hubstead.train.spec import parse_spec
from hubstead.web.routes_train_pages import feature_type, form_to_run


@pytest.mark.parametrize(("config", "kind"), [
    ({"architectures": ["BertModel"], "model_type": "bert"}, "encoder"),
    ({"architectures": ["RobertaForSequenceClassification"]}, "encoder"),
    ({"model_type": "bert"}, "encoder"),
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "causal"),
    ({"architectures": ["GPT2LMHeadModel"]}, "causal"),
    ({"model_type": "qwen2"}, "causal"),
    ({"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}, "other"),
    ({}, "other"),
])
def test_model_kind_reads_architectures_and_model_type(config: dict[str, object], kind: str) -> None:
    """An encoder, a causal LM or neither, from config.json's architectures, then its model_type."""
    assert service.model_kind(config) == kind


def test_a_safetensors_header_claim_and_the_memory_a_run_needs() -> None:
    """The largest tensor end offset is what the weights take; a full run needs four times them plus the runtime,
    an adapter run 1.3 times; what is not a safetensors header claims nothing."""
    header = json.dumps({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [1000], "data_offsets": [8, 4008]}}).encode()
    data = struct.pack("<Q", len(header)) + header
    assert service._safetensors_claim(data[:8], lambda n: data[:n]) == 4008
    assert service._safetensors_claim(b"\xff" * 8, lambda n: b"\xff" * n) is None
    assert service._safetensors_claim(b"abc", lambda n: b"abc") is None
    gib = 2**30
    assert service.memory_needed(gib, "full") == 4 * gib + service.RUNTIME_BYTES
    assert service.memory_needed(gib, "lora") == int(1.3 * gib) + service.RUNTIME_BYTES


def test_the_pages_fields_become_a_valid_run() -> None:
    """Hyperparameters left at their defaults are not sent, changed ones are numbers, empty column pickers mean
    "the column named like the role", the job runs in the output repo's namespace (the caller's for a PR)."""
    form = {"task": "text-classification", "model": "alice/bert", "dataset": "alice/reviews", "method": "full",
            "param_learning_rate": "2e-05", "param_max_steps": "40", "param_epochs": "3.0", "col_text": "review",
            "col_label": "", "col_text_pair": "", "output": "acme/out", "push": "new-repo", "flavor": "cpu-basic",
            "train_split": "train", "eval_split": "test", "csrf_token": "x"}
    run = form_to_run(form, "alice")
    assert run["hyperparameters"] == {"max_steps": 40}
    assert run["columns"] == {"text": "review"} and run["namespace"] == "acme" and run["eval_split"] == "test"
    request = service.parse_form(run, "alice")
    assert request.namespace == "acme" and request.spec.hyperparameters.max_steps == 40
    pr = form_to_run({**form, "push": "pull-request", "output": "bob/model"}, "alice")
    assert pr["namespace"] == "alice"
    body = service.job_body(request)
    assert body["dockerImage"] == "hubstead/python" and body["attempts"] == 2
    assert parse_spec(json.loads(body["environment"][service.SPEC_ENV])) == request.spec
    with pytest.raises(service.TrainRequestError, match="Unknown flavor"):
        service.parse_form({**run, "flavor": "tpu"}, "alice")


def test_feature_types_in_words() -> None:
    assert feature_type({"_type": "Value", "dtype": "string"}) == "string"
    assert feature_type({"_type": "ClassLabel", "names": ["neg", "pos"]}) == "class label (neg, pos)"
    assert feature_type({"_type": "List", "feature": {"_type": "Value", "dtype": "int64"}}) == "list of int64"
    assert feature_type([{"role": {"_type": "Value", "dtype": "string"}}]).startswith("list of struct")
