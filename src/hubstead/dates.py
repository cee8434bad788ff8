"""Dates the way the Hub writes them in its answers (bottom layer: every domain that answers with a date uses it)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with milliseconds and a ``Z``, as the Hub writes dates."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
