"""The modeller's view of table-shaped results: one table per pod, and all of them together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["POD_COLUMN", "TableResult", "stack"]

#: The column that says which pod a row of a combined table came from.
POD_COLUMN = "pod"


def stack(per_pod: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The pods' tables one under the other, with a first column naming the pod."""
    frames = [frame.assign(**{POD_COLUMN: pod}) for pod, frame in per_pod.items()]
    if not frames:
        return pd.DataFrame({POD_COLUMN: []})
    combined = pd.concat(frames, ignore_index=True)
    return combined[[POD_COLUMN, *[c for c in combined.columns if c != POD_COLUMN]]]


@dataclass(frozen=True, slots=True)
class TableResult:
    """A result as tables: ``per_pod[pod]`` and ``combined`` (the federated answer where
    the algorithm can compute one, else the pods' tables stacked with a ``pod`` column);
    ``notes`` holds what pods said about their tables (groups suppressed, files written)."""

    per_pod: Mapping[str, pd.DataFrame]
    combined: pd.DataFrame
    notes: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
