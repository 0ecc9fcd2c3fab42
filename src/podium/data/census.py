"""The census-income (UCI Adult) data set shipped with Podium, for demos, tests and benchmarks.

See ``podium/data/assets/CENSUS_ATTRIBUTION.md`` for its source and licence (CC BY 4.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import pandas as pd
import yaml

from podium.core.errors import DataSourceError
from podium.core.files import atomic_write
from podium.data.splitting import split_frame

__all__ = [
    "CENSUS_CATEGORICAL",
    "CENSUS_CSV_PATH",
    "CENSUS_TARGET",
    "CensusPod",
    "load_census",
    "split_census",
    "write_census_pods",
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


@dataclass(frozen=True)
class CensusPod:
    """One pod's share of the census data on disk: its name, CSV, config and row count."""

    name: str
    csv: Path
    config: Path
    rows: int


def write_census_pods(
    out_dir: Path, n_pods: int, *, by: str | None = None, seed: int = 0, prefix: str = "census"
) -> list[CensusPod]:
    """Split the census data into ``n_pods`` shares and write, per pod, a CSV and a pod config.

    The configs have the shape of the census-income pod config in Bitfount's docs
    (``fnlwgt`` ignored, the label and the text columns forced to categorical), with a
    relative ``path`` to the CSV beside them. Every file is written atomically, so a
    failed run leaves no half-written file.

    Raises:
        DataSourceError: ``out_dir`` cannot be created or written.
    """
    shares = split_census(n_pods, by=by, seed=seed)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        pods = []
        for index, share in enumerate(shares, start=1):
            name = f"{prefix}-{index}"
            csv_path = out_dir / f"{name}.csv"
            config_path = out_dir / f"{name}.yaml"
            atomic_write(csv_path, partial(_write_csv, share))
            config = _pod_config(name, csv_path.name, index, n_pods, by)
            atomic_write(config_path, partial(_dump_yaml, config))
            pods.append(CensusPod(name, csv_path, config_path, len(share)))
    except OSError as exc:
        raise DataSourceError(
            f"Cannot write the census pods to {out_dir}: {exc.strerror or exc}. Choose a "
            "folder you can write to."
        ) from exc
    return pods


def _pod_config(
    name: str, csv_name: str, index: int, n_pods: int, by: str | None
) -> dict[str, object]:
    split = f"split by {by}" if by else "an IID split"
    return {
        "name": name,
        "datasource": "CSVSource",
        "pod_details_config": {
            "display_name": f"Census income, share {index} of {n_pods}",
            "description": f"Share {index} of {n_pods} of the census-income data ({split}).",
        },
        "data_config": {
            "ignore_cols": ["fnlwgt"],
            "force_stypes": {name: {"categorical": list(CENSUS_CATEGORICAL)}},
            "datasource_args": {"path": csv_name, "seed": 100},
        },
    }


def _write_csv(frame: pd.DataFrame, handle: IO[str]) -> None:
    frame.to_csv(handle, index=False)


def _dump_yaml(config: dict[str, object], handle: IO[str]) -> None:
    yaml.safe_dump(config, handle, sort_keys=False, width=100)
