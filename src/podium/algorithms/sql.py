"""``SqlQuery``: one read-only SQL query on each pod's data, aggregates by default.

On the pod the query is checked (:func:`podium.data.validate_query`) and runs in DuckDB
over the pod's sources, or pushed down to the source database
(:class:`podium.data.sql.SQLEngine`). Disclosure control
(:mod:`podium.algorithms._disclosure`) decides what may leave: an aggregate query runs with
a count per group and groups below the pod's ``min_group_size`` are dropped; a row-level
query is refused unless the pod's policy gives the modeller's role row-level output.
A query that is refused or fails ends the task with the reason (no data in it).

The modeller gets a :class:`~podium.algorithms._tables.TableResult`: each pod's table and
all of them stacked with a ``pod`` column.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd
from pydantic import Field
from sqlglot import exp

from podium.algorithms._disclosure import classify, suppress_small_groups, with_group_sizes
from podium.algorithms._tables import TableResult, stack
from podium.core.errors import ForbiddenQueryError, ProtocolError, QueryError
from podium.core.messages import AbortReason
from podium.data.sources.base import DataSource
from podium.data.sql import SQLEngine, validate_query
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    WorkerAlgorithm,
)

__all__ = ["SqlQuery"]

_log = logging.getLogger("podium.pod")


class _Arguments(Arguments):
    query: str = Field(min_length=1, max_length=100_000)
    table: str | None = None


class _Worker(WorkerAlgorithm):
    def __init__(self, query: str, table: str | None) -> None:
        self._query = query
        self._table = table

    def _sources(self, batch: Batch) -> dict[str, DataSource]:
        """The pod's sources as tables; with ``table``, a pod with one source also shows
        it under that name, so one query runs on pods whose datasources are named apart."""
        sources = dict(batch.sources)
        if self._table and self._table not in sources and len(sources) == 1:
            sources[self._table] = next(iter(sources.values()))
        return sources

    def run(self, batch: Batch) -> object:
        context = self.context
        with SQLEngine(self._sources(batch)) as engine:
            try:
                checked = validate_query(self._query, engine.tables)
                shape = classify(checked.tree)
                if shape.aggregate and isinstance(checked.tree, exp.Select):
                    counted = engine.query(with_group_sizes(checked.tree))
                    rows, dropped = suppress_small_groups(counted, context.min_group_size)
                    return {"rows": rows, "aggregate": True, "suppressed_groups": dropped}
                if not context.row_level:
                    raise AbortTask(
                        AbortReason.WORKER_ERROR,
                        f"row-level output is refused on {context.pod_id} ({shape.reason}): "
                        "ask for aggregates (GROUP BY, COUNT, AVG, ...), or ask the pod's "
                        "owner for a role with row-level output",
                    )
                rows = engine.query(self._query)
            except QueryError as error:
                raise AbortTask(AbortReason.WORKER_ERROR, _public_reason(error)) from None
        return {"rows": rows, "aggregate": False, "suppressed_groups": 0}


#: DuckDB errors about the query itself (names, syntax), safe to show the modeller; the
#: others (conversion, out of range, invalid input, ...) can quote values from the data.
_ABOUT_THE_QUERY = (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException)


def _public_reason(error: QueryError) -> str:
    """What the modeller may read of a failed query: the checks' own messages and errors
    about names and syntax; for anything raised while reading the data, only its kind
    (the full text goes to the pod's log)."""
    cause = error.__cause__
    if isinstance(error, ForbiddenQueryError) and not isinstance(cause, duckdb.Error):
        return str(error)
    if isinstance(cause, _ABOUT_THE_QUERY):
        return str(error)
    _log.warning("a task's query failed: %s", error)
    kind = type(cause).__name__ if cause is not None else type(error).__name__
    return (
        f"the query failed while reading the data ({kind}); the pod's owner can see the "
        "details in the pod's log"
    )


class _Modeller(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> TableResult:
        per_pod: dict[str, pd.DataFrame] = {}
        notes: dict[str, dict[str, object]] = {}
        for pod, items in results.items():
            frames = []
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("rows"), pd.DataFrame):
                    raise ProtocolError(f"{pod} sent a SqlQuery result without its rows")
                frames.append(item["rows"])
                notes[pod] = {
                    "aggregate": item.get("aggregate"),
                    "suppressed_groups": item.get("suppressed_groups"),
                }
            if frames:
                per_pod[pod] = (
                    frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                )
        return TableResult(per_pod, stack(per_pod), notes)


class SqlQuery(AlgorithmFactory):
    """A SQL query run on each pod (``SELECT ... FROM "<datasource>"``).

    Args:
        query: One read-only ``SELECT``; each pod's datasource is a table of its name.
        table: A name the query may use for a pod's (only) datasource, so that one query
            runs on pods whose datasources have different names (``FROM "census"``).
    """

    name = "SqlQuery"

    def __init__(self, *, query: str, table: str | None = None) -> None:
        self.query = query
        self.table = table

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> SqlQuery:
        parsed = parse_arguments(cls.name, _Arguments, arguments)
        return cls(query=parsed.query, table=parsed.table)

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"query": self.query}
        if self.table is not None:
            arguments["table"] = self.table
        return arguments

    def worker(self) -> WorkerAlgorithm:
        return _Worker(self.query, self.table)

    def modeller(self) -> ModellerAlgorithm:
        return _Modeller()
