"""Mergeable per-column summaries: the pure-math core of the federated ``Statistics`` algorithm.

A pod summarises its data (in one go or batch by batch) with :meth:`Summary.of_frame`; the
modeller merges the pods' summaries with :meth:`Summary.merge`. Merging is associative and
commutative (up to float rounding), so the merged summary describes the concatenation of
every pod's rows, whatever the order or the batching.

The math, per group (a tuple of ``group_by`` values, ``None`` for a null value) and column:

* **Numeric columns** (every numeric dtype except bool) keep ``count`` (finite values),
  ``nulls`` (missing *and* non-finite values, so one ``inf`` cannot poison the mean),
  ``sum``, ``min``, ``max``, and the running ``mean`` and ``m2`` (the sum of squared
  deviations from the mean). Two parts merge with Chan et al.'s parallel form of Welford's
  update: ``delta = mean_b - mean_a``, ``mean = mean_a + delta * n_b / n``,
  ``m2 = m2_a + m2_b + delta**2 * n_a * n_b / n``. The sample variance is ``m2 / (n - 1)``.
* **Quantiles** come from a DDSketch-style sketch. With relative accuracy ``a`` and
  ``gamma = (1 + a) / (1 - a)``, a value ``x`` with ``|x| >= 1e-12`` falls in bucket
  ``ceil(log_gamma(|x|))`` of the positive or the negative store; smaller magnitudes are
  counted as zero. Bucket ``i`` covers ``(gamma**(i-1), gamma**i]`` and is represented by
  ``2 * gamma**i / (gamma + 1)``, which is within relative error ``a`` of every value in it.
  Bucket boundaries do not depend on the data, so merging two sketches adds bucket counts
  exactly. A store keeps at most 4096 buckets; past that the lowest-index buckets (the
  smallest magnitudes) are collapsed into one, so accuracy degrades only for the smallest
  magnitudes (with the default ``a = 0.01`` that many buckets span 35 orders of magnitude).
* **Rank definition.** Quantile ``q`` of ``n`` values is the value of 0-based rank
  ``floor(q * (n - 1))`` in sorted order, which is what
  ``numpy.quantile(values, q, method="lower")`` returns. The sketch returns the
  representative of the bucket holding that rank, clamped into ``[min, max]``.
* **Histograms** split ``[min, max]`` into ``bins`` equal-width bins and give each sketch
  bucket's whole count to the bin holding the bucket's representative value, so the counts
  add up exactly to ``count`` but are approximate near bin edges (a bucket straddling an
  edge lands on one side).
* **Non-numeric columns** (strings, categoricals, bools, dates) keep ``count``, ``nulls``
  and the count of each distinct value (keys as ``str``).

Exactness: count, nulls, min and max are exact; sum, mean and variance are exact up to float
rounding; quantiles are within the relative accuracy (absolute ``1e-12`` near zero);
histograms are approximate at bin edges.

Disclosure: only counts and aggregates leave a pod; the only row values in a summary are
each column's min and max and the distinct values of non-numeric columns, which
:meth:`Summary.suppress_small_groups` thins out before the result leaves the pod.
:meth:`Summary.to_wire` yields plain JSON/msgpack data; nothing is ever pickled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from podium.core.errors import PodiumError

__all__ = [
    "CategoricalSummary",
    "ColumnSummary",
    "GroupKey",
    "GroupSummary",
    "NumericSummary",
    "QuantileSketch",
    "StatisticsSpec",
    "Summary",
    "SummaryFormatError",
]

#: The wire format version :meth:`Summary.to_wire` writes and :meth:`Summary.from_wire` reads.
WIRE_VERSION = 1
#: Magnitudes below this count as zero in the quantile sketch.
ZERO_THRESHOLD = 1e-12
#: The most buckets one sketch store keeps before collapsing its lowest-index buckets.
MAX_BUCKETS = 4096

GroupValue: TypeAlias = str | int | float | bool | None
GroupKey: TypeAlias = tuple[GroupValue, ...]
FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.intp]


class SummaryFormatError(PodiumError, ValueError):
    """A wire summary is malformed: a missing field, a wrong type or an unknown version."""


# ---------------------------------------------------------------------------- spec


@dataclass(frozen=True, kw_only=True)
class StatisticsSpec:
    """What to summarise: which columns, grouped how, which quantiles and histogram bins.

    ``columns=None`` summarises every column of the frame except the ``group_by`` ones.
    """

    columns: tuple[str, ...] | None = None
    group_by: tuple[str, ...] = ()
    quantiles: tuple[float, ...] = (0.25, 0.5, 0.75)
    bins: int = 10
    relative_accuracy: float = 0.01

    def __post_init__(self) -> None:
        """Check every field; raise ValueError saying which one is wrong and how to fix it."""
        if self.columns is not None:
            _check_names("columns", self.columns)
        _check_names("group_by", self.group_by)
        overlap = sorted(set(self.columns or ()) & set(self.group_by))
        if overlap:
            raise ValueError(f"statistics: {overlap} is in both columns and group_by; pick one")
        for q in self.quantiles:
            if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
                raise ValueError(f"statistics: quantile {q!r} must be a number in [0, 1]")
        names = [f"q{q:g}" for q in self.quantiles]
        if len(set(names)) != len(names):
            raise ValueError(f"statistics: quantiles {list(self.quantiles)} repeat a value")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int):
            raise ValueError(f"statistics: bins must be an integer, got {self.bins!r}")
        if not 1 <= self.bins <= 1000:
            raise ValueError(f"statistics: bins must be in 1..1000, got {self.bins}")
        a = self.relative_accuracy
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 < a < 1:
            raise ValueError(f"statistics: relative_accuracy must be in (0, 1), got {a!r}")

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> StatisticsSpec:
        """Build a spec from a task definition's plain arguments (lists instead of tuples)."""
        known = ("bins", "columns", "group_by", "quantiles", "relative_accuracy")
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ValueError(f"statistics: unknown arguments {unknown}; known are {list(known)}")
        values: dict[str, Any] = dict(arguments)
        for name in ("columns", "group_by", "quantiles"):
            if name in values and values[name] is not None:
                if not isinstance(values[name], list | tuple):
                    raise ValueError(f"statistics: {name} must be a list, got {values[name]!r}")
                values[name] = tuple(values[name])
        if values.get("group_by", ()) is None:
            raise ValueError("statistics: group_by must be a list (empty for no grouping)")
        return cls(**values)

    def to_wire(self) -> dict[str, Any]:
        """The spec as plain data (lists instead of tuples)."""
        return {
            "columns": None if self.columns is None else list(self.columns),
            "group_by": list(self.group_by),
            "quantiles": [float(q) for q in self.quantiles],
            "bins": self.bins,
            "relative_accuracy": float(self.relative_accuracy),
        }


def _check_names(what: str, names: Sequence[str]) -> None:
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"statistics: {what} must be a tuple of column names, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"statistics: {what} {list(names)} names a column twice")


# ---------------------------------------------------------------------------- sketch


@dataclass(frozen=True, kw_only=True)
class QuantileSketch:
    """A DDSketch-style log-bucket sketch: bucket index -> count, per sign, and a zero count."""

    relative_accuracy: float
    positive: Mapping[int, int] = field(default_factory=dict)
    negative: Mapping[int, int] = field(default_factory=dict)
    zero: int = 0

    @property
    def gamma(self) -> float:
        """The ratio between consecutive bucket boundaries."""
        return (1 + self.relative_accuracy) / (1 - self.relative_accuracy)

    @property
    def total(self) -> int:
        """How many values the sketch holds."""
        return self.zero + sum(self.positive.values()) + sum(self.negative.values())

    @classmethod
    def of_values(cls, values: FloatArray, *, relative_accuracy: float) -> QuantileSketch:
        """Sketch finite values (vectorised)."""
        log_gamma = math.log((1 + relative_accuracy) / (1 - relative_accuracy))
        return cls(
            relative_accuracy=relative_accuracy,
            positive=_bucket_counts(values[values >= ZERO_THRESHOLD], log_gamma),
            negative=_bucket_counts(-values[values <= -ZERO_THRESHOLD], log_gamma),
            zero=int(np.count_nonzero(np.abs(values) < ZERO_THRESHOLD)),
        )

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Add bucket counts (exact: bucket boundaries do not depend on the data)."""
        if self.relative_accuracy != other.relative_accuracy:
            raise ValueError("statistics: cannot merge sketches of different relative accuracy")
        return QuantileSketch(
            relative_accuracy=self.relative_accuracy,
            positive=_add_stores(self.positive, other.positive),
            negative=_add_stores(self.negative, other.negative),
            zero=self.zero + other.zero,
        )

    def buckets(self) -> tuple[FloatArray, IntArray]:
        """Representative values in ascending order and their counts."""
        gamma = self.gamma
        neg = sorted(self.negative, reverse=True)
        pos = sorted(self.positive)
        values = [-_representative(i, gamma) for i in neg]
        counts = [self.negative[i] for i in neg]
        if self.zero:
            values.append(0.0)
            counts.append(self.zero)
        values += [_representative(i, gamma) for i in pos]
        counts += [self.positive[i] for i in pos]
        return np.asarray(values, dtype=np.float64), np.asarray(counts, dtype=np.intp)

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Values of 0-based rank ``floor(q * (n - 1))``; NaN for an empty sketch."""
        values, counts = self.buckets()
        n = int(counts.sum())
        if n == 0:
            return [math.nan for _ in qs]
        cumulative = np.cumsum(counts)
        ranks = [math.floor(q * (n - 1)) for q in qs]
        positions = np.searchsorted(cumulative, ranks, side="right")
        return [float(values[p]) for p in positions]

    def coarsened(self, min_count: int) -> QuantileSketch:
        """The sketch with every bucket holding at least ``min_count`` values (per sign):
        consecutive buckets are pooled, each pool's count moved to its fullest bucket, so
        no bucket stands for fewer people than the pod shows in any group. A sign with
        fewer than ``min_count`` values in all is pooled into the zero bucket. Quantiles in
        sparse stretches get coarser; the total is unchanged."""
        if min_count <= 1:
            return self
        zero = self.zero
        stores: list[dict[int, int]] = []
        for store in (self.positive, self.negative):
            if 0 < sum(store.values()) < min_count:
                zero += sum(store.values())
                stores.append({})
            else:
                stores.append(_pooled(store, min_count))
        return replace(self, positive=stores[0], negative=stores[1], zero=zero)


def _pooled(store: Mapping[int, int], min_count: int) -> dict[int, int]:
    runs: list[list[int]] = []
    total = 0
    for index in sorted(store):
        if not runs or total >= min_count:
            runs.append([])
            total = 0
        runs[-1].append(index)
        total += store[index]
    if len(runs) > 1 and total < min_count:  # a short last run joins the one before
        runs[-2].extend(runs.pop())
    pooled: dict[int, int] = {}
    for run in runs:
        fullest = max(run, key=lambda i: (store[i], -i))
        pooled[fullest] = sum(store[i] for i in run)
    return pooled


def _representative(index: int, gamma: float) -> float:
    return 2 * gamma**index / (gamma + 1)


def _bucket_counts(magnitudes: FloatArray, log_gamma: float) -> dict[int, int]:
    if magnitudes.size == 0:
        return {}
    indices = np.ceil(np.log(magnitudes) / log_gamma).astype(np.int64)
    lowest = int(indices.min())
    counts = np.bincount(indices - lowest)
    present = np.flatnonzero(counts)
    store = dict(zip((present + lowest).tolist(), counts[present].tolist(), strict=True))
    return _collapse(store)


def _add_stores(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    store = dict(a)
    for index, count in b.items():
        store[index] = store.get(index, 0) + count
    return _collapse(store)


def _collapse(store: dict[int, int]) -> dict[int, int]:
    """Fold the lowest-index buckets into one so at most MAX_BUCKETS remain.

    Whatever the merge order, the kept indices are the top MAX_BUCKETS of all indices ever
    seen and everything below lands on the lowest kept one, so collapsing stays associative.
    """
    if len(store) <= MAX_BUCKETS:
        return store
    indices = sorted(store)
    floor = indices[len(indices) - MAX_BUCKETS]
    folded = sum(store[i] for i in indices if i <= floor)
    kept = {i: store[i] for i in indices if i > floor}
    return {floor: folded, **kept}


# ---------------------------------------------------------------------------- columns


@dataclass(frozen=True, kw_only=True)
class NumericSummary:
    """Count, nulls, sum, mean, M2, min, max and a quantile sketch of one numeric column."""

    count: int
    nulls: int
    sum: float
    mean: float
    m2: float
    min: float | None
    max: float | None
    sketch: QuantileSketch

    @classmethod
    def of_values(cls, values: FloatArray, *, relative_accuracy: float) -> NumericSummary:
        """Summarise a float array whose NaN and infinite entries count as nulls."""
        finite = values[np.isfinite(values)]
        count = int(finite.size)
        sketch = QuantileSketch.of_values(finite, relative_accuracy=relative_accuracy)
        if count == 0:
            return cls(
                count=0, nulls=int(values.size), sum=0.0, mean=0.0, m2=0.0,
                min=None, max=None, sketch=sketch,
            )  # fmt: skip
        mean = float(finite.mean())
        return cls(
            count=count,
            nulls=int(values.size) - count,
            sum=float(finite.sum()),
            mean=mean,
            m2=float(np.square(finite - mean).sum()),
            min=float(finite.min()),
            max=float(finite.max()),
            sketch=sketch,
        )

    def merge(self, other: NumericSummary) -> NumericSummary:
        """Combine two parts with Chan et al.'s parallel mean/M2 update."""
        count = self.count + other.count
        if count == 0:
            mean, m2 = 0.0, 0.0
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / count
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return NumericSummary(
            count=count,
            nulls=self.nulls + other.nulls,
            sum=self.sum + other.sum,
            mean=mean,
            m2=m2,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            sketch=self.sketch.merge(other.sketch),
        )

    @property
    def variance(self) -> float:
        """The sample variance (ddof=1); NaN below two values."""
        return self.m2 / (self.count - 1) if self.count >= 2 else math.nan

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Sketch quantiles (rank ``floor(q * (n - 1))``) clamped into ``[min, max]``."""
        if self.min is None or self.max is None:
            return [math.nan for _ in qs]
        low, high = self.min, self.max
        return [min(max(v, low), high) for v in self.sketch.quantiles(qs)]


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


@dataclass(frozen=True, kw_only=True)
class CategoricalSummary:
    """Count, nulls and the count of each distinct value (as str) of one non-numeric column."""

    count: int
    nulls: int
    values: Mapping[str, int] = field(default_factory=dict)

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        """Add counts value by value."""
        values = dict(self.values)
        for value, n in other.values.items():
            values[value] = values.get(value, 0) + n
        return CategoricalSummary(
            count=self.count + other.count, nulls=self.nulls + other.nulls, values=values
        )


ColumnSummary: TypeAlias = NumericSummary | CategoricalSummary


def _merge_columns(name: str, a: ColumnSummary, b: ColumnSummary) -> ColumnSummary:
    if isinstance(a, NumericSummary) and isinstance(b, NumericSummary):
        return a.merge(b)
    if isinstance(a, CategoricalSummary) and isinstance(b, CategoricalSummary):
        return a.merge(b)
    raise ValueError(
        f"statistics: column {name!r} is numeric in one summary and non-numeric in the other; "
        "make the column's type the same on every pod"
    )


@dataclass(frozen=True, kw_only=True)
class GroupSummary:
    """The row count of one group and the summary of each of its columns."""

    rows: int
    columns: Mapping[str, ColumnSummary]

    def merge(self, other: GroupSummary) -> GroupSummary:
        """Add rows; merge columns present in both, keep the others."""
        columns = dict(self.columns)
        for name, summary in other.columns.items():
            mine = columns.get(name)
            columns[name] = summary if mine is None else _merge_columns(name, mine, summary)
        return GroupSummary(rows=self.rows + other.rows, columns=columns)


# ---------------------------------------------------------------------------- summary


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Per group and column summaries of a frame, mergeable across batches and pods.

    ``columns`` is the column order for the tables: the spec's, or (``columns=None``) the
    order first seen, where a merge appends the other side's new columns.
    """

    spec: StatisticsSpec
    columns: tuple[str, ...]
    groups: Mapping[GroupKey, GroupSummary]

    @classmethod
    def empty(cls, spec: StatisticsSpec) -> Summary:
        """The summary of no rows: the identity of :meth:`merge`."""
        return cls(spec=spec, columns=spec.columns or (), groups={})

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, spec: StatisticsSpec) -> Summary:
        """Summarise a frame (vectorised: no per-row Python loop)."""
        columns = _resolve_columns(frame, spec)
        prepared = {name: _prepare(frame[name]) for name in columns}
        groups: dict[GroupKey, GroupSummary] = {}
        for key, rows in _group_rows(frame, spec.group_by):
            summaries = {
                name: _summarise(column, rows, spec.relative_accuracy)
                for name, column in prepared.items()
            }
            groups[key] = GroupSummary(rows=_row_count(rows, len(frame)), columns=summaries)
        return cls(spec=spec, columns=columns, groups=groups)

    def merge(self, other: Summary) -> Summary:
        """The summary of both parts' rows together (a new object; neither side changes)."""
        if self.spec != other.spec:
            raise ValueError(
                f"statistics: cannot merge summaries of different specs ({self.spec} and "
                f"{other.spec}); every pod must run the same task arguments"
            )
        columns = self.columns + tuple(c for c in other.columns if c not in self.columns)
        groups = dict(self.groups)
        for key, group in other.groups.items():
            mine = groups.get(key)
            groups[key] = group if mine is None else mine.merge(group)
        return Summary(spec=self.spec, columns=columns, groups=groups)

    def suppress_small_groups(self, min_size: int) -> tuple[Summary, int]:
        """Drop groups of fewer than ``min_size`` rows and rarer categorical values, and
        pool the quantile sketches' buckets so that each holds at least ``min_size`` values.

        Returns the thinned summary and how many groups and values were dropped. A
        categorical column keeps its true ``count``, so the dropped values' total is visible
        but not which values they were.
        """
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise ValueError(f"statistics: min_size must be an integer >= 0, got {min_size!r}")
        dropped = 0
        groups: dict[GroupKey, GroupSummary] = {}
        for key, group in self.groups.items():
            if group.rows < min_size:
                dropped += 1
                continue
            columns: dict[str, ColumnSummary] = {}
            for name, summary in group.columns.items():
                columns[name] = summary
                if isinstance(summary, NumericSummary):
                    columns[name] = replace(summary, sketch=summary.sketch.coarsened(min_size))
                if isinstance(summary, CategoricalSummary):
                    kept = {v: n for v, n in summary.values.items() if n >= min_size}
                    dropped += len(summary.values) - len(kept)
                    columns[name] = replace(summary, values=kept)
            groups[key] = GroupSummary(rows=group.rows, columns=columns)
        return replace(self, groups=groups), dropped

    def table(self) -> pd.DataFrame:
        """One row per (group..., numeric column): counts, moments, extremes, quantiles."""
        qnames = [f"q{q:g}" for q in self.spec.quantiles]
        header = [*self.spec.group_by, "column", "count", "nulls", "sum", "mean"]
        header += ["variance", "std", "min", "max", *qnames]
        rows: list[list[Any]] = []
        for key, name, s in self._cells(NumericSummary):
            assert isinstance(s, NumericSummary)
            variance = s.variance
            rows.append([
                *key, name, s.count, s.nulls, s.sum, s.mean if s.count else math.nan,
                variance, math.sqrt(variance), _or_nan(s.min), _or_nan(s.max),
                *s.quantiles(self.spec.quantiles),
            ])  # fmt: skip
        table = pd.DataFrame(rows, columns=header)
        floats = ["sum", "mean", "variance", "std", "min", "max", *qnames]
        return table.astype(dict.fromkeys(floats, "float64") | {"count": "int64", "nulls": "int64"})

    def categories(self) -> pd.DataFrame:
        """One row per (group..., non-numeric column, value), most frequent value first."""
        rows: list[list[Any]] = []
        for key, name, s in self._cells(CategoricalSummary):
            assert isinstance(s, CategoricalSummary)
            ordered = sorted(s.values.items(), key=lambda item: (-item[1], item[0]))
            rows += [[*key, name, value, count] for value, count in ordered]
        header = [*self.spec.group_by, "column", "value", "count"]
        return pd.DataFrame(rows, columns=header).astype({"count": "int64"})

    def histogram(self, column: str, *, group: GroupKey = ()) -> pd.DataFrame:
        """``spec.bins`` equal-width bins over ``[min, max]`` with counts from the sketch.

        ``group=()`` with a ``group_by`` spec merges every group. Counts add up exactly to the
        column's count; a sketch bucket straddling a bin edge lands wholly on one side.
        """
        summary = self._numeric(column, group)
        if summary.min is None or summary.max is None:
            edges = np.zeros(self.spec.bins + 1)
        else:
            edges = np.linspace(summary.min, summary.max, self.spec.bins + 1)
        values, counts = summary.sketch.buckets()
        bins = np.searchsorted(edges, values, side="right") - 1
        bins = np.clip(bins, 0, self.spec.bins - 1)
        totals = np.bincount(bins, weights=counts, minlength=self.spec.bins)
        return pd.DataFrame(
            {"left": edges[:-1], "right": edges[1:], "count": totals.astype(np.int64)}
        )

    def to_wire(self) -> dict[str, Any]:
        """Plain data (str/int/float/bool/None/list/str-keyed dict) for msgpack or JSON."""
        return {
            "version": WIRE_VERSION,
            "spec": self.spec.to_wire(),
            "columns": list(self.columns),
            "groups": [
                {
                    "key": list(key),
                    "rows": group.rows,
                    "columns": {n: _column_to_wire(s) for n, s in group.columns.items()},
                }
                for key, group in self.groups.items()
            ],
        }

    @classmethod
    def from_wire(cls, data: Any) -> Summary:
        """Read :meth:`to_wire`'s output strictly; raise SummaryFormatError naming the field."""
        return _summary_from_wire(data)

    def _cells(self, kind: type) -> Iterable[tuple[GroupKey, str, ColumnSummary]]:
        order = {name: i for i, name in enumerate(self.columns)}
        for key in sorted(self.groups, key=_key_order):
            group = self.groups[key]
            for name in sorted(group.columns, key=lambda n: (order.get(n, len(order)), n)):
                if isinstance(group.columns[name], kind):
                    yield key, name, group.columns[name]

    def _numeric(self, column: str, group: GroupKey) -> NumericSummary:
        if group == () and self.spec.group_by:
            chosen = list(self.groups.values())
        elif tuple(group) in self.groups:
            chosen = [self.groups[tuple(group)]]
        else:
            raise KeyError(f"statistics: no group {group!r}; groups are {sorted(self.groups)}")
        found = [g.columns[column] for g in chosen if column in g.columns]
        if not found and column not in self.columns:
            raise KeyError(f"statistics: no column {column!r}; columns are {list(self.columns)}")
        if not all(isinstance(f, NumericSummary) for f in found):
            raise ValueError(f"statistics: column {column!r} is not numeric; see categories()")
        total = NumericSummary.of_values(np.empty(0), relative_accuracy=self.spec.relative_accuracy)
        for summary in found:
            assert isinstance(summary, NumericSummary)
            total = total.merge(summary)
        return total


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _key_order(key: GroupKey) -> tuple[tuple[int, Any], ...]:
    """Sort group keys: numbers, then strings, then nulls."""
    return tuple((2, "") if v is None else (1, v) if isinstance(v, str) else (0, v) for v in key)


# ---------------------------------------------------------------------------- of_frame


def _resolve_columns(frame: pd.DataFrame, spec: StatisticsSpec) -> tuple[str, ...]:
    available = [str(c) for c in frame.columns]
    wanted = list(spec.group_by) + list(spec.columns or ())
    missing = [c for c in wanted if c not in available]
    if missing:
        raise KeyError(f"statistics: columns {missing} are not in the data; it has {available}")
    if spec.columns is not None:
        return spec.columns
    return tuple(c for c in available if c not in spec.group_by)


_Prepared: TypeAlias = tuple[FloatArray, None] | tuple[IntArray, list[str]]


def _is_numeric(series: pd.Series[Any]) -> bool:
    dtype = series.dtype
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _prepare(series: pd.Series[Any]) -> _Prepared:
    """A float array for a numeric column, or factorised codes and str labels for the rest."""
    if _is_numeric(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), None
    codes, uniques = pd.factorize(series)
    return np.asarray(codes, dtype=np.intp), [str(u) for u in uniques]


def _summarise(prepared: _Prepared, rows: IntArray | None, accuracy: float) -> ColumnSummary:
    data, labels = prepared
    part = data if rows is None else data[rows]
    if labels is None:
        return NumericSummary.of_values(part.astype(np.float64), relative_accuracy=accuracy)
    present = part[part >= 0]
    counts = np.bincount(present, minlength=len(labels))
    values: dict[str, int] = {}
    for index in np.flatnonzero(counts).tolist():
        values[labels[index]] = values.get(labels[index], 0) + int(counts[index])
    return CategoricalSummary(
        count=int(present.size), nulls=int(part.size - present.size), values=values
    )


def _row_count(rows: IntArray | None, total: int) -> int:
    return total if rows is None else int(rows.size)


def _group_rows(
    frame: pd.DataFrame, group_by: tuple[str, ...]
) -> list[tuple[GroupKey, IntArray | None]]:
    """Row positions of each group (null group values kept); ``None`` means every row."""
    if not group_by:
        return [((), None)]
    if len(frame) == 0:
        return []
    combined = np.zeros(len(frame), dtype=np.intp)
    factorised = []
    for name in group_by:
        codes, uniques = pd.factorize(frame[name], use_na_sentinel=False)
        factorised.append((np.asarray(codes, dtype=np.intp), uniques))
        pair = combined * len(uniques) + codes
        combined = np.asarray(pd.factorize(pair)[0], dtype=np.intp)
    order = np.argsort(combined, kind="stable")
    starts = np.flatnonzero(np.diff(combined[order])) + 1
    result: list[tuple[GroupKey, IntArray | None]] = []
    for rows in np.split(order, starts):
        first = int(rows[0])
        key = tuple(_group_value(uniques[codes[first]]) for codes, uniques in factorised)
        result.append((key, rows))
    return result


def _group_value(value: Any) -> GroupValue:
    """A wire-safe group value: None for nulls, Python scalars, str for anything else."""
    if value is None or (not isinstance(value, str | bytes) and bool(pd.isna(value))):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ---------------------------------------------------------------------------- wire


def _column_to_wire(summary: ColumnSummary) -> dict[str, Any]:
    if isinstance(summary, CategoricalSummary):
        return {
            "kind": "categorical",
            "count": summary.count,
            "nulls": summary.nulls,
            "values": dict(summary.values),
        }
    sketch = summary.sketch
    return {
        "kind": "numeric",
        "count": summary.count,
        "nulls": summary.nulls,
        "sum": summary.sum,
        "mean": summary.mean,
        "m2": summary.m2,
        "min": summary.min,
        "max": summary.max,
        "sketch": {
            "positive": [[i, n] for i, n in sorted(sketch.positive.items())],
            "negative": [[i, n] for i, n in sorted(sketch.negative.items())],
            "zero": sketch.zero,
        },
    }


def _fail(where: str, problem: str) -> SummaryFormatError:
    return SummaryFormatError(f"statistics summary: {where} {problem}")


def _field(data: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in data:
        return _raise(_fail(f"{where}.{name}", "is missing"))
    return data[name]


def _raise(error: SummaryFormatError) -> Any:
    raise error


def _dict(value: Any, where: str, fields: Sequence[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, f"must be an object with string keys, got {type(value).__name__}")
    if fields is not None:
        missing = [f for f in fields if f not in value]
        if missing:
            raise _fail(where, f"is missing {missing}")
        extra = sorted(set(value) - set(fields))
        if extra:
            raise _fail(where, f"has unknown fields {extra}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"must be a list, got {type(value).__name__}")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"must be an integer >= 0, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"must be an integer, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"must be a number, got {value!r}")
    return float(value)


def _optional_float(value: Any, where: str) -> float | None:
    return None if value is None else _float(value, where)


def _summary_from_wire(data: Any) -> Summary:
    top = _dict(data, "summary", ("version", "spec", "columns", "groups"))
    if _field(top, "version", "summary") != WIRE_VERSION:
        raise _fail("summary.version", f"is {top['version']!r}; this Podium reads {WIRE_VERSION}")
    spec = _spec_from_wire(top["spec"])
    columns = _list(top["columns"], "summary.columns")
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise _fail("summary.columns", "must be a list of distinct strings")
    groups: dict[GroupKey, GroupSummary] = {}
    for i, raw in enumerate(_list(top["groups"], "summary.groups")):
        where = f"summary.groups[{i}]"
        key, group = _group_from_wire(raw, where, spec, set(columns))
        if key in groups:
            raise _fail(f"{where}.key", f"repeats group {list(key)!r}")
        groups[key] = group
    return Summary(spec=spec, columns=tuple(columns), groups=groups)


def _spec_from_wire(raw: Any) -> StatisticsSpec:
    fields = ("columns", "group_by", "quantiles", "bins", "relative_accuracy")
    data = _dict(raw, "summary.spec", fields)
    try:
        return StatisticsSpec.from_arguments(data)
    except (ValueError, TypeError) as exc:
        raise _fail("summary.spec", f"is invalid: {exc}") from exc


def _group_from_wire(
    raw: Any, where: str, spec: StatisticsSpec, columns: set[str]
) -> tuple[GroupKey, GroupSummary]:
    data = _dict(raw, where, ("key", "rows", "columns"))
    key = _list(data["key"], f"{where}.key")
    if len(key) != len(spec.group_by):
        raise _fail(f"{where}.key", f"has {len(key)} values for group_by {list(spec.group_by)}")
    for value in key:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _fail(f"{where}.key", f"holds {value!r}; want str/number/bool/null")
    rows = _count(data["rows"], f"{where}.rows")
    summaries: dict[str, ColumnSummary] = {}
    for name, column in _dict(data["columns"], f"{where}.columns").items():
        at = f"{where}.columns.{name}"
        if name not in columns:
            raise _fail(at, "is not in summary.columns")
        summaries[name] = _column_from_wire(column, at, spec.relative_accuracy)
        if summaries[name].count + summaries[name].nulls != rows:
            raise _fail(at, f"counts {summaries[name].count} + nulls do not add up to {rows} rows")
    return tuple(key), GroupSummary(rows=rows, columns=summaries)


def _column_from_wire(raw: Any, where: str, accuracy: float) -> ColumnSummary:
    kind = _field(_dict(raw, where), "kind", where)
    if kind == "categorical":
        data = _dict(raw, where, ("kind", "count", "nulls", "values"))
        values = {
            value: _count(n, f"{where}.values.{value}")
            for value, n in _dict(data["values"], f"{where}.values").items()
        }
        count = _count(data["count"], f"{where}.count")
        if sum(values.values()) > count:
            raise _fail(f"{where}.values", f"add up to more than count {count}")
        return CategoricalSummary(
            count=count, nulls=_count(data["nulls"], f"{where}.nulls"), values=values
        )
    if kind != "numeric":
        raise _fail(f"{where}.kind", f"is {kind!r}; want 'numeric' or 'categorical'")
    fields = ("kind", "count", "nulls", "sum", "mean", "m2", "min", "max", "sketch")
    data = _dict(raw, where, fields)
    summary = NumericSummary(
        count=_count(data["count"], f"{where}.count"),
        nulls=_count(data["nulls"], f"{where}.nulls"),
        sum=_float(data["sum"], f"{where}.sum"),
        mean=_float(data["mean"], f"{where}.mean"),
        m2=_float(data["m2"], f"{where}.m2"),
        min=_optional_float(data["min"], f"{where}.min"),
        max=_optional_float(data["max"], f"{where}.max"),
        sketch=_sketch_from_wire(data["sketch"], f"{where}.sketch", accuracy),
    )
    if summary.sketch.total != summary.count:
        raise _fail(
            f"{where}.sketch", f"holds {summary.sketch.total} values, count is {summary.count}"
        )
    if (summary.min is None) != (summary.count == 0):
        raise _fail(f"{where}.min", "must be null exactly when count is 0")
    if (summary.max is None) != (summary.count == 0):
        raise _fail(f"{where}.max", "must be null exactly when count is 0")
    return summary


def _sketch_from_wire(raw: Any, where: str, accuracy: float) -> QuantileSketch:
    data = _dict(raw, where, ("positive", "negative", "zero"))
    return QuantileSketch(
        relative_accuracy=accuracy,
        positive=_store_from_wire(data["positive"], f"{where}.positive"),
        negative=_store_from_wire(data["negative"], f"{where}.negative"),
        zero=_count(data["zero"], f"{where}.zero"),
    )


def _store_from_wire(raw: Any, where: str) -> dict[int, int]:
    store: dict[int, int] = {}
    entries = _list(raw, where)
    if len(entries) > MAX_BUCKETS:
        raise _fail(where, f"has {len(entries)} buckets; at most {MAX_BUCKETS}")
    for i, entry in enumerate(entries):
        pair = _list(entry, f"{where}[{i}]")
        if len(pair) != 2:
            raise _fail(f"{where}[{i}]", "must be [bucket index, count]")
        index = _int(pair[0], f"{where}[{i}][0]")
        if index in store:
            raise _fail(f"{where}[{i}][0]", f"repeats bucket {index}")
        store[index] = _count(pair[1], f"{where}[{i}][1]")
    return store
