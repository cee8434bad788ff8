"""The Train program's pure parts: the spec (parsing, defaults, bounds, columns against a dataset's features), the
metric lines, the scores, the curve SVG and the model card (checked by the hub's own card validator)."""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml

from hubstead.repos.cards import validate_card
from hubstead.train import scores
from hubstead.train.card import model_card
from hubstead.train.chart import loss_chart_svg, nice_ticks
from hubstead.train.metrics import format_metric, parse_metric_lines
from hubstead.train.spec import (
    TrainSpecError,
    check_columns,
    defaults_for,
    parse_spec,
    required_columns,
)

STRING = {"dtype": "string", "_type": "Value"}
INT = {"dtype": "int64", "_type": "Value"}
FLOAT = {"dtype": "float32", "_type": "Value"}


def _spec(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"task": "text-classification", "base_model": "org/base", "dataset": "org/data",
                            "output": {"repo_id": "me/out"}}
    data.update(extra)
    return data


def _refused(data: Any, *words: str, **kwargs: Any) -> str:
    with pytest.raises(TrainSpecError) as caught:
        parse_spec(data, **kwargs)
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value.message


def test_a_minimal_spec_gets_the_task_defaults_and_round_trips() -> None:
    """Left-out fields take their defaults (train split, 10% holdout, full fine-tune, a new repo, the task's
    hyperparameters), and a spec written out as JSON parses back to the same spec."""
    spec = parse_spec(_spec())
    assert spec.train_split == "train" and spec.eval_split is None and spec.method == "full"
    assert spec.output.push == "new-repo" and not spec.output.private and spec.output.merged_repo_id is None
    assert spec.hyperparameters.learning_rate == defaults_for("text-classification")["learning_rate"]
    assert spec.hyperparameters.loss is None and spec.hyperparameters.beta is None
    assert parse_spec(spec.to_json()) == spec
    assert defaults_for("sentence-embeddings")["loss"] == "MultipleNegativesRankingLoss"
    assert defaults_for("dpo")["beta"] == 0.1
    assert defaults_for("sft", "lora")["learning_rate"] > defaults_for("sft", "full")["learning_rate"]
    lora = parse_spec(_spec(task="sft", method="lora", output={"repo_id": "me/x", "merge_adapter": True}))
    assert lora.output.merged_repo_id == "me/x-merged"
    assert parse_spec(lora.to_json()) == lora


@pytest.mark.parametrize(("field", "value", "words"), [
    ("epochs", 0, "epochs must be between"),
    ("epochs", 1000, "epochs must be between"),
    ("batch_size", 5000, "batch_size must be between"),
    ("batch_size", 2.5, "whole number"),
    ("max_steps", 0, "max_steps must be between"),
    ("max_length", 4, "max_length must be between"),
    ("max_length", 10**6, "max_length must be between"),
    ("lora_r", 1024, "lora_r must be between"),
    ("learning_rate", float("nan"), "learning_rate must be between"),
    ("learning_rate", "fast", "must be a number"),
    ("seed", True, "must be a number"),
    ("temperature", 1, "Unknown hyperparameter"),
])
def test_numbers_are_bounded_and_named(field: str, value: Any, words: str) -> None:
    """Every number has bounds; a number out of them, of the wrong kind, or an unknown name is refused by name."""
    _refused(_spec(hyperparameters={field: value}), words)


def test_choices_and_shapes_are_refused_in_words() -> None:
    """Unknown tasks, methods, losses, push modes and fields; bad repo ids; a branch push without a branch; merge
    on a full fine-tune; a loss or beta on the wrong task; QLoRA where there is no GPU + bitsandbytes."""
    _refused(_spec(task="summarise"), "Unknown task", "text-classification")
    _refused(_spec(method="dora"), "Unknown method")
    _refused(_spec(colour="red"), "Unknown field")
    _refused(_spec(base_model="../etc"), "base_model", "not a repo id")
    _refused(_spec(dataset=""), "needs dataset")
    _refused(_spec(output={"repo_id": "me/x", "push": "branch"}), "output.branch")
    _refused(_spec(output={"repo_id": "me/x", "push": "branch", "branch": "main"}), "other than main")
    _refused(_spec(output={"repo_id": "me/x", "push": "tarball"}), "Unknown output.push")
    _refused(_spec(output={"repo_id": "me/x", "merge_adapter": True}), "merge_adapter is for LoRA")
    _refused(_spec(output={"repo_id": "me/x", "private": "yes"}), "output.private")
    _refused(_spec(method="qlora", output={"repo_id": "me/x", "merge_adapter": True}), "not offered for QLoRA",
             can_quantize=True)
    _refused(_spec(task="sentence-embeddings", method="lora"), "method full only")
    _refused(_spec(hyperparameters={"loss": "CoSENTLoss"}), "sentence-embeddings task only")
    _refused(_spec(task="sentence-embeddings", hyperparameters={"loss": "TripletLoss"}), "Unknown loss")
    _refused(_spec(hyperparameters={"beta": 0.2}), "dpo task only")
    _refused(_spec(eval_split="train"), "must differ")
    _refused(_spec(columns={"sentence": "x"}), "Unknown column role")
    _refused(_spec(task="sft", columns={"messages": "chat", "prompt": "q"}), "either messages or prompt")
    _refused(_spec(method="qlora"), "QLoRA needs a GPU and bitsandbytes", "lora", can_quantize=False)
    assert parse_spec(_spec(method="qlora"), can_quantize=True).method == "qlora"
    _refused([], "JSON object")


def test_required_columns_follow_the_task_and_the_mapping() -> None:
    """Each task reads its roles, renamed by ``columns``; optional roles only when mapped."""
    assert required_columns("text-classification", {"text": "review"}) == ["review", "label"]
    assert required_columns("text-classification", {"text_pair": "b"}) == ["text", "label", "b"]
    assert required_columns("token-classification", {"tags": "ner_tags"}) == ["tokens", "ner_tags"]
    assert required_columns("sentence-embeddings", {}) == ["anchor", "positive"]
    assert required_columns("sentence-embeddings", {"negative": "neg"}) == ["anchor", "positive", "neg"]
    assert required_columns("sentence-embeddings", {}, loss="CoSENTLoss") == ["sentence1", "sentence2", "label"]
    assert required_columns("sft", {}) == ["prompt", "completion"]
    assert required_columns("sft", {"messages": "chat"}) == ["chat"]
    assert required_columns("dpo", {}) == ["prompt", "chosen", "rejected"]


def test_columns_are_checked_against_the_datasets_features() -> None:
    """Features as the viewer and ``datasets`` report them: a missing column names the ones there are; a float
    label is no class; tags must be a sequence; scores must be numbers; messages a list of {role, content}."""
    classes = {"names": ["neg", "pos"], "_type": "ClassLabel"}
    check_columns("text-classification", {}, {"text": STRING, "label": classes})
    check_columns("text-classification", {}, {"text": STRING, "label": INT})
    check_columns("text-classification", {"label": "stars"}, {"text": STRING, "stars": STRING})
    with pytest.raises(TrainSpecError, match=r"'review' is not in the dataset \(its columns: label, text\)"):
        check_columns("text-classification", {"text": "review"}, {"text": STRING, "label": INT})
    with pytest.raises(TrainSpecError, match="must be a class label, an integer or a string"):
        check_columns("text-classification", {}, {"text": STRING, "label": FLOAT})
    with pytest.raises(TrainSpecError, match="must hold text"):
        check_columns("text-classification", {}, {"text": INT, "label": INT})
    listed = {"feature": classes, "_type": "List"}
    check_columns("token-classification", {}, {"tokens": {"feature": STRING, "_type": "Sequence"}, "tags": listed})
    check_columns("token-classification", {}, {"tokens": [STRING], "tags": [INT]})  # the old list form
    with pytest.raises(TrainSpecError, match="tags column 'tags' must be a sequence of tags"):
        check_columns("token-classification", {}, {"tokens": [STRING], "tags": INT})
    check_columns("sentence-embeddings", {}, {"sentence1": STRING, "sentence2": STRING, "label": FLOAT},
                  loss="CoSENTLoss")
    with pytest.raises(TrainSpecError, match="similarity score"):
        check_columns("sentence-embeddings", {}, {"sentence1": STRING, "sentence2": STRING, "label": STRING},
                      loss="CosineSimilarityLoss")
    with pytest.raises(TrainSpecError, match="class label or an integer for SoftmaxLoss"):
        check_columns("sentence-embeddings", {}, {"sentence1": STRING, "sentence2": STRING, "label": FLOAT},
                      loss="SoftmaxLoss")
    chat = {"feature": {"role": STRING, "content": STRING}, "_type": "List"}
    check_columns("sft", {"messages": "messages"}, {"messages": chat})
    with pytest.raises(TrainSpecError, match="list of chat messages"):
        check_columns("sft", {"messages": "messages"}, {"messages": STRING})


def test_metric_lines_round_trip_and_skip_what_is_not_theirs() -> None:
    """format → parse keeps step, epoch and finite numbers (NaN and bookkeeping dropped); lines with a prefix before
    the marker are read, damaged ones skipped."""
    line = format_metric({"step": 5, "epoch": 0.5, "loss": 1.25, "grad_norm": 3.0, "eval_f1": float("nan"),
                          "note": "x"})
    assert line == 'HUBSTEAD-METRIC {"step":5,"epoch":0.5,"loss":1.25}'
    lines = ["Resuming from checkpoint-5", "2026-01-01T00:00:00Z " + line, "HUBSTEAD-METRIC {broken",
             'HUBSTEAD-METRIC {"epoch": 1}', 'HUBSTEAD-METRIC {"step": 6, "eval_loss": 0.5, "eval_accuracy": 0.75}']
    assert parse_metric_lines(lines) == [{"step": 5, "epoch": 0.5, "loss": 1.25},
                                         {"step": 6, "eval_loss": 0.5, "eval_accuracy": 0.75, "epoch": 0.0}]
    with pytest.raises(ValueError):
        format_metric({"loss": 1.0})


def test_scores_computed_without_seqeval_or_scipy() -> None:
    """Accuracy, macro F1, BIO entity spans and F1 (exact spans), Spearman with ties."""
    assert scores.accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    assert scores.macro_f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 0.8) / 2)
    assert scores.bio_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == {
        (0, 2, "PER"), (3, 4, "LOC"), (4, 5, "LOC"), (5, 6, "ORG")}
    result = scores.entity_f1([["B-PER", "O", "B-LOC"], ["O", "O"]], [["B-PER", "O", "O"], ["B-LOC", "O"]])
    assert result["precision"] == 0.5 and result["recall"] == 0.5 and result["f1"] == 0.5
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert scores.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert scores.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert scores.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert scores.spearman([1, 1], [1, 2]) == 0.0


def _points() -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{"step": s, "epoch": s / 20, "loss": 2.0 / s} for s in range(5, 45, 5)]
    points += [{"step": 20, "epoch": 1.0, "eval_loss": 0.4, "eval_accuracy": 0.7},
               {"step": 40, "epoch": 2.0, "eval_loss": 0.3, "eval_accuracy": 0.9}]
    return points


def test_the_curve_is_an_svg_line_chart_with_its_series() -> None:
    """The chart parses as XML, has axes with ticks, one polyline per series (train loss, eval loss, the eval
    metric on its right axis), a legend naming them; no script; the title is escaped; same input, same bytes."""
    svg = loss_chart_svg(_points(), 640, 320, title='run <script>alert("x")</script>')
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("width") == "640"
    series = {g.get("data-series"): g for g in root.iter(f"{ns}g") if g.get("class") == "series"}
    assert set(series) == {"loss", "eval_loss", "metric"}
    assert len(series["loss"].find(f"{ns}polyline").get("points").split()) == 8  # type: ignore[union-attr]
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert {"train loss", "eval loss", "eval_accuracy (right axis)", "step"} <= set(texts)
    assert "40" in texts and "0.5" in texts  # step ticks and the metric's 0..1 axis
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert svg == loss_chart_svg(_points(), 640, 320, title='run <script>alert("x")</script>')
    empty = ET.fromstring(loss_chart_svg([]))
    assert "No metrics yet" in [t.text for t in empty.iter(f"{ns}text")]
    assert nice_ticks(0, 37) == [0, 10, 20, 30, 40]


def test_the_card_passes_the_hubs_validator_and_says_what_it_is() -> None:
    """Full fine-tune, LoRA adapter and merged adapter cards: valid for the hub's validate_card, with base_model,
    the relation (adapter only for an unmerged LoRA), datasets, pipeline tag, library, the hubstead-train tag, a
    model-index of the final eval, the hyperparameters table, the curve image and how to load it."""
    full = parse_spec(_spec(eval_split="test"))
    card = model_card(full, "me/out", {"eval_accuracy": 0.875, "eval_f1": 0.8, "eval_loss": 0.3,
                                       "eval_runtime": 1.0}, labels=["neg", "pos"])
    assert validate_card(card).errors == [] and validate_card(card).warnings == []
    header = yaml.safe_load(card.split("---")[1])
    assert header["base_model"] == "org/base" and header["base_model_relation"] == "finetune"
    assert header["datasets"] == ["org/data"] and header["pipeline_tag"] == "text-classification"
    assert header["library_name"] == "transformers" and "hubstead-train" in header["tags"]
    result = header["model-index"][0]["results"][0]
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"] == {"name": "org/data", "type": "org/data", "split": "test"}
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"accuracy": 0.875, "f1": 0.8, "loss": 0.3}
    assert "![training curve](training_curve.svg)" in card and "| learning_rate |" in card
    assert "AutoModelForSequenceClassification" in card and "`pos`" in card
    lora = parse_spec(_spec(task="sft", method="lora", output={"repo_id": "me/x", "merge_adapter": True}))
    adapter = model_card(lora, "me/x", {"eval_loss": 1.5, "eval_perplexity": 4.48})
    merged = model_card(lora, "me/x-merged", {"eval_loss": 1.5}, merged=True)
    for text, relation, library in ((adapter, "adapter", "peft"), (merged, "finetune", "transformers")):
        assert validate_card(text).errors == []
        head = yaml.safe_load(text.split("---")[1])
        assert head["base_model_relation"] == relation and head["library_name"] == library
        assert head["pipeline_tag"] == "text-generation"
    assert "AutoPeftModelForCausalLM" in adapter and "| lora_r |" in adapter
    embeddings = model_card(parse_spec(_spec(task="sentence-embeddings")), "me/st", {})
    assert validate_card(embeddings).errors == [] and "model-index" not in embeddings
    assert "library_name: sentence-transformers" in embeddings and "SentenceTransformer(" in embeddings


def test_the_pure_modules_import_no_torch() -> None:
    """What the app may import (spec, metrics, chart, card, scores) pulls in neither torch nor transformers."""
    code = ("import sys; import hubstead.train.spec, hubstead.train.metrics, hubstead.train.chart, "
            "hubstead.train.card, hubstead.train.scores; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'peft', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_labels_come_from_the_train_split_and_must_match_the_eval_split(tmp_path: Any) -> None:
    """Label names: a ClassLabel's names, else the sorted distinct values; an eval split with a label the train split
    lacks, or ClassLabels with other names, is refused in words (before any model is loaded)."""
    import datasets

    from hubstead.train.program import RunContext, TrainFailure
    from hubstead.train.tasks_classification import label_names

    def context(train: Any, evaluation: Any) -> RunContext:
        return RunContext(spec=parse_spec(_spec()), home=tmp_path, checkpoints=tmp_path / "c", work=tmp_path / "o",
                          train=train, eval=evaluation, eval_split_name="test")

    strings = datasets.Dataset.from_dict({"label": ["pos", "neg", "pos"]})
    assert label_names(context(strings, strings.select([0])), "label", sequence=False) == (
        ["neg", "pos"], {"neg": 0, "pos": 1})
    with pytest.raises(TrainFailure, match=r"the eval split has label\(s\) \['meh'\]"):
        label_names(context(strings, datasets.Dataset.from_dict({"label": ["meh"]})), "label", sequence=False)
    one = datasets.Dataset.from_dict({"label": [1, 1]})
    with pytest.raises(TrainFailure, match="needs 2 or more"):
        label_names(context(one, one), "label", sequence=False)

    def classes(names: list[str]) -> Any:
        features = datasets.Features({"label": datasets.ClassLabel(names=names)})
        return datasets.Dataset.from_dict({"label": [0, 1]}, features=features)

    assert label_names(context(classes(["a", "b"]), classes(["a", "b"])), "label", sequence=False)[0] == ["a", "b"]
    with pytest.raises(TrainFailure, match="the labels do not match"):
        label_names(context(classes(["a", "b"]), classes(["b", "a"])), "label", sequence=False)
    tags = datasets.Dataset.from_dict({"tags": [["O", "B-PER"], ["O"]]})
    assert label_names(context(tags, tags), "tags", sequence=True)[0] == ["B-PER", "O"]
