"""Metrics from numpy arrays, checked against scikit-learn, and their combination."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from podium.models.metrics import (
    classification_metrics,
    combine_metrics,
    rank_auc,
    regression_metrics,
)


def _probabilities(rng: np.random.Generator, n: int, k: int) -> NDArray[np.float64]:
    logits = rng.normal(size=(n, k))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_scikit_learn(seed: int) -> None:
    """Binary accuracy, F1 of class 1, ROC AUC and log loss equal scikit-learn's."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=200)
    proba = _probabilities(rng, 200, 2)
    metrics = classification_metrics(y, proba)
    predicted = proba.argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert metrics["f1"] == pytest.approx(f1_score(y, predicted))
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert metrics["loss"] == pytest.approx(log_loss(y, proba))
    assert metrics["count"] == 200.0


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_match_scikit_learn(seed: int) -> None:
    """Multiclass F1 is macro, AUC is macro one-vs-rest, as in scikit-learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=300)
    proba = _probabilities(rng, 300, 4)
    metrics = classification_metrics(y, proba)
    predicted = proba.argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert metrics["f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert metrics["auc"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert metrics["loss"] == pytest.approx(log_loss(y, proba))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), min_size=2, max_size=40))
def test_auc_handles_ties_as_scikit_learn_does(rows: list[tuple[bool, int]]) -> None:
    """With heavily tied scores the rank AUC equals scikit-learn's ROC AUC (or is NaN)."""
    labels = np.array([r[0] for r in rows])
    scores = np.array([r[1] for r in rows], dtype=np.float64)
    auc = rank_auc(labels, scores)
    if labels.all() or not labels.any():
        assert math.isnan(auc)
    else:
        assert auc == pytest.approx(roc_auc_score(labels, scores))


def test_auc_is_nan_when_a_class_is_absent() -> None:
    """One class only (binary) or a missing class (multiclass) gives AUC NaN."""
    binary = classification_metrics(np.ones(4, dtype=int), np.full((4, 2), 0.5))
    assert math.isnan(binary["auc"])
    multi = classification_metrics(np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3))
    assert math.isnan(multi["auc"])
    assert multi["accuracy"] == 0.5


def test_loss_is_clipped_for_zero_probabilities() -> None:
    """A zero probability for the true class gives a large finite loss, not infinity."""
    metrics = classification_metrics(np.array([0]), np.array([[0.0, 1.0]]))
    assert metrics["loss"] == pytest.approx(-math.log(1e-15))


def test_f1_without_positive_predictions_or_labels_is_zero() -> None:
    """No positives at all gives F1 0, as scikit-learn's zero_division default does."""
    metrics = classification_metrics(np.zeros(3, dtype=int), np.tile([0.9, 0.1], (3, 1)))
    assert metrics["f1"] == 0.0
    assert metrics["accuracy"] == 1.0


def test_classification_refuses_labels_outside_the_classes() -> None:
    """A label with no probability column is a ValueError."""
    with pytest.raises(ValueError, match="from 0 to 1"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5))


def test_empty_data_gives_a_zero_count_and_nan_metrics() -> None:
    """No rows: count 0 and NaN for every metric."""
    metrics = classification_metrics(np.zeros(0, dtype=int), np.zeros((0, 2)))
    assert metrics["count"] == 0.0
    assert math.isnan(metrics["accuracy"])
    assert regression_metrics(np.zeros(0), np.zeros(0))["count"] == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_regression_metrics_match_scikit_learn(seed: int) -> None:
    """MSE (and loss), MAE and R² equal scikit-learn's."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=50)
    prediction = y + rng.normal(scale=0.5, size=50)
    metrics = regression_metrics(y, prediction)
    assert metrics["mse"] == pytest.approx(mean_squared_error(y, prediction))
    assert metrics["loss"] == metrics["mse"]
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, prediction))
    assert metrics["r2"] == pytest.approx(r2_score(y, prediction))
    assert metrics["count"] == 50.0


def test_r2_of_constant_labels_follows_scikit_learn() -> None:
    """Constant labels: R² 1 for a perfect fit, 0 otherwise."""
    y = np.full(4, 2.0)
    assert regression_metrics(y, y)["r2"] == r2_score(y, y) == 1.0
    assert regression_metrics(y, y + 1)["r2"] == r2_score(y, y + 1) == 0.0


def test_combining_accuracy_and_mse_equals_the_pooled_value() -> None:
    """Count-weighted accuracy, loss and MSE across pods equal those on the pooled rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=90)
    proba = _probabilities(rng, 90, 2)
    pods = {"a": slice(0, 20), "b": slice(20, 90)}
    per_pod = {p: classification_metrics(y[s], proba[s]) for p, s in pods.items()}
    combined = combine_metrics(per_pod)
    pooled = classification_metrics(y, proba)
    assert combined["accuracy"] == pytest.approx(pooled["accuracy"])
    assert combined["loss"] == pytest.approx(pooled["loss"])
    assert combined["count"] == 90.0
    truth, guess = rng.normal(size=90), rng.normal(size=90)
    regression = {p: regression_metrics(truth[s], guess[s]) for p, s in pods.items()}
    assert combine_metrics(regression)["mse"] == pytest.approx(
        regression_metrics(truth, guess)["mse"]
    )


def test_combining_skips_nan_values_and_empty_pods() -> None:
    """A NaN metric or a pod with no rows does not drag the combined value."""
    combined = combine_metrics(
        {
            "a": {"auc": float("nan"), "accuracy": 0.5, "count": 10.0},
            "b": {"auc": 0.8, "accuracy": 1.0, "count": 30.0},
            "c": {"auc": 0.1, "accuracy": 0.0, "count": 0.0},
        }
    )
    assert combined == {"auc": 0.8, "accuracy": pytest.approx(0.875), "count": 40.0}


def test_a_metric_no_pod_has_a_value_for_is_nan() -> None:
    """A metric that is NaN on every pod stays NaN when combined."""
    combined = combine_metrics({"a": {"auc": float("nan"), "count": 3.0}})
    assert math.isnan(combined["auc"])
