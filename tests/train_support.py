"""Builders for Train tests: tiny models from configs with an offline-trained word-level tokenizer, generated
datasets with a learnable pattern, pushed to a live test hub, and a runner for ``python -m hubstead.train.program``.

Everything is tiny (32-wide, 2 layers, a vocabulary of the generated words) so one training run takes seconds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from support import LiveServer

POSITIVE = ["good", "great", "lovely", "excellent", "happy"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "sad"]
NEUTRAL = ["the", "a", "movie", "film", "was", "plot", "actor", "today", "city", "book", "dog", "cat", "it", "and"]
PEOPLE = ["sarah", "john", "maria", "omar"]
PLACES = ["london", "paris", "berlin", "tokyo"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>"]
VOCAB = [*SPECIALS, *POSITIVE, *NEGATIVE, *NEUTRAL, *PEOPLE, *PLACES, "lives", "in", "met", "answer", "question",
         "yes", "no", "say", "ok"]


def word_tokenizer(folder: Path, *, causal: bool = False) -> Any:
    """A WordLevel tokenizer over :data:`VOCAB` (built with ``tokenizers``, no download), saved into ``folder``:
    BERT-like specials ([CLS] text [SEP]) for encoders, ``<s>``/``</s>`` for a causal LM."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if causal:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                           special_tokens=[("<s>", VOCAB.index("<s>"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="[PAD]",
                                       unk_token="[UNK]", model_max_length=256)
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return fast


def tiny_bert(folder: Path) -> Path:
    """A tiny BERT encoder (no head: the run adds the one its task needs) with its tokenizer, in ``folder``."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    word_tokenizer(folder)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    BertModel(config).save_pretrained(str(folder))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny BERT for train tests\n")
    return folder


def tiny_llama(folder: Path) -> Path:
    """A tiny Llama causal LM with its tokenizer, in ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    word_tokenizer(folder, causal=True)
    config = LlamaConfig(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=VOCAB.index("<s>"), eos_token_id=VOCAB.index("</s>"), pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny Llama for train tests\n")
    return folder


def sentiment_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Sentences of neutral words with one sentiment word: label 1 (positive) or 0 (negative)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(NEUTRAL, 4) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def ner_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens = [rng.choice(PEOPLE), "lives", "in", rng.choice(PLACES), *rng.sample(NEUTRAL, 2)]
        rows.append({"tokens": tokens, "tags": [1, 0, 0, 2, 0, 0]})
    return rows


def pair_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        mood = rng.choice([POSITIVE, NEGATIVE])
        rows.append({"anchor": " ".join(rng.sample(NEUTRAL, 3) + [rng.choice(mood)]),
                     "positive": " ".join(rng.sample(NEUTRAL, 3) + [rng.choice(mood)])})
    return rows


def sft_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        good = rng.random() < 0.5
        word = rng.choice(POSITIVE if good else NEGATIVE)
        rows.append({"prompt": f"question the movie was {word}", "completion": " answer yes" if good else " answer no"})
    return rows


def dpo_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        word = rng.choice(POSITIVE)
        rows.append({"prompt": f"question the film was {word}", "chosen": " answer yes", "rejected": " answer no"})
    return rows


def push_model(server: LiveServer, token: str, repo_id: str, folder: Path) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder))


def push_dataset(server: LiveServer, token: str, repo_id: str, splits: dict[str, list[dict[str, Any]]],
                 features: Any = None) -> None:
    """Each split as ``data/<split>.parquet`` (the ``datasets`` layout: splits found by file name), with
    ``features`` (``datasets.Features``: ClassLabels kept in the parquet metadata) when given."""
    import datasets
    from huggingface_hub import HfApi

    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hubstead-train-data-") as tmp:
        for split, rows in splits.items():
            path = Path(tmp) / "data" / f"{split}.parquet"
            path.parent.mkdir(exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=tmp)


def program_env(server: LiveServer, token: str, home: Path, spec: dict[str, Any]) -> dict[str, str]:
    """The environment a compute job gives the train program (as ``compute/executor`` builds it: this hub, a write
    token, its own HOME, nothing else of the caller's; Xet uploads on), and one thread for a shared test machine."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1", "HF_ENDPOINT": server.url, "HF_TOKEN": token, "HF_HUB_DISABLE_TELEMETRY": "1",
            "JOB_ID": "train-test", "HUBSTEAD_TRAIN_SPEC": json.dumps(spec), "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def run_program(server: LiveServer, token: str, home: Path, spec: dict[str, Any],
                timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hubstead.train.program`` as a job would, to the end."""
    return subprocess.run([sys.executable, "-m", "hubstead.train.program"], env=program_env(server, token, home, spec),
                          capture_output=True, text=True, timeout=timeout, cwd=str(home))


def start_program(server: LiveServer, token: str, home: Path, spec: dict[str, Any],
                  log: Path) -> subprocess.Popen[bytes]:
    """Start the program in a session of its own (to be killed as a job's process group is), its output to
    ``log``."""
    env = program_env(server, token, home, spec)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "hubstead.train.program"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=str(home), start_new_session=True)


def program_output(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``HUBSTEAD-OUTPUT`` summary of a finished run (fails with the run's log when there is none)."""
    for line in result.stdout.splitlines():
        if line.startswith("HUBSTEAD-OUTPUT "):
            return dict(json.loads(line.removeprefix("HUBSTEAD-OUTPUT ")))
    raise AssertionError(f"no output line (rc {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")


def hub_env(server: LiveServer, token: str) -> dict[str, str]:
    """``os.environ`` for loading from the hub in a client subprocess."""
    return {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": token}
