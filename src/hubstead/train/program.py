"""What runs inside a train job: ``python -m hubstead.train.program``.

It reads its spec from ``HUBSTEAD_TRAIN_SPEC`` (JSON), loads the dataset and the base model from this hub
(``HF_ENDPOINT`` + ``HF_TOKEN``: no internet), trains (transformers ``Trainer``, sentence-transformers
``SentenceTransformerTrainer``, TRL ``SFTTrainer`` / ``DPOTrainer``; PEFT LoRA where the spec says), keeps
checkpoints in ``$HOME/checkpoints`` (the last two) and resumes from the last one when the job is rerun, prints a
``HUBSTEAD-METRIC {json}`` line at every logging step and evaluation, evaluates at the end, writes the model card and
``training_curve.svg``, and only then pushes (a new repo, a branch, or a pull request). A failure before the push
prints one line ``HUBSTEAD-ERROR <reason>`` on stderr, exits 1 and pushes nothing. After the push it prints
``HUBSTEAD-OUTPUT {json}`` (repo id, revision, pull request URL, the merged model's repo).

Imports torch and transformers: only the job process imports this module.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubstead.train.card import model_card
from hubstead.train.chart import loss_chart_svg
from hubstead.train.metrics import ERROR_PREFIX, OUTPUT_PREFIX, format_metric, parse_metric_lines
from hubstead.train.spec import TrainSpec, TrainSpecError, check_columns, parse_spec

SPEC_ENV = "HUBSTEAD_TRAIN_SPEC"


class TrainFailure(Exception):
    """A run that cannot go on, with the reason in words (the ``HUBSTEAD-ERROR`` line)."""


@dataclass
class TrainResult:
    """What a task's training leaves: the model folder to push, the final evaluation, the log history (restored
    across a resume), the label names, and, for a LoRA run asked to merge, the merged full model's folder."""

    model_dir: Path
    final_metrics: dict[str, float]
    log_history: list[dict[str, Any]]
    labels: list[str] | None = None
    merged_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    spec: TrainSpec
    home: Path
    checkpoints: Path
    work: Path
    train: Any  # datasets.Dataset
    eval: Any  # datasets.Dataset
    eval_split_name: str


def main() -> int:
    try:
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            raise TrainFailure(f"no train spec: the job's environment has no {SPEC_ENV}")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise TrainFailure(f"the train spec is not JSON: {exc}") from None
        spec = parse_spec(data)
        result = run(spec)
    except TrainSpecError as exc:
        return _fail(exc.message)
    except TrainFailure as exc:
        return _fail(str(exc))
    except BaseException as exc:  # noqa: BLE001 - the last line of the log must say why, whatever it was
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        traceback.print_exc()
        return _fail(_explain(exc))
    print(OUTPUT_PREFIX + json.dumps(result, sort_keys=True), flush=True)
    return 0


def _fail(reason: str) -> int:
    sys.stdout.flush()
    print(ERROR_PREFIX + " ".join(reason.split()), file=sys.stderr, flush=True)
    return 1


def _explain(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return ("out of memory: the model or the batch does not fit this hardware; lower batch_size or max_length, "
                f"use method lora, or choose a bigger flavour ({text})")
    return text


def run(spec: TrainSpec) -> dict[str, Any]:
    """Train, evaluate, write the card and the curve, push; the push's summary."""
    from huggingface_hub import HfApi

    home = Path(os.environ.get("HOME") or ".").resolve()
    endpoint = os.environ.get("HF_ENDPOINT")
    api = HfApi(endpoint=endpoint, token=os.environ.get("HF_TOKEN"))
    check_destination(api, spec)
    train, evaluation, eval_name = load_splits(spec)
    ctx = RunContext(spec=spec, home=home, checkpoints=home / "checkpoints", work=home / "output",
                     train=train, eval=evaluation, eval_split_name=eval_name)
    ctx.checkpoints.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ctx.work, ignore_errors=True)  # what an earlier attempt wrote is rewritten, not pushed again
    shutil.rmtree(home / "output-merged", ignore_errors=True)
    ctx.work.mkdir(parents=True)
    if spec.task in ("text-classification", "token-classification"):
        from hubstead.train import tasks_classification as task
    elif spec.task == "sentence-embeddings":
        from hubstead.train import tasks_embeddings as task  # type: ignore[no-redef]
    else:
        from hubstead.train import tasks_causal as task  # type: ignore[no-redef]
    result = task.train(ctx)
    points = history_points(result.log_history)
    write_card(spec, result, points, ctx.eval_split_name)
    return push(api, spec, result)


def check_destination(api: Any, spec: TrainSpec) -> None:
    """Refuse before training what the push would refuse after: a new repo that exists (and is not empty), a pull
    request on a repo that does not."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        api.model_info(spec.output.repo_id)
        exists = True
    except RepositoryNotFoundError:
        exists = False
    if spec.output.push == "new-repo" and exists and not _empty(api, spec.output.repo_id):
        raise TrainFailure(f"the output repo {spec.output.repo_id} already exists: choose another name, or push "
                           "to a branch or as a pull request")
    if spec.output.push == "pull-request" and not exists:
        raise TrainFailure(f"the output repo {spec.output.repo_id} does not exist: a pull request needs an existing "
                           "repo (use push new-repo)")


def _empty(api: Any, repo_id: str) -> bool:
    """A repo holding nothing but ``.gitattributes``: what an earlier attempt of this job left when it was stopped
    between creating the repo and uploading into it; the rerun pushes into it."""
    return set(api.list_repo_files(repo_id)) <= {".gitattributes"}


def load_splits(spec: TrainSpec) -> tuple[Any, Any, str]:
    """The train and eval datasets from this hub, their columns checked against the task."""
    import datasets

    datasets.disable_progress_bars()
    try:
        train = datasets.load_dataset(spec.dataset, name=spec.dataset_config, split=spec.train_split,
                                      revision=spec.dataset_revision)
    except ValueError as exc:
        raise TrainFailure(f"cannot load split {spec.train_split!r} of {spec.dataset}: {exc}") from None
    check_columns(spec.task, spec.columns, train.features.to_dict(), spec.hyperparameters.loss)
    if spec.eval_split:
        try:
            evaluation = datasets.load_dataset(spec.dataset, name=spec.dataset_config, split=spec.eval_split,
                                               revision=spec.dataset_revision)
        except ValueError as exc:
            raise TrainFailure(f"cannot load eval split {spec.eval_split!r} of {spec.dataset}: {exc}") from None
        check_columns(spec.task, spec.columns, evaluation.features.to_dict(), spec.hyperparameters.loss)
        return train, evaluation, spec.eval_split
    if len(train) < 10:
        raise TrainFailure(f"the train split has {len(train)} rows: give at least 10 (or an eval_split)")
    parts = train.train_test_split(test_size=0.1, seed=spec.hyperparameters.seed)
    return parts["train"], parts["test"], f"{spec.train_split} (10% holdout, seed {spec.hyperparameters.seed})"


def history_points(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Trainer's log history as metric points (the same shape the log's metric lines give)."""
    lines = [format_metric({**entry, "step": entry.get("step", 0)}) for entry in log_history if "step" in entry]
    return parse_metric_lines(lines)


def write_card(spec: TrainSpec, result: TrainResult, points: list[dict[str, Any]], eval_name: str) -> None:
    svg = loss_chart_svg(points, title=f"Training curve: {spec.output.repo_id}")
    (result.model_dir / "training_curve.svg").write_text(svg)
    (result.model_dir / "README.md").write_text(model_card(spec, spec.output.repo_id, result.final_metrics,
                                                           labels=result.labels, eval_split_name=eval_name))
    if result.merged_dir is not None and spec.output.merged_repo_id:
        (result.merged_dir / "training_curve.svg").write_text(svg)
        (result.merged_dir / "README.md").write_text(model_card(spec, spec.output.merged_repo_id,
                                                                result.final_metrics, merged=True,
                                                                labels=result.labels, eval_split_name=eval_name))


def push(api: Any, spec: TrainSpec, result: TrainResult) -> dict[str, Any]:
    out = spec.output
    message = f"Hubstead Train: {spec.task} ({spec.method}) of {spec.base_model} on {spec.dataset}"
    summary: dict[str, Any] = {"repo_id": out.repo_id, "push": out.push}
    ignore = ["checkpoint-*", "runs/*", "training_args.bin"]
    if out.push == "new-repo":
        if api.repo_exists(out.repo_id) and not _empty(api, out.repo_id):
            raise TrainFailure(f"the output repo {out.repo_id} was created by someone else while this run trained")
        api.create_repo(out.repo_id, private=out.private, exist_ok=True)
        info = api.upload_folder(repo_id=out.repo_id, folder_path=str(result.model_dir), commit_message=message,
                                 ignore_patterns=ignore)
        summary.update(revision="main", commit=getattr(info, "oid", None))
    elif out.push == "branch":
        api.create_repo(out.repo_id, private=out.private, exist_ok=True)
        api.create_branch(out.repo_id, branch=str(out.branch), exist_ok=True)
        info = api.upload_folder(repo_id=out.repo_id, folder_path=str(result.model_dir), commit_message=message,
                                 revision=out.branch, ignore_patterns=ignore)
        summary.update(revision=out.branch, commit=getattr(info, "oid", None))
    else:
        info = api.upload_folder(repo_id=out.repo_id, folder_path=str(result.model_dir), commit_message=message,
                                 create_pr=True, ignore_patterns=ignore)
        summary.update(revision=getattr(info, "pr_revision", None), pr_url=getattr(info, "pr_url", None),
                       commit=getattr(info, "oid", None))
    if result.merged_dir is not None and out.merged_repo_id:
        api.create_repo(out.merged_repo_id, private=out.private, exist_ok=True)
        api.upload_folder(repo_id=out.merged_repo_id, folder_path=str(result.merged_dir),
                          commit_message=message + " (adapter merged)", ignore_patterns=ignore)
        summary["merged_repo_id"] = out.merged_repo_id
    summary["metrics"] = {k: v for k, v in result.final_metrics.items() if isinstance(v, int | float)}
    return summary


# ---- shared by the task modules -------------------------------------------------------------------------------


def device_options() -> dict[str, Any]:
    """The GPU when there is one (bf16 where it is supported, else fp16), fp32 on the CPU."""
    import torch

    if torch.cuda.is_available():
        bf16 = bool(torch.cuda.is_bf16_supported())
        return {"use_cpu": False, "bf16": bf16, "fp16": not bf16}
    return {"use_cpu": True, "bf16": False, "fp16": False}


def training_options(ctx: RunContext) -> dict[str, Any]:
    """The TrainingArguments every task shares (its config class adds its own)."""
    h = ctx.spec.hyperparameters
    return {
        "output_dir": str(ctx.checkpoints),
        "learning_rate": h.learning_rate,
        "num_train_epochs": h.epochs,
        "max_steps": h.max_steps if h.max_steps is not None else -1,
        "per_device_train_batch_size": h.batch_size,
        "per_device_eval_batch_size": h.batch_size,
        "warmup_steps": h.warmup_ratio,
        "weight_decay": h.weight_decay,
        "eval_strategy": "steps",
        "eval_steps": h.eval_steps,
        "save_strategy": "steps",
        "save_steps": h.save_steps,
        "save_total_limit": 2,
        "logging_strategy": "steps",
        "logging_steps": h.logging_steps,
        "seed": h.seed,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **device_options(),
    }


def last_checkpoint(ctx: RunContext) -> str | None:
    """The last complete checkpoint a killed run of this job left in ``$HOME/checkpoints``, announced in the log.
    The Trainer writes ``trainer_state.json`` last, so a checkpoint without it (or with it cut short) was being
    written when the run was killed: it is discarded, and the one before it is used."""
    if not ctx.checkpoints.is_dir():
        return None
    found = []
    for path in ctx.checkpoints.iterdir():
        number = path.name.removeprefix("checkpoint-")
        if path.is_dir() and path.name.startswith("checkpoint-") and number.isdigit():
            found.append((int(number), path))
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            print(f"Discarding incomplete {path.name}", flush=True)
            shutil.rmtree(path, ignore_errors=True)
            continue
        print(f"Resuming from {path.name}", flush=True)
        return str(path)
    return None


def metric_callback() -> Any:
    """A TrainerCallback printing a metric line for every log (training steps and evaluations alike)."""
    from transformers import TrainerCallback

    class MetricLines(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs:
                print(format_metric({**logs, "step": state.global_step, "epoch": state.epoch or 0.0}), flush=True)

    return MetricLines()


def lora_config(ctx: RunContext, task_type: str) -> Any:
    from peft import LoraConfig

    h = ctx.spec.hyperparameters
    return LoraConfig(task_type=task_type, r=h.lora_r, lora_alpha=h.lora_alpha, lora_dropout=h.lora_dropout)


def quantization(ctx: RunContext) -> Any:
    """For QLoRA: the 4-bit config the base loads with (parse_spec has refused QLoRA where it cannot run)."""
    if ctx.spec.method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=torch.bfloat16 if device_options()["bf16"] else torch.float16)


_BOOKKEEPING = ("epoch", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")


def fit(trainer: Any, ctx: RunContext) -> None:
    """Train, from the last checkpoint when a killed run left one; without the Trainer's printer of log dicts (the
    metric lines say the same, once). SIGTERM (the runner's stop: a cancel, a hub going down, with a few seconds'
    grace before SIGKILL) ends the step under way, saves a checkpoint and fails the run without pushing, so a rerun
    of the job loses no step."""
    import signal

    from transformers import PrinterCallback, TrainerCallback

    stopping: list[int] = []

    class StopOnSignal(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if stopping:
                control.should_save = True
                control.should_training_stop = True
            return control

    def on_term(signum: int, frame: Any) -> None:
        stopping.append(signum)

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StopOnSignal())
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        trainer.train(resume_from_checkpoint=last_checkpoint(ctx))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopping:
        raise TrainFailure(f"stopped by SIGTERM at step {trainer.state.global_step}: checkpoint-"
                           f"{trainer.state.global_step} is saved and a rerun of this job resumes from it")


def finish(trainer: Any, ctx: RunContext, extra_metrics: dict[str, float] | None = None) -> dict[str, float]:
    """The final evaluation (printed as a metric line), with perplexity where there is an eval loss of a causal LM."""
    final = {k: v for k, v in trainer.evaluate().items() if k not in _BOOKKEEPING}
    added = dict(extra_metrics or {})
    if ctx.spec.task == "sft" and isinstance(final.get("eval_loss"), int | float):
        added["eval_perplexity"] = math.exp(min(float(final["eval_loss"]), 50.0))
    final.update(added)
    if added:  # evaluate() has printed its own line; the scores computed here get theirs
        print(format_metric({**added, "step": trainer.state.global_step, "epoch": trainer.state.epoch or 0.0}),
              flush=True)
    return {k: float(v) for k, v in final.items() if isinstance(v, int | float) and not isinstance(v, bool)}


if __name__ == "__main__":
    # Run the imported module's main, not this ``__main__`` copy's: the task modules import
    # ``hubstead.train.program``, and its TrainFailure must be the one main catches.
    from hubstead.train import program

    sys.exit(program.main())
