"""Text classification and token classification with the transformers ``Trainer`` (full, or PEFT LoRA/QLoRA).

Job process only (imports torch and transformers)."""

from __future__ import annotations

from typing import Any

from hubstead.train import scores
from hubstead.train.program import (
    RunContext,
    TrainFailure,
    TrainResult,
    finish,
    fit,
    lora_config,
    metric_callback,
    quantization,
    training_options,
)


def train(ctx: RunContext) -> TrainResult:
    token_level = ctx.spec.task == "token-classification"
    return _train(ctx, token_level)


def label_names(ctx: RunContext, column: str, *, sequence: bool) -> tuple[list[str], dict[Any, int]]:
    """The label names and the map from a dataset value to a label id, from the train split; refused in words when
    the eval split has labels the train split lacks (or ClassLabels with other names)."""
    feature = ctx.train.features[column]
    eval_feature = ctx.eval.features[column]
    inner = getattr(feature, "feature", feature) if sequence else feature
    eval_inner = getattr(eval_feature, "feature", eval_feature) if sequence else eval_feature
    if type(inner).__name__ == "ClassLabel":
        names = list(inner.names)
        if type(eval_inner).__name__ == "ClassLabel" and list(eval_inner.names) != names:
            raise TrainFailure(f"the labels do not match: the train split's {column} has {names}, the eval split's "
                               f"{list(eval_inner.names)}")
        return names, {i: i for i in range(len(names))}

    def values(split: Any) -> set[Any]:
        found: set[Any] = set()
        for value in split[column]:
            found.update(value if sequence else [value])
        return found

    train_values = values(ctx.train)
    missing = values(ctx.eval) - train_values
    if missing:
        raise TrainFailure(f"the labels do not match: the eval split has label(s) {sorted(map(str, missing))[:10]} "
                           f"that the train split of {column} lacks")
    ordered = sorted(train_values, key=lambda v: (str(type(v)), v))
    if len(ordered) < 2 and not sequence:
        raise TrainFailure(f"the {column} column has {len(ordered)} distinct label(s): classification needs 2 or more")
    if len(ordered) > 10_000:
        raise TrainFailure(f"the {column} column has {len(ordered)} distinct labels: at most 10000")
    return [str(v) for v in ordered], {v: i for i, v in enumerate(ordered)}


def _train(ctx: RunContext, token_level: bool) -> TrainResult:
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    spec, h = ctx.spec, ctx.spec.hyperparameters
    label_column = spec.column("tags" if token_level else "label")
    names, to_id = label_names(ctx, label_column, sequence=token_level)
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model, revision=spec.base_revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if token_level and not tokenizer.is_fast:
        raise TrainFailure("token classification needs a fast tokenizer (tokenizer.json) to align words and tags")
    auto = AutoModelForTokenClassification if token_level else AutoModelForSequenceClassification
    model = auto.from_pretrained(
        spec.base_model, revision=spec.base_revision, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
        ignore_mismatched_sizes=True, quantization_config=quantization(ctx),
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if spec.method in ("lora", "qlora"):
        from peft import get_peft_model, prepare_model_for_kbit_training

        if spec.method == "qlora":
            model = prepare_model_for_kbit_training(model)
        model = get_peft_model(model, lora_config(ctx, "TOKEN_CLS" if token_level else "SEQ_CLS"))

    if token_level:
        words, tags = spec.column("tokens"), label_column

        def encode(batch: dict[str, list[Any]]) -> Any:
            enc = tokenizer(batch[words], is_split_into_words=True, truncation=True, max_length=h.max_length)
            labels = []
            for i, row_tags in enumerate(batch[tags]):
                previous, row = None, []
                for word in enc.word_ids(batch_index=i):
                    row.append(-100 if word is None or word == previous else to_id[row_tags[word]])
                    previous = word
                labels.append(row)
            enc["labels"] = labels
            return enc

        collator: Any = DataCollatorForTokenClassification(tokenizer)
    else:
        text, pair = spec.column("text"), spec.columns.get("text_pair")

        def encode(batch: dict[str, list[Any]]) -> Any:
            enc = tokenizer(batch[text], batch[pair] if pair else None, truncation=True, max_length=h.max_length)
            enc["labels"] = [to_id[value] for value in batch[label_column]]
            return enc

        collator = DataCollatorWithPadding(tokenizer)
    train_set = ctx.train.map(encode, batched=True, remove_columns=ctx.train.column_names)
    eval_set = ctx.eval.map(encode, batched=True, remove_columns=ctx.eval.column_names)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits, gold = prediction.predictions, prediction.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        predicted = np.argmax(logits, axis=-1)
        if not token_level:
            return {"accuracy": scores.accuracy(predicted.tolist(), gold.tolist()),
                    "f1": scores.macro_f1(predicted.tolist(), gold.tolist())}
        pred_tags, gold_tags = [], []
        for p_row, g_row in zip(predicted, gold, strict=True):
            keep = g_row != -100
            pred_tags.append([names[int(i)] for i in p_row[keep]])
            gold_tags.append([names[int(i)] for i in g_row[keep]])
        return scores.entity_f1(pred_tags, gold_tags)

    trainer = Trainer(model=model, args=TrainingArguments(**training_options(ctx)), train_dataset=train_set,
                      eval_dataset=eval_set, processing_class=tokenizer, data_collator=collator,
                      compute_metrics=compute_metrics, callbacks=[metric_callback()])
    fit(trainer, ctx)
    final = finish(trainer, ctx)
    trainer.save_model(str(ctx.work))
    tokenizer.save_pretrained(str(ctx.work))
    merged_dir = None
    if spec.output.merge_adapter:
        merged_dir = ctx.home / "output-merged"
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
    return TrainResult(model_dir=ctx.work, final_metrics=final, log_history=list(trainer.state.log_history),
                       labels=names, merged_dir=merged_dir)
