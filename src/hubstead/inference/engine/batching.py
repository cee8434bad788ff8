"""Gathering requests into a batch by a token budget (pure logic, no torch).

A worker takes a batch whenever it frees up, never on a timer: everything that queued while the
last batch ran is a candidate. Requests join in arrival order while the padded cost of the batch
(longest sequence times number of sequences, the work a padded forward pass really does) stays under
the budget. The first request always goes, so one over-budget request is served alone, not starved.
Only requests that share a group key (same task and parameters that change the computation) batch.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


def padded_cost(lengths: list[int]) -> int:
    return max(lengths, default=0) * len(lengths)


def take_batch(
    pending: deque[T],
    *,
    budget_tokens: int,
    lengths: Callable[[T], list[int]],
    group: Callable[[T], Hashable],
    max_sequences: int = 256,
) -> list[T]:
    """Remove and return the next batch from ``pending`` (left is oldest)."""
    if not pending:
        return []
    first = pending.popleft()
    batch = [first]
    key = group(first)
    seq_lengths = list(lengths(first))
    skipped: list[T] = []
    while pending:
        candidate = pending[0]
        if group(candidate) != key:
            skipped.append(pending.popleft())
            continue
        candidate_lengths = lengths(candidate)
        combined = seq_lengths + list(candidate_lengths)
        if padded_cost(combined) > budget_tokens or len(combined) > max_sequences:
            break
        batch.append(pending.popleft())
        seq_lengths = combined
    # Requests of other groups keep their place at the front, in their original order.
    pending.extendleft(reversed(skipped))
    return batch


def drain(inbox: queue.Queue[Any], *, block: bool) -> list[Any]:
    """Everything queued now (waiting for the first message when ``block``): what arrived while the
    worker was busy becomes one batch's candidates. ``None`` in the list means stop."""
    messages: list[Any] = []
    if block:
        messages.append(inbox.get())
    while True:
        try:
            messages.append(inbox.get_nowait())
        except queue.Empty:
            return messages
