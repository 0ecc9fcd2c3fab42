"""A source over a pandas DataFrame already in memory (notebooks, tests, simulations)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pandas as pd

from podium.data.sources.base import DEFAULT_BATCH_ROWS, DataSource, Modifier

__all__ = ["DataFrameSource"]


class DataFrameSource(DataSource):
    """Serve the rows of an in-memory DataFrame.

    Args:
        data: The frame. It is not copied; do not mutate it while the source is in use.
    """

    kind = "DataFrameSource"

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(
            ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        self.data = data

    def _raw_columns(self) -> list[str]:
        return [str(c) for c in self.data.columns]

    def _raw_record_count(self) -> int:
        return len(self.data)

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.data), batch_rows):
            yield self.data.iloc[start : start + batch_rows].reset_index(drop=True)

    def describe(self) -> str:
        rows, cols = self.data.shape
        return f"DataFrameSource({rows} rows x {cols} columns)"
