"""Deterministic splits of a table into several pods' shares (IID or non-IID by a column)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from podium.core.errors import ConfigValidationError

__all__ = ["split_frame"]


def split_frame(
    frame: pd.DataFrame, n_pods: int, *, by: str | None = None, seed: int = 0
) -> list[pd.DataFrame]:
    """Split ``frame`` into ``n_pods`` disjoint shares that together hold every row.

    With ``by=None`` the rows are shuffled with ``seed`` and dealt into shares whose sizes
    differ by at most one. With ``by=COLUMN`` every distinct value of the column goes to
    exactly one share: values are taken largest group first (ties by value, then shuffled by
    ``seed``) and each goes to the share that is smallest so far, which keeps the shares as
    even as the groups allow. Each share keeps the original row order.
    """
    if n_pods < 1:
        raise ConfigValidationError(f"n_pods must be at least 1, got {n_pods}.")
    rng = np.random.default_rng(seed)
    if by is None:
        if n_pods > len(frame):
            raise ConfigValidationError(
                f"Cannot split {len(frame)} rows into {n_pods} non-empty shares."
            )
        order = rng.permutation(len(frame))
        return [
            frame.iloc[np.sort(part)].reset_index(drop=True)
            for part in np.array_split(order, n_pods)
        ]
    if by not in frame.columns:
        raise ConfigValidationError(
            f"Cannot split by {by!r}: no such column. The columns are {list(frame.columns)}."
        )
    keys = frame[by].astype("string").fillna("<missing>")
    sizes = keys.value_counts()
    if len(sizes) < n_pods:
        raise ConfigValidationError(
            f"Cannot split by {by!r} into {n_pods} shares: it has only {len(sizes)} "
            f"distinct values. Use fewer pods or another column."
        )
    values = sorted(sizes.index, key=lambda v: (-int(sizes[v]), str(v)))
    # Shuffle within runs of equal size so the seed matters without breaking balance.
    shuffled: list[str] = []
    for count in sorted({int(sizes[v]) for v in values}, reverse=True):
        group = [v for v in values if int(sizes[v]) == count]
        shuffled.extend(group[i] for i in rng.permutation(len(group)))
    loads = [0] * n_pods
    owner: dict[str, int] = {}
    for value in shuffled:
        target = min(range(n_pods), key=lambda i: (loads[i], i))
        owner[value] = target
        loads[target] += int(sizes[value])
    assignment = keys.map(owner).to_numpy()
    return [frame[assignment == i].reset_index(drop=True) for i in range(n_pods)]
