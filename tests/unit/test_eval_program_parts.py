"""evals.program's parts that need no hub: progress lines throttled, the download's ignore patterns, a spec that
cannot run refused in words (HUBSTEAD-ERROR, exit 1), the custom runner's checks of a script's answer."""

from __future__ import annotations

import json
import math

import pytest

from hubstead.evals import program
from hubstead.evals.runners_custom import score
from hubstead.evals.spec import PROGRESS_MARK, SPEC_ENV, EvalFailed, read_marks


def test_progress_lines_are_throttled_but_the_last_one_always_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """Within PROGRESS_EVERY_S only the first report prints; done == total always prints."""
    now = [100.0]
    progress = program.Progress("t", clock=lambda: now[0])
    for done in range(0, 10):
        progress(done, 10)
        now[0] += 0.125  # exact in binary: 4 steps are PROGRESS_EVERY_S
    progress(10, 10)
    marks = read_marks(capsys.readouterr().out.splitlines(), PROGRESS_MARK)
    assert [m["done"] for m in marks] == [0, 4, 8, 10]
    assert marks[-1] == {"task_id": "t", "done": 10, "total": 10}


def test_download_leaves_out_weights_no_runner_loads() -> None:
    """ONNX/TF/Flax/GGUF weights are never fetched; pickled weights only where there are no safetensors."""
    with_safetensors = program.ignored_files(["config.json", "model.safetensors", "pytorch_model.bin"])
    assert "*.bin" in with_safetensors and "*.onnx" in with_safetensors and "*.gguf" in with_safetensors
    assert "*.bin" not in program.ignored_files(["config.json", "pytorch_model.bin"])


def test_a_spec_that_cannot_run_is_an_error_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """No spec, a spec that is not JSON, an unknown framework: exit 1 with HUBSTEAD-ERROR saying which."""
    monkeypatch.delenv(SPEC_ENV, raising=False)
    assert program.main() == 1
    assert f"HUBSTEAD-ERROR no evaluation spec: the job's environment has no {SPEC_ENV}" in capsys.readouterr().out
    monkeypatch.setenv(SPEC_ENV, "{not json")
    assert program.main() == 1
    assert "HUBSTEAD-ERROR the evaluation spec is not valid" in capsys.readouterr().out
    spec = {"model": "a/b", "model_revision": "0" * 40, "benchmark": "c/d", "benchmark_revision": "1" * 40,
            "framework": "nope", "tasks": [{"id": "x"}]}
    monkeypatch.setenv(SPEC_ENV, json.dumps(spec))
    assert program.main() == 1
    assert "HUBSTEAD-ERROR unknown evaluation framework 'nope'" in capsys.readouterr().out


def test_a_metric_scripts_answer_is_checked() -> None:
    """A dict of finite numbers holding the task's metric is the score; a non-dict, a non-number, a NaN, or an
    answer without the metric is an EvalFailed saying so; numpy scalars count as numbers."""
    import numpy as np

    task = {"id": "t", "script": "m.py", "metric": "em"}
    assert score(lambda p, r: {"em": np.float32(0.5), "n": 3}, [], [], task) == {"em": 0.5, "n": 3.0}
    cases = [(lambda p, r: [0.5], "returned a list, not a dict"),
             (lambda p, r: {"em": "high"}, "'em': str, not a number"),
             (lambda p, r: {"em": math.nan}, "'em': nan, not a finite number"),
             (lambda p, r: {"other": 1.0}, "returned no 'em' (it returned: other)"),
             (lambda p, r: 1 / 0, "m.py raised: ZeroDivisionError: division by zero")]
    for compute, expected in cases:
        with pytest.raises(EvalFailed, match=expected.replace("(", r"\(").replace(")", r"\)")):
            score(compute, [], [], task)
