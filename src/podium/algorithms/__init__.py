"""Algorithms: what runs on a pod, and how the modeller combines what the pods send.

Each algorithm is a factory (:class:`podium.protocols.base.AlgorithmFactory`) that a
protocol runs: ``SqlQuery`` (read-only SQL, aggregates by default), ``Statistics``
(mergeable summaries), ``ColumnAverage`` and ``CSVReportAlgorithm`` (a report written on
the pod). Table-shaped answers come back as :class:`TableResult`.
"""

from podium.algorithms._tables import TableResult
from podium.algorithms.csv_report import CSVReportAlgorithm
from podium.algorithms.sql import SqlQuery
from podium.algorithms.statistics import ColumnAverage, Statistics, StatisticsResult

__all__ = [
    "CSVReportAlgorithm",
    "ColumnAverage",
    "SqlQuery",
    "Statistics",
    "StatisticsResult",
    "TableResult",
]
