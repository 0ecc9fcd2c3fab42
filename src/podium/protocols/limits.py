"""Model inference usage limits: how many predictions a modeller may still get.

The hub's access manager keeps a limit per (pod, user, model); a worker counts what each
inference run uses with :func:`check_usage_limits`. When a run goes over, only the
predictions still allowed are kept (:func:`truncate_to_allowed`) and the task ends with
``TASK_ABORT(LIMITS_EXCEEDED)``; the modeller keeps what it got before.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

__all__ = ["InferenceLimits", "LimitsExceededInfo", "check_usage_limits", "truncate_to_allowed"]

T = TypeVar("T")


class LimitsExceededInfo(NamedTuple):
    """By how many predictions a run went over (``overrun``), and how many of the run's
    were still allowed (``allowed``)."""

    overrun: int
    allowed: int


@dataclass(slots=True)
class InferenceLimits:
    """One model's limit and the usage counted so far."""

    limit: int
    total_usage: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0 or self.total_usage < 0:
            raise ValueError("a limit and a usage count are never negative")


def check_usage_limits(
    limits: MutableMapping[str, InferenceLimits], model_id: str, used: int
) -> LimitsExceededInfo | None:
    """Count ``used`` more predictions of ``model_id``; None while within its limit (or
    when it has none), else how far over the run went.

    The usage is counted whether or not the limit is exceeded. With a usage of 10 and a
    limit of 20, a run of 14 gives ``LimitsExceededInfo(overrun=4, allowed=10)``.
    """
    if used < 0:
        raise ValueError("used must not be negative")
    entry = limits.get(model_id)
    if entry is None:
        return None
    before = entry.total_usage
    entry.total_usage = before + used
    if entry.total_usage <= entry.limit:
        return None
    allowed = max(0, entry.limit - before)
    return LimitsExceededInfo(overrun=used - allowed, allowed=allowed)


def truncate_to_allowed(predictions: Sequence[T], info: LimitsExceededInfo | None) -> Sequence[T]:
    """The predictions a modeller may receive: all of them, or the first ``info.allowed``."""
    return predictions if info is None else predictions[: info.allowed]
