"""Reconnect backoff: grows, stays bounded, jitters, reproducible with a seed."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from podium.transport import Backoff


def test_delays_grow_then_stay_under_the_maximum() -> None:
    """Without jitter the delay doubles from ``initial`` and stops at ``maximum``."""
    backoff = Backoff(initial=0.1, maximum=1.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.delay(10_000) == 1.0


def test_jitter_stays_within_its_band_and_is_seeded() -> None:
    """Jittered delays lie in [(1 - jitter) * ceiling, ceiling] and repeat with a seed."""
    first = Backoff(initial=1.0, maximum=1.0, jitter=0.5, rng=random.Random(3))
    second = Backoff(initial=1.0, maximum=1.0, jitter=0.5, rng=random.Random(3))
    delays = [first.delay(n) for n in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 100
    assert delays == [second.delay(n) for n in range(200)]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Backoff(initial=0.0),
        lambda: Backoff(initial=2.0, maximum=1.0),
        lambda: Backoff(multiplier=0.5),
        lambda: Backoff(jitter=1.5),
    ],
)
def test_nonsense_settings_are_refused(build: Callable[[], Backoff]) -> None:
    """A backoff that would not back off (or go negative) is refused."""
    with pytest.raises(ValueError, match="backoff"):
        build()
