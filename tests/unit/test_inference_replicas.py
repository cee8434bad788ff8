"""A replica computes with all cores while the others idle, and with its share when they compute too."""

from __future__ import annotations

import multiprocessing
from typing import Any

from hubstead.inference.worker import _replica_threads


class Recorder:
    def __init__(self) -> None:
        self.threads: list[int] = []

    def use_threads(self, threads: int) -> None:
        self.threads.append(threads)


def spec_with(busy: Any) -> dict[str, Any]:
    return {"busy": busy, "threads": 1, "threads_alone": 4}


def test_alone_uses_every_core_and_shares_when_another_replica_computes() -> None:
    busy = multiprocessing.get_context("spawn").Value("i", 0)
    runner = Recorder()
    with _replica_threads(runner, spec_with(busy)):
        assert busy.value == 1
    assert runner.threads == [4] and busy.value == 0

    busy.value = 1  # another replica is in a forward pass
    with _replica_threads(runner, spec_with(busy)):
        assert busy.value == 2
    assert runner.threads == [4, 1] and busy.value == 1


def test_the_count_is_given_back_when_the_batch_fails() -> None:
    busy = multiprocessing.get_context("spawn").Value("i", 0)
    try:
        with _replica_threads(Recorder(), spec_with(busy)):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert busy.value == 0


def test_a_single_worker_never_changes_threads() -> None:
    runner = Recorder()
    with _replica_threads(runner, {"threads": 2}):
        pass
    assert runner.threads == []
