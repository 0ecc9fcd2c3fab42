"""Inference usage limits: what a run may still keep, and how usage is counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.protocols.limits import (
    InferenceLimits,
    LimitsExceededInfo,
    check_usage_limits,
    truncate_to_allowed,
)

MODEL = "alice/model-a"


def test_the_documented_example_gives_overrun_4_and_allowed_10() -> None:
    """Usage 10, limit 20, a run of 14: 4 over, 10 still allowed, usage counted to 24."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=10)}

    info = check_usage_limits(limits, MODEL, 14)

    assert info == LimitsExceededInfo(overrun=4, allowed=10)
    assert limits[MODEL].total_usage == 24


def test_a_run_within_the_limit_returns_none_and_counts_its_usage() -> None:
    """A run that stays under the limit gives None, and its usage is still added."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=3)}

    assert check_usage_limits(limits, MODEL, 5) is None
    assert limits[MODEL].total_usage == 8


def test_a_model_without_a_limit_returns_none_and_is_not_added() -> None:
    """Usage of a model with no limit entry is not limited (and no entry appears)."""
    limits = {"other": InferenceLimits(limit=1)}

    assert check_usage_limits(limits, MODEL, 1_000_000) is None
    assert MODEL not in limits
    assert limits["other"].total_usage == 0


def test_reaching_the_limit_exactly_is_within_it() -> None:
    """A run that brings usage exactly to the limit is allowed in full."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=15)}

    assert check_usage_limits(limits, MODEL, 5) is None
    assert limits[MODEL].total_usage == 20


def test_one_past_the_limit_allows_all_but_one() -> None:
    """A run that goes one prediction over keeps all but that one."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=15)}

    assert check_usage_limits(limits, MODEL, 6) == LimitsExceededInfo(overrun=1, allowed=5)


def test_a_run_when_already_over_the_limit_allows_nothing() -> None:
    """Once usage is past the limit, a further run keeps none of its predictions."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=25)}

    info = check_usage_limits(limits, MODEL, 7)

    assert info == LimitsExceededInfo(overrun=7, allowed=0)
    assert limits[MODEL].total_usage == 32


def test_a_run_when_usage_sits_at_the_limit_allows_nothing() -> None:
    """With usage equal to the limit, every prediction of the next run is over."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=20)}

    assert check_usage_limits(limits, MODEL, 3) == LimitsExceededInfo(overrun=3, allowed=0)


def test_negative_usage_is_refused_and_counts_nothing() -> None:
    """A negative ``used`` raises ValueError and leaves the count alone."""
    limits = {MODEL: InferenceLimits(limit=20, total_usage=10)}

    with pytest.raises(ValueError, match="negative"):
        check_usage_limits(limits, MODEL, -1)
    assert limits[MODEL].total_usage == 10


@pytest.mark.parametrize(("limit", "usage"), [(-1, 0), (5, -1)])
def test_a_negative_limit_or_usage_is_refused(limit: int, usage: int) -> None:
    """An InferenceLimits with a negative limit or usage cannot be built."""
    with pytest.raises(ValueError, match="never negative"):
        InferenceLimits(limit=limit, total_usage=usage)


def test_truncate_keeps_everything_when_within_the_limit() -> None:
    """With no overrun, every prediction is kept."""
    predictions = [0.1, 0.2, 0.3]

    assert list(truncate_to_allowed(predictions, None)) == predictions


def test_truncate_keeps_the_first_allowed_predictions() -> None:
    """With an overrun, only the first ``allowed`` predictions are kept, in order."""
    predictions = ["a", "b", "c", "d", "e"]

    kept = truncate_to_allowed(predictions, LimitsExceededInfo(overrun=3, allowed=2))

    assert list(kept) == ["a", "b"]


def test_truncate_with_nothing_allowed_keeps_nothing() -> None:
    """``allowed == 0`` drops every prediction."""
    assert list(truncate_to_allowed([1, 2, 3], LimitsExceededInfo(overrun=3, allowed=0))) == []


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    limit=st.integers(0, 200),
    runs=st.lists(st.integers(0, 60), max_size=20),
)
def test_the_allowed_predictions_never_exceed_the_limit(limit: int, runs: list[int]) -> None:
    """Over any runs, the predictions kept sum to min(limit, total used), never more."""
    limits = {MODEL: InferenceLimits(limit=limit)}
    kept = 0
    for used in runs:
        info = check_usage_limits(limits, MODEL, used)
        allowed = used if info is None else info.allowed
        if info is not None:
            assert info.overrun == used - info.allowed
            assert 0 <= info.allowed <= used
        assert len(truncate_to_allowed(range(used), info)) == allowed
        kept += allowed
        assert kept <= limit

    assert kept == min(limit, sum(runs))
    assert limits[MODEL].total_usage == sum(runs)
