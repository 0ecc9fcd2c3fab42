"""Splitting a table into pod shares."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import ConfigValidationError
from podium.data.census import CENSUS_CSV_PATH, load_census, split_census
from podium.data.splitting import split_frame


def _frame(n: int, groups: int) -> pd.DataFrame:
    return pd.DataFrame({"row": range(n), "group": [f"g{i % groups}" for i in range(n)]})


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), pods=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_iid_split_is_a_partition_with_even_sizes(n: int, pods: int, seed: int) -> None:
    """An IID split puts every row in exactly one share; sizes differ by at most one."""
    if pods > n:
        return
    shares = split_frame(_frame(n, 3), pods, seed=seed)
    rows = sorted(r for share in shares for r in share["row"])
    assert rows == list(range(n))
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_split_is_deterministic_by_seed() -> None:
    """The same seed gives the same shares; another seed gives other shares."""
    frame = _frame(200, 5)
    first = [list(s["row"]) for s in split_frame(frame, 3, seed=7)]
    again = [list(s["row"]) for s in split_frame(frame, 3, seed=7)]
    other = [list(s["row"]) for s in split_frame(frame, 3, seed=8)]
    assert first == again
    assert first != other


@settings(max_examples=30, deadline=None)
@given(groups=st.integers(2, 12), pods=st.integers(1, 6), seed=st.integers(0, 1000))
def test_non_iid_split_keeps_each_value_in_one_share(groups: int, pods: int, seed: int) -> None:
    """Splitting by a column sends every value of it to exactly one share, losing no row."""
    if pods > groups:
        return
    frame = _frame(120, groups)
    shares = split_frame(frame, pods, by="group", seed=seed)
    owners: dict[str, int] = {}
    for index, share in enumerate(shares):
        for value in share["group"].unique():
            assert owners.setdefault(value, index) == index
    assert sum(len(s) for s in shares) == len(frame)
    assert all(len(s) > 0 for s in shares)


def test_non_iid_split_balances_greedily() -> None:
    """Groups go largest first to the smallest share, so shares are as even as groups allow."""
    frame = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10})
    sizes = sorted(len(s) for s in split_frame(frame, 2, by="g"))
    assert sizes == [50, 60]


@pytest.mark.parametrize(
    ("pods", "by", "message"),
    [
        (0, None, "at least 1"),
        (11, None, "non-empty"),
        (2, "nope", "no such column"),
        (3, "two", "only 2 distinct"),
    ],
)
def test_bad_split_requests_are_refused(pods: int, by: str | None, message: str) -> None:
    """Impossible splits raise ConfigValidationError saying why."""
    frame = pd.DataFrame({"two": ["x", "y"] * 5})
    with pytest.raises(ConfigValidationError, match=message):
        split_frame(frame, pods, by=by)


def test_census_ships_in_the_package() -> None:
    """The packaged census data has the documented rows, columns and label counts."""
    frame = load_census()
    assert CENSUS_CSV_PATH.name == "census_income.csv.gz"
    assert frame.shape == (32_561, 14)
    assert frame["TARGET"].value_counts().to_dict() == {"<=50K": 24_720, ">50K": 7_841}
    assert (CENSUS_CSV_PATH.parent / "CENSUS_ATTRIBUTION.md").read_text().count("CC BY 4.0")


def test_census_split_by_column_is_non_iid() -> None:
    """A census split by race gives shares with disjoint race values that cover all rows."""
    shares = split_census(3, by="race", seed=1)
    seen = [set(s["race"]) for s in shares]
    assert sum(len(s) for s in shares) == 32_561
    assert all(a.isdisjoint(b) for i, a in enumerate(seen) for b in seen[i + 1 :])
