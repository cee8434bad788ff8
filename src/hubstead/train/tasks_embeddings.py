"""Sentence embeddings with sentence-transformers' ``SentenceTransformerTrainer`` (a full fine-tune: the spec refuses
LoRA here).

Losses: MultipleNegativesRankingLoss over (anchor, positive[, negative]) columns, scored at the end by retrieval
accuracy@1 (each anchor's nearest positive among the eval split's is its own); CosineSimilarityLoss and CoSENTLoss
over (sentence1, sentence2, score), scored by Spearman's correlation of cosine similarity with the score;
SoftmaxLoss over (sentence1, sentence2, class). Job process only (imports torch)."""

from __future__ import annotations

from typing import Any

from hubstead.train import scores
from hubstead.train.program import (
    RunContext,
    TrainFailure,
    TrainResult,
    finish,
    fit,
    metric_callback,
    training_options,
)
from hubstead.train.spec import column_roles


def train(ctx: RunContext) -> TrainResult:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
    from sentence_transformers.sentence_transformer import losses

    spec, h = ctx.spec, ctx.spec.hyperparameters
    loss_name = h.loss or "MultipleNegativesRankingLoss"
    required, optional = column_roles(spec.task, loss_name, spec.columns)
    roles = required + [role for role in optional if role in spec.columns]
    train_set, eval_set = _columns(ctx.train, spec, roles), _columns(ctx.eval, spec, roles)
    model = SentenceTransformer(spec.base_model, revision=spec.base_revision, device=_device())
    model.max_seq_length = h.max_length
    labels: list[str] | None = None
    if loss_name == "SoftmaxLoss":
        feature = train_set.features["label"]
        labels = list(feature.names) if hasattr(feature, "names") else sorted(
            {str(v) for v in train_set["label"]}, key=int)
        dimension = model.get_sentence_embedding_dimension()
        if dimension is None:
            raise TrainFailure(f"{spec.base_model} does not say its embedding size; SoftmaxLoss needs it")
        loss = losses.SoftmaxLoss(model, embedding_dimension=dimension, num_labels=len(labels))
    elif loss_name in ("CosineSimilarityLoss", "CoSENTLoss"):
        train_set = train_set.map(lambda row: {"label": float(row["label"])})
        eval_set = eval_set.map(lambda row: {"label": float(row["label"])})
        loss = getattr(losses, loss_name)(model)
    else:
        loss = losses.MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=Arguments(**training_options(ctx)),
                                         train_dataset=train_set, eval_dataset=eval_set, loss=loss,
                                         callbacks=[metric_callback()])
    fit(trainer, ctx)
    final = finish(trainer, ctx, _scores(model, eval_set, loss_name))
    model.save_pretrained(str(ctx.work))
    return TrainResult(model_dir=ctx.work, final_metrics=final, log_history=list(trainer.state.log_history),
                       labels=labels)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _columns(split: Any, spec: Any, roles: list[str]) -> Any:
    """The split with only the role columns, in the order the loss reads them, named by role."""
    names = [spec.column(role) for role in roles]
    split = split.select_columns(names)
    renames = {name: role for name, role in zip(names, roles, strict=True) if name != role}
    return split.rename_columns(renames) if renames else split


def _scores(model: Any, eval_set: Any, loss_name: str) -> dict[str, float]:
    """The headline score on the eval split, computed here (see the module's docstring)."""
    from sentence_transformers.util import cos_sim

    if loss_name == "MultipleNegativesRankingLoss":
        anchors = model.encode(eval_set["anchor"], convert_to_tensor=True)
        positives = model.encode(eval_set["positive"], convert_to_tensor=True)
        nearest = cos_sim(anchors, positives).argmax(dim=1).tolist()
        return {"eval_accuracy": scores.accuracy(nearest, list(range(len(nearest))))}
    if loss_name in ("CosineSimilarityLoss", "CoSENTLoss"):
        first = model.encode(eval_set["sentence1"], convert_to_tensor=True)
        second = model.encode(eval_set["sentence2"], convert_to_tensor=True)
        similarity = cos_sim(first, second).diagonal().tolist()
        return {"eval_spearman": scores.spearman(similarity, [float(v) for v in eval_set["label"]])}
    return {}
