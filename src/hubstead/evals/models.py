"""Tables of the evals domain: the benchmarks (dataset repos with an ``eval.yaml`` at the root of main) and the
index of evaluation results (one row per entry of a model repo's ``.eval_results/*.yaml`` files and of its card's
``model-index``, at the head of main). Both are kept by ``evals.index``, which follows main; leaderboards read
only these rows, never git."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow


class EvalBenchmark(Base):
    """A dataset repo that is a benchmark: its ``eval.yaml`` at the head of main, parsed (``spec``, the
    ``Benchmark.as_json()``) or, when invalid, the reasons (``error``, and ``spec`` null)."""

    __tablename__ = "eval_benchmarks"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)  # the repo id when eval.yaml has no valid name
    framework: Mapped[str | None] = mapped_column(String(32), nullable=True)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha: Mapped[str] = mapped_column(String(64), nullable=False)  # the main commit eval.yaml was read at
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class EvalResult(Base):
    """One evaluation result entry of a model repo at the head of its main.

    ``filename`` is the ``.eval_results/*.yaml`` file it sits in, or ``README.md`` for the card's
    ``model-index`` (always self-reported); ``position`` its index in that file. An entry that is not valid keeps
    a row with ``error`` (the reason) so pages can show it as invalid; such rows have ``value`` null and never
    rank. ``verified`` is true exactly when the entry's ``verifyToken`` is the hub's signature on this very entry
    in this very repo; ``model_sha``/``job_id`` then come from the signature, and ``stale`` says the model's files
    changed since that commit. ``entry`` is the entry as written (what ``evalResults`` answers)."""

    __tablename__ = "eval_results"
    __table_args__ = (
        Index("ix_eval_results_dataset_task", "dataset_id", "task_id"),
        Index("ix_eval_results_model", "model_repo_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False)
    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    dataset_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    stale: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    model_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    date: Mapped[str | None] = mapped_column(String(64), nullable=True)  # ISO-8601 as written
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    pull_request: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entry: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
