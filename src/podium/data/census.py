"""The census-income (UCI Adult) data set shipped with Podium, for demos, tests and benchmarks.

See ``podium/data/assets/CENSUS_ATTRIBUTION.md`` for its source and licence (CC BY 4.0).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from podium.data.splitting import split_frame

__all__ = [
    "CENSUS_CATEGORICAL",
    "CENSUS_CSV_PATH",
    "CENSUS_TARGET",
    "load_census",
    "split_census",
]

#: The gzip CSV inside the installed package. DuckDB and pandas read it as it is.
CENSUS_CSV_PATH: Path = Path(__file__).resolve().parent / "assets" / "census_income.csv.gz"

#: The label column: ``<=50K`` or ``>50K``.
CENSUS_TARGET = "TARGET"

#: The columns the census-income pod config forces to categorical.
CENSUS_CATEGORICAL: tuple[str, ...] = (
    "TARGET",
    "workclass",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "native-country",
    "gender",
    "education",
)


def load_census() -> pd.DataFrame:
    """Return the 32,561 census-income rows as a DataFrame (``?`` kept as written)."""
    return pd.read_csv(CENSUS_CSV_PATH)


def split_census(n_pods: int, *, by: str | None = None, seed: int = 0) -> list[pd.DataFrame]:
    """Split the census data into ``n_pods`` shares, one per pod.

    Args:
        n_pods: How many shares.
        by: ``None`` for an IID split (rows shuffled, dealt evenly); a column name for a
            non-IID split in which each value of that column goes to exactly one pod.
        seed: The same seed always gives the same shares.
    """
    return split_frame(load_census(), n_pods, by=by, seed=seed)
