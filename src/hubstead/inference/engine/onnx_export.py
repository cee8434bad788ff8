"""Build a model's ONNX graph in a process of its own, so that the serving worker does not keep the export's memory.

``torch.onnx.export``, ORT's optimizer and the accuracy gate leave about 300 MiB behind in the process that ran
them (all-MiniLM-L6-v2: a worker that exported held 933 MiB, one that loaded the same build from the cache 648).
The encoder worker therefore runs this module first when the build cache is empty, then loads the finished build
from the cache like any later worker::

    python -m hubstead.inference.engine.onnx_export --model-dir DIR --group embed --cache-dir DIR [--int8]
        [--min-cosine X] [--threads N]

Exit status 0 when a build was written (accepted or not: the verdict is in its ``build.json``), 1 with the reason
on stderr when none could be made.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build(model_dir: Path, group: str, cache_dir: Path, *, int8: bool, min_cosine: float | None,
          threads: int | None) -> str:
    """Load the model as the encoder worker does, build its ONNX graph into ``cache_dir``; returns the verdict."""
    from hubstead.inference.engine.encoder import ONNX_KIND, load_encoder
    from hubstead.inference.engine.onnx_backend import build_onnx

    tokenizer, model = load_encoder(model_dir, group)
    result = build_onnx(
        model,
        tokenizer,
        kind=ONNX_KIND[group],
        cache_dir=cache_dir,
        quantize=int8,
        min_cosine=min_cosine,
        threads=threads,
    )
    return result.reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubstead.inference.engine.onnx_export")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--group", choices=["embed", "classify"], required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--min-cosine", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        reason = build(args.model_dir, args.group, args.cache_dir, int8=args.int8, min_cosine=args.min_cosine,
                       threads=args.threads)
    except Exception as exc:  # noqa: BLE001 - the worker reads the reason from stderr
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(reason)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
