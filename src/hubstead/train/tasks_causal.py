"""Causal LM fine-tuning with TRL: ``SFTTrainer`` over prompt/completion (loss on the completion) or chat
``messages``, and ``DPOTrainer`` over prompt/chosen/rejected (the reference model is the frozen base; with LoRA,
the base with the adapter off). Full, LoRA, or QLoRA where the hub has a GPU and bitsandbytes. Final scores: eval
loss and perplexity (SFT), eval loss and reward accuracy (DPO). Job process only (imports torch)."""

from __future__ import annotations

from typing import Any

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
from hubstead.train.spec import column_roles


def train(ctx: RunContext) -> TrainResult:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec, h = ctx.spec, ctx.spec.hyperparameters
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model, revision=spec.base_revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if "messages" in spec.columns and not getattr(tokenizer, "chat_template", None):
        raise TrainFailure(f"the tokenizer of {spec.base_model} has no chat template, so chat messages cannot be "
                           "rendered: use prompt and completion columns, or a base model with a chat template")
    model = AutoModelForCausalLM.from_pretrained(spec.base_model, revision=spec.base_revision,
                                                 quantization_config=quantization(ctx))
    if spec.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    peft_config = lora_config(ctx, "CAUSAL_LM") if spec.method in ("lora", "qlora") else None
    roles, _ = column_roles(spec.task, h.loss, spec.columns)
    train_set, eval_set = _columns(ctx.train, spec, roles), _columns(ctx.eval, spec, roles)
    options = {**training_options(ctx), "max_length": h.max_length}
    trainer: Any
    if spec.task == "sft":
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(**options), train_dataset=train_set, eval_dataset=eval_set,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[metric_callback()])
    else:
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**options, beta=h.beta or 0.1), train_dataset=train_set,
                             eval_dataset=eval_set, processing_class=tokenizer, peft_config=peft_config,
                             callbacks=[metric_callback()])
    fit(trainer, ctx)
    final = finish(trainer, ctx)
    trainer.save_model(str(ctx.work))
    tokenizer.save_pretrained(str(ctx.work))
    merged_dir = None
    if spec.output.merge_adapter:
        merged_dir = ctx.home / "output-merged"
        trainer.model.merge_and_unload().save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
    return TrainResult(model_dir=ctx.work, final_metrics=final, log_history=list(trainer.state.log_history),
                       merged_dir=merged_dir)


def _columns(split: Any, spec: Any, roles: list[str]) -> Any:
    names = [spec.column(role) for role in roles]
    split = split.select_columns(names)
    renames = {name: role for name, role in zip(names, roles, strict=True) if name != role}
    return split.rename_columns(renames) if renames else split
