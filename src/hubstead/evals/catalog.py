"""Well-known benchmarks ``hubstead import-benchmark`` can bring into an air-gapped hub: for each, the Hugging Face
dataset id its framework reads (kept as the repo id here by default, so ``lm-eval`` and ``mteb``, which name those
ids, read the data from this hub through ``HF_ENDPOINT``), the snapshot files to take, and the ``eval.yaml`` the
import adds (``benchmark.parse_benchmark`` checks every one in ``tests/unit/test_eval_catalog.py``).

The ids, configs, splits, metrics and few-shot counts are lm-eval 0.4's own (its task YAMLs under
``lm_eval/tasks/leaderboard/``, ``arc/``, ``hellaswag/``, ``mmlu/``, ``truthfulqa/``, ``winogrande/``, ``gsm8k/``)
and mteb 2's task metadata (``mteb.get_task(name).metadata``); the unit test checks them against the installed
packages. Baselines are the Open LLM Leaderboard v2's random-chance lower bounds (its "normalization" page):
1/number of choices for each multiple-choice task (per BBH subtask, per MuSR split), 0 for generative tasks
(MATH, IFEval); a benchmark's score is the mean of its tasks' normalised scores, the leaderboard's per-benchmark
figure. IFEval's is the mean of prompt-level and instruction-level strict accuracy, so it lists both as tasks.

Pure data and small helpers: no database, no git, no framework imports.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import yaml

OPEN_LLM_V2 = "Open LLM Leaderboard v2"
OPEN_LLM_V1 = "Open LLM Leaderboard v1"
MTEB = "MTEB"


@dataclass(frozen=True)
class CatalogEntry:
    """One importable benchmark."""

    name: str  # what the command takes, e.g. "arc-challenge"
    dataset_id: str  # the Hub dataset id the framework reads, the default repo id here
    suite: str  # which leaderboard it belongs to
    eval_yaml: dict[str, Any]
    files: tuple[str, ...] = ("*",)  # fnmatch patterns of snapshot paths to take
    revision: str | None = None  # the Hub revision the framework pins (mteb), for the record

    @property
    def framework(self) -> str:
        return str(self.eval_yaml["evaluation_framework"])

    @property
    def task_ids(self) -> list[str]:
        return [str(task["id"]) for task in self.eval_yaml["tasks"]]

    def takes(self, path: str) -> bool:
        """Whether the snapshot file at ``path`` (repo-relative, '/'-separated) is part of the import."""
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.files)

    def eval_yaml_text(self) -> str:
        return yaml.safe_dump(self.eval_yaml, sort_keys=False, allow_unicode=True, width=120)


def _lm_eval(
    name: str, description: str, tasks: list[dict[str, Any]], *, aggregate: str = "normalized-mean"
) -> dict[str, Any]:
    return {"name": name, "description": description, "evaluation_framework": "lm-eval", "aggregate": aggregate,
            "tasks": tasks}


# BBH (lm-eval's leaderboard_bbh_*, 3-shot, acc_norm): subtask → number of choices (its doc_to_choice).
_BBH_CHOICES = {
    "boolean_expressions": 2, "causal_judgement": 2, "date_understanding": 6, "disambiguation_qa": 3,
    "formal_fallacies": 2, "geometric_shapes": 11, "hyperbaton": 2, "logical_deduction_five_objects": 5,
    "logical_deduction_seven_objects": 7, "logical_deduction_three_objects": 3, "movie_recommendation": 6,
    "navigate": 2, "object_counting": 19, "penguins_in_a_table": 5, "reasoning_about_colored_objects": 18,
    "ruin_names": 6, "salient_translation_error_detection": 6, "snarks": 2, "sports_understanding": 2,
    "temporal_sequences": 4, "tracking_shuffled_objects_five_objects": 5, "tracking_shuffled_objects_seven_objects": 7,
    "tracking_shuffled_objects_three_objects": 3, "web_of_lies": 2,
}
# MATH level 5 (lm-eval's leaderboard_math_*_hard, 4-shot, exact_match): dataset config → lm-eval task.
_MATH = {
    "algebra": "leaderboard_math_algebra_hard", "counting_and_probability": "leaderboard_math_counting_and_prob_hard",
    "geometry": "leaderboard_math_geometry_hard", "intermediate_algebra": "leaderboard_math_intermediate_algebra_hard",
    "number_theory": "leaderboard_math_num_theory_hard", "prealgebra": "leaderboard_math_prealgebra_hard",
    "precalculus": "leaderboard_math_precalculus_hard",
}
# MuSR (lm-eval's leaderboard_musr_*, acc_norm): split → number of choices.
_MUSR_CHOICES = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}


def _baseline(choices: int) -> float:
    return round(1 / choices, 6)


_ENTRIES = [
    # --- Open LLM Leaderboard v2 (lm-eval's "leaderboard" group) ---
    CatalogEntry("ifeval", "wis-k/instruction-following-eval", OPEN_LLM_V2, _lm_eval(
        "IFEval", "Instruction following: verifiable instructions (Open LLM Leaderboard v2; the score is the mean of "
        "prompt-level and instruction-level strict accuracy).",
        [{"id": "prompt_level_strict", "split": "train", "metric": "prompt_level_strict_acc", "baseline": 0.0,
          "lm_eval_task": "leaderboard_ifeval", "num_fewshot": 0},
         {"id": "inst_level_strict", "split": "train", "metric": "inst_level_strict_acc", "baseline": 0.0,
          "lm_eval_task": "leaderboard_ifeval", "num_fewshot": 0}])),
    CatalogEntry("bbh", "SaylorTwift/bbh", OPEN_LLM_V2, _lm_eval(
        "BBH", "BIG-Bench Hard: 24 challenging BIG-Bench tasks, 3-shot multiple choice (Open LLM Leaderboard v2).",
        [{"id": sub, "config": sub, "split": "test", "metric": "acc_norm", "baseline": _baseline(n),
          "lm_eval_task": f"leaderboard_bbh_{sub}", "num_fewshot": 3} for sub, n in _BBH_CHOICES.items()])),
    CatalogEntry("math-hard", "DigitalLearningGmbH/MATH-lighteval", OPEN_LLM_V2, _lm_eval(
        "MATH level 5", "Competition mathematics, the hardest level only, 4-shot generation (Open LLM Leaderboard v2).",
        [{"id": config, "config": config, "split": "test", "metric": "exact_match", "baseline": 0.0,
          "lm_eval_task": task, "num_fewshot": 4} for config, task in _MATH.items()])),
    CatalogEntry("gpqa", "Idavidrein/gpqa", OPEN_LLM_V2, _lm_eval(
        "GPQA", "Graduate-level Google-proof questions in biology, physics and chemistry, 0-shot (Open LLM "
        "Leaderboard v2). The dataset is gated on the Hugging Face Hub: accept its terms before downloading.",
        [{"id": config, "config": config, "split": "train", "metric": "acc_norm", "baseline": 0.25,
          "lm_eval_task": f"leaderboard_{config}", "num_fewshot": 0}
         for config in ("gpqa_diamond", "gpqa_extended", "gpqa_main")])),
    CatalogEntry("musr", "TAUR-Lab/MuSR", OPEN_LLM_V2, _lm_eval(
        "MuSR", "Multistep soft reasoning over long narratives (Open LLM Leaderboard v2).",
        [{"id": split, "split": split, "metric": "acc_norm", "baseline": _baseline(n),
          "lm_eval_task": f"leaderboard_musr_{split}", "num_fewshot": 0} for split, n in _MUSR_CHOICES.items()])),
    CatalogEntry("mmlu-pro", "TIGER-Lab/MMLU-Pro", OPEN_LLM_V2, _lm_eval(
        "MMLU-Pro", "Harder, ten-choice MMLU, 5-shot (Open LLM Leaderboard v2).",
        [{"id": "mmlu_pro", "split": "test", "metric": "acc", "baseline": 0.1, "lm_eval_task": "leaderboard_mmlu_pro",
          "num_fewshot": 5}])),
    # --- Open LLM Leaderboard v1 (a plain mean of the six, as it ranked) ---
    CatalogEntry("arc-challenge", "allenai/ai2_arc", OPEN_LLM_V1, _lm_eval(
        "ARC-Challenge", "Grade-school science questions, the challenge set, 25-shot (Open LLM Leaderboard v1).",
        [{"id": "arc_challenge", "config": "ARC-Challenge", "split": "test", "metric": "acc_norm", "baseline": 0.25,
          "lm_eval_task": "arc_challenge", "num_fewshot": 25}], aggregate="mean")),
    CatalogEntry("hellaswag", "Rowan/hellaswag", OPEN_LLM_V1, _lm_eval(
        "HellaSwag", "Commonsense sentence completion, 10-shot (Open LLM Leaderboard v1).",
        [{"id": "hellaswag", "split": "validation", "metric": "acc_norm", "baseline": 0.25,
          "lm_eval_task": "hellaswag", "num_fewshot": 10}], aggregate="mean")),
    CatalogEntry("mmlu", "cais/mmlu", OPEN_LLM_V1, _lm_eval(
        "MMLU", "Massive multitask language understanding, 57 subjects, 5-shot (Open LLM Leaderboard v1).",
        [{"id": "mmlu", "config": "all", "split": "test", "metric": "acc", "baseline": 0.25, "lm_eval_task": "mmlu",
          "num_fewshot": 5}], aggregate="mean")),
    CatalogEntry("truthfulqa-mc2", "truthfulqa/truthful_qa", OPEN_LLM_V1, _lm_eval(
        "TruthfulQA (mc2)", "Whether answers avoid common falsehoods, multiple-true multiple choice, 0-shot (Open LLM "
        "Leaderboard v1).",
        [{"id": "truthfulqa_mc2", "config": "multiple_choice", "split": "validation", "metric": "acc",
          "lm_eval_task": "truthfulqa_mc2", "num_fewshot": 0}], aggregate="mean")),
    CatalogEntry("winogrande", "allenai/winogrande", OPEN_LLM_V1, _lm_eval(
        "Winogrande", "Pronoun resolution needing commonsense, 5-shot (Open LLM Leaderboard v1).",
        [{"id": "winogrande", "config": "winogrande_xl", "split": "validation", "metric": "acc", "baseline": 0.5,
          "lm_eval_task": "winogrande", "num_fewshot": 5}], aggregate="mean")),
    CatalogEntry("gsm8k", "openai/gsm8k", OPEN_LLM_V1, _lm_eval(
        "GSM8K", "Grade-school maths word problems, 5-shot generation, exact match (Open LLM Leaderboard v1).",
        [{"id": "gsm8k", "config": "main", "split": "test", "metric": "exact_match", "baseline": 0.0,
          "lm_eval_task": "gsm8k", "num_fewshot": 5}], aggregate="mean")),
]


def _mteb(name: str, dataset_id: str, revision: str, task: str, metric: str, description: str) -> CatalogEntry:
    return CatalogEntry(name, dataset_id, MTEB, {
        "name": task, "description": description, "evaluation_framework": "mteb", "aggregate": "borda",
        "tasks": [{"id": task, "split": "test", "metric": metric, "mteb_task": task}],
    }, revision=revision)


_ENTRIES += [
    _mteb("stsbenchmark", "mteb/stsbenchmark-sts", "b0fddb56ed78048fa8b90373c8a3cfc37b684831", "STSBenchmark",
          "cosine_spearman", "Semantic textual similarity of English sentence pairs (MTEB STS)."),
    _mteb("sickr", "mteb/sickr-sts", "20a6d6f312dd54037fe07a32d58e5e168867909d", "SICK-R", "cosine_spearman",
          "Semantic relatedness of English sentence pairs (MTEB STS)."),
    _mteb("banking77", "mteb/banking77", "0fd18e25b25c072e09e0d92ab615fda904d66300", "Banking77Classification",
          "accuracy", "Intent classification of online banking queries, 77 intents (MTEB Classification)."),
    _mteb("sprint-duplicate-questions", "mteb/sprintduplicatequestions-pairclassification",
          "d66bd1f72af766a5cc4b0ca5e00c162f89e8cc46", "SprintDuplicateQuestions", "max_ap",
          "Duplicate questions from the Sprint community forum (MTEB PairClassification)."),
    _mteb("scifact", "mteb/scifact", "d56462d0e63a25450459c4f213e49ffdb866f7f9", "SciFact", "ndcg_at_10",
          "Retrieving the abstracts that support or refute scientific claims (MTEB Retrieval)."),
]

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in _ENTRIES}


def catalog_entry(name: str) -> CatalogEntry | None:
    """The entry a command-line name means: its catalog name (any case) or its Hub dataset id."""
    key = name.strip().lower()
    return CATALOG.get(key) or next((e for e in _ENTRIES if e.dataset_id.lower() == key), None)


def catalog_lines() -> list[str]:
    """``hubstead import-benchmark --list``: name, dataset id, framework, tasks; one line each, by suite."""
    width = max(len(entry.name) for entry in _ENTRIES)
    id_width = max(len(entry.dataset_id) for entry in _ENTRIES)
    lines: list[str] = []
    for suite in (OPEN_LLM_V2, OPEN_LLM_V1, MTEB):
        lines.append(f"{suite}:")
        for entry in (e for e in _ENTRIES if e.suite == suite):
            tasks = entry.task_ids
            shown = ", ".join(tasks[:4]) + (f", … ({len(tasks)} tasks)" if len(tasks) > 4 else "")
            lines.append(f"  {entry.name:<{width}}  {entry.dataset_id:<{id_width}}  {entry.framework:<7}  {shown}")
    return lines
