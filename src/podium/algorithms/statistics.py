"""``Statistics`` and ``ColumnAverage``: summaries computed on each pod, merged exactly.

Each pod summarises its data batch by batch (:mod:`podium.algorithms.summary`), merges the
batches, drops the groups and category values below its ``min_group_size``, and sends the
summary once, after the last batch (a final reduce step). The modeller merges the pods'
summaries, so the federated answer equals the answer on the pods' data put together:
exactly for counts, minimum and maximum, up to float rounding for sum, mean and variance,
and within the sketch's relative accuracy (1% by default) for quantiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import Field

from podium.algorithms._tables import TableResult
from podium.algorithms.summary import StatisticsSpec, Summary, SummaryFormatError
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.core.messages import AbortReason
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    WorkerAlgorithm,
)

__all__ = ["ColumnAverage", "Statistics", "StatisticsResult"]


@dataclass(frozen=True, slots=True)
class StatisticsResult(TableResult):
    """Tables of statistics per pod and combined (:meth:`Summary.table`), and the summaries
    themselves (``summaries[pod]`` and ``combined_summary``) for categories and histograms."""

    summaries: Mapping[str, Summary] = field(default_factory=dict)
    combined_summary: Summary | None = None


def _summary_of(pod: str, items: Sequence[object]) -> tuple[Summary, int]:
    if len(items) != 1 or not isinstance(items[0], dict) or "summary" not in items[0]:
        raise ProtocolError(f"{pod} sent no statistics summary")
    try:
        summary = Summary.from_wire(items[0]["summary"])
    except SummaryFormatError as error:
        raise ProtocolError(f"{pod} sent a malformed statistics summary: {error}") from None
    suppressed = items[0].get("suppressed", 0)
    return summary, suppressed if isinstance(suppressed, int) else 0


class _Worker(WorkerAlgorithm):
    def __init__(self, spec: StatisticsSpec) -> None:
        self._spec = spec
        self._summary = Summary.empty(spec)

    def run(self, batch: Batch) -> None:
        try:
            part = Summary.of_frame(batch.frame(), self._spec)
        except (KeyError, ValueError) as error:
            raise AbortTask(AbortReason.WORKER_ERROR, f"Statistics: {error}") from None
        self._summary = self._summary.merge(part)

    def finish(self) -> object:
        kept, suppressed = self._summary.suppress_small_groups(self.context.min_group_size)
        return {"summary": kept.to_wire(), "suppressed": suppressed}


class _Modeller(ModellerAlgorithm):
    def __init__(self, spec: StatisticsSpec) -> None:
        self._spec = spec

    def combine(self, results: Mapping[str, Sequence[object]]) -> StatisticsResult:
        summaries: dict[str, Summary] = {}
        notes: dict[str, dict[str, object]] = {}
        combined = Summary.empty(self._spec)
        for pod, items in results.items():
            if not items:
                continue
            summary, suppressed = _summary_of(pod, items)
            summaries[pod] = summary
            notes[pod] = {"suppressed": suppressed}
            combined = combined.merge(summary)
        return StatisticsResult(
            per_pod={pod: s.table() for pod, s in summaries.items()},
            combined=combined.table(),
            notes=notes,
            summaries=summaries,
            combined_summary=combined,
        )


class Statistics(AlgorithmFactory):
    """Summary statistics per column (and per group): count, nulls, sum, mean, variance,
    standard deviation, min, max, quantiles; value counts of categorical columns;
    histograms from the merged summary.

    Args:
        columns: The columns to summarise (default: every column but the ``group_by`` ones).
        group_by: Columns to group by (categorical).
        quantiles: Quantiles to estimate, each in [0, 1].
        bins: Bins of the histograms.
        relative_accuracy: Relative accuracy of the quantiles (the sketch's).
    """

    name = "Statistics"
    batchable = True

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        group_by: Sequence[str] = (),
        quantiles: Sequence[float] = (0.25, 0.5, 0.75),
        bins: int = 10,
        relative_accuracy: float = 0.01,
    ) -> None:
        try:
            self.spec = StatisticsSpec(
                columns=tuple(columns) if columns is not None else None,
                group_by=tuple(group_by),
                quantiles=tuple(quantiles),
                bins=bins,
                relative_accuracy=relative_accuracy,
            )
        except ValueError as error:
            raise TaskDefinitionError(str(error)) from None

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> Statistics:
        try:
            spec = StatisticsSpec.from_arguments(arguments)
        except (ValueError, TypeError) as error:
            raise TaskDefinitionError(str(error)) from None
        return cls(
            columns=spec.columns,
            group_by=spec.group_by,
            quantiles=spec.quantiles,
            bins=spec.bins,
            relative_accuracy=spec.relative_accuracy,
        )

    def arguments(self) -> dict[str, Any]:
        wire = self.spec.to_wire()
        return {k: v for k, v in wire.items() if v is not None}

    def worker(self) -> WorkerAlgorithm:
        return _Worker(self.spec)

    def modeller(self) -> ModellerAlgorithm:
        return _Modeller(self.spec)


class _AverageArguments(Arguments):
    field: str = Field(min_length=1)
    table_name: str | None = None


class _AverageModeller(ModellerAlgorithm):
    def __init__(self, column: str) -> None:
        self._column = column

    def combine(self, results: Mapping[str, Sequence[object]]) -> TableResult:
        per_pod: dict[str, pd.DataFrame] = {}
        total = count = 0.0
        for pod, items in results.items():
            if not items:
                continue
            summary, _ = _summary_of(pod, items)
            table = summary.table()
            row = table[table["column"] == self._column]
            if row.empty:
                per_pod[pod] = pd.DataFrame(
                    {"field": [self._column], "mean": [float("nan")], "count": [0]}
                )
                continue
            mean, n = float(row["mean"].iloc[0]), int(row["count"].iloc[0])
            per_pod[pod] = pd.DataFrame({"field": [self._column], "mean": [mean], "count": [n]})
            total += float(row["sum"].iloc[0])
            count += n
        combined = pd.DataFrame(
            {
                "field": [self._column],
                "mean": [total / count if count else float("nan")],
                "count": [int(count)],
            }
        )
        return TableResult(per_pod, combined)


class ColumnAverage(AlgorithmFactory):
    """The mean of one numeric column on each pod, and over all pods (weighted by count).

    Args:
        field: The column.
        table_name: Accepted for Bitfount's task files (each pod has one table).
    """

    name = "ColumnAverage"
    batchable = True

    def __init__(self, *, field: str, table_name: str | None = None) -> None:
        self.field = field
        self.table_name = table_name
        self._spec = StatisticsSpec(columns=(field,), quantiles=())

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ColumnAverage:
        parsed = parse_arguments(cls.name, _AverageArguments, arguments)
        return cls(field=parsed.field, table_name=parsed.table_name)

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"field": self.field}
        if self.table_name is not None:
            arguments["table_name"] = self.table_name
        return arguments

    def worker(self) -> WorkerAlgorithm:
        return _Worker(self._spec)

    def modeller(self) -> ModellerAlgorithm:
        return _AverageModeller(self.field)
