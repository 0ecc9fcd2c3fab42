"""Reconnect delays: exponential backoff with jitter, bounded, seedable for tests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


def _fresh_rng() -> random.Random:
    return random.Random()  # noqa: S311  # jitter spreads reconnects; not a secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to wait before reconnect attempt ``n`` (0-based).

    The ceiling grows as ``initial * multiplier**n`` up to ``maximum``; the delay is drawn
    uniformly from ``[(1 - jitter) * ceiling, ceiling]`` so that many clients cut off
    together do not reconnect in lockstep. Pass a seeded ``rng`` for reproducible tests.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=_fresh_rng, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (never above ``maximum``)."""
        exponent = min(attempt, 64)  # avoids float overflow; the ceiling is reached long before
        ceiling = min(self.maximum, self.initial * self.multiplier**exponent)
        return ceiling * (1.0 - self.jitter * self.rng.random())
