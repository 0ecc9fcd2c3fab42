"""Model metrics from numpy arrays, and their combination across pods.

Classification: ``accuracy``, ``f1`` (binary: of class 1; more classes: the macro average
over the classes present in the labels or the predictions), ``auc`` (binary: ROC AUC as
the Mann-Whitney rank statistic, ties counted half; more classes: the macro average of
one-vs-rest AUCs, NaN when a class is absent from the labels), ``loss`` (cross-entropy,
probabilities clipped to ``[1e-15, 1]``) and ``count``.

Regression: ``mse``, ``mae``, ``r2`` (1 - SSres/SStot; with constant labels 1.0 for a
perfect fit, else 0.0), ``loss`` (the mean squared error again, so that early stopping on
``loss`` works for both tasks) and ``count``.

Only numpy is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["classification_metrics", "combine_metrics", "rank_auc", "regression_metrics"]

_EPSILON = 1e-15
_NAN = float("nan")


def _labels(y_true: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """``y_true`` as int64 class indices below ``n_classes``."""
    array = np.asarray(y_true)
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    integral = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)
    if array.size and not integral and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError("labels must be integer class indices")
    labels = array.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be class indices from 0 to {n_classes - 1}")
    return labels


def _probabilities(proba: ArrayLike) -> NDArray[np.float64]:
    """``proba`` as ``[n, k]`` float64; a 1-D array is the probability of class 1."""
    array = np.asarray(proba, dtype=np.float64)
    if array.ndim == 1:
        array = np.stack([1.0 - array, array], axis=1)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"probabilities must have shape [n, classes >= 2], got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("probabilities must be finite")
    return array


def rank_auc(positive: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """ROC AUC of ``scores`` for the ``positive`` rows (ties count half); NaN if one
    side is empty."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return _NAN
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    ends = np.concatenate((starts[1:], [ordered.size]))
    ranks = np.empty(ordered.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _f1(labels: NDArray[np.int64], predicted: NDArray[np.int64], positive: int) -> float:
    tp = int(np.sum((predicted == positive) & (labels == positive)))
    fp = int(np.sum((predicted == positive) & (labels != positive)))
    fn = int(np.sum((predicted != positive) & (labels == positive)))
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def classification_metrics(y_true: ArrayLike, proba: ArrayLike) -> dict[str, float]:
    """Accuracy, F1, AUC, cross-entropy loss and count of class probabilities ``proba``
    ``[n, k]`` against labels ``y_true`` ``[n]`` (see the module docstring)."""
    probabilities = _probabilities(proba)
    n, k = probabilities.shape
    labels = _labels(y_true, k)
    if labels.size != n:
        raise ValueError(f"{labels.size} labels for {n} rows of probabilities")
    if n == 0:
        return {"accuracy": _NAN, "f1": _NAN, "auc": _NAN, "loss": _NAN, "count": 0.0}
    predicted = probabilities.argmax(axis=1)
    if k == 2:
        f1 = _f1(labels, predicted, 1)
        auc = rank_auc(labels == 1, probabilities[:, 1])
    else:
        present = np.union1d(labels, predicted)
        f1 = float(np.mean([_f1(labels, predicted, int(c)) for c in present]))
        aucs = [rank_auc(labels == c, probabilities[:, c]) for c in range(k)]
        auc = _NAN if any(math.isnan(a) for a in aucs) else float(np.mean(aucs))
    picked = np.clip(probabilities[np.arange(n), labels], _EPSILON, 1.0)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "f1": float(f1),
        "auc": float(auc),
        "loss": float(-np.mean(np.log(picked))),
        "count": float(n),
    }


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Mean squared error (also as ``loss``), mean absolute error, R² and count."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    prediction = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if truth.size != prediction.size:
        raise ValueError(f"{truth.size} labels for {prediction.size} predictions")
    if truth.size == 0:
        return {"mse": _NAN, "mae": _NAN, "r2": _NAN, "loss": _NAN, "count": 0.0}
    residual = truth - prediction
    ss_res = float(np.sum(residual**2))
    ss_tot = float(np.sum((truth - truth.mean()) ** 2))
    # constant labels: sklearn's convention (1.0 for a perfect fit, else 0.0)
    perfect = 1.0 if ss_res == 0 else 0.0
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else perfect
    mse = ss_res / truth.size
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(residual))),
        "r2": r2,
        "loss": mse,
        "count": float(truth.size),
    }


def combine_metrics(per_pod: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each metric's count-weighted average over pods, and the total ``count``.

    Accuracy, loss, mse and mae combined this way are exact (they are means over rows).
    F1, AUC and R² are not means over rows, so their combination is an approximation of
    the value on the pooled rows. Pods with no rows, and NaN values, are left out of a
    metric's average; a metric no pod has a value for is NaN.
    """
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    names: list[str] = []
    count = 0.0
    for metrics in per_pod.values():
        rows = float(metrics.get("count", 0.0))
        if not math.isfinite(rows) or rows <= 0:
            continue
        count += rows
        for name, value in metrics.items():
            if name == "count":
                continue
            if name not in names:
                names.append(name)
            if math.isfinite(float(value)):
                totals[name] = totals.get(name, 0.0) + rows * float(value)
                weights[name] = weights.get(name, 0.0) + rows
    combined = {n: totals[n] / weights[n] if weights.get(n) else _NAN for n in names}
    combined["count"] = count
    return combined
