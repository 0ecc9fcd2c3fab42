"""Training, prediction and evaluation: deterministic, and able to learn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits  # type: ignore[import-untyped]

from podium.models.architectures import Dropout
from podium.models.registry import BuiltModel, build_model
from podium.models.training import ImageTensors, TabularTensors, evaluate, predict, train


def _separable(rows: int, seed: int) -> TabularTensors:
    """Two classes split by a line in the continuous values and shifted by a category."""
    rng = np.random.default_rng(seed)
    continuous = rng.normal(size=(rows, 3)).astype(np.float32)
    categorical = rng.integers(1, 4, size=(rows, 1))
    score = 2 * continuous[:, 0] - continuous[:, 1] + 1.5 * (categorical[:, 0] == 2) - 0.5
    return TabularTensors.from_numpy(categorical, continuous, (score > 0).astype(np.int64))


def _tabular(name: str, *, seed: int = 0, **hyperparameters: Any) -> BuiltModel:
    return build_model(
        name, hyperparameters, cardinalities=[4], n_continuous=3, n_outputs=2, seed=seed
    )


def _weights(model: BuiltModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


@pytest.mark.parametrize("name", ["LogisticRegression", "TabularMLP"])
def test_tabular_models_learn_a_separable_problem(name: str) -> None:
    """LogisticRegression and TabularMLP reach over 0.9 test accuracy in a few epochs."""
    model = _tabular(name, batch_size=32, learning_rate=0.02)
    result = train(model, _separable(800, seed=1), epochs=5, seed=0, task="classification")
    metrics = evaluate(model, _separable(400, seed=2), task="classification")
    assert metrics["accuracy"] > 0.9
    assert metrics["auc"] > 0.95
    assert result.steps == 5 * 25
    assert result.samples == 5 * 800


def test_small_cnn_learns_handwritten_digits() -> None:
    """SmallCNN on scikit-learn's 8x8 digits reaches over 0.85 test accuracy."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    order = np.random.default_rng(0).permutation(len(images))
    train_rows, test_rows = order[:1400], order[1400:]
    model = build_model("SmallCNN", {"batch_size": 32}, n_outputs=10, seed=0)
    train(
        model,
        ImageTensors.from_numpy(images[train_rows], digits.target[train_rows]),
        epochs=6,
        seed=0,
        task="classification",
    )
    test = ImageTensors.from_numpy(images[test_rows], digits.target[test_rows])
    assert evaluate(model, test, task="classification")["accuracy"] > 0.85


def test_regression_learns_a_linear_target() -> None:
    """LogisticRegression with one output fits y = 3a - 2b + 1 closely (MSE loss)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 2)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] + 1
    data = TabularTensors.from_numpy(np.zeros((512, 0)), x, y)
    model = build_model(
        "LogisticRegression",
        {"batch_size": 32, "learning_rate": 0.05},
        n_continuous=2,
        n_outputs=1,
    )
    first = train(model, data, epochs=1, seed=0, task="regression")
    later = train(model, data, epochs=10, seed=1, task="regression")
    metrics = evaluate(model, data, task="regression")
    assert later.loss < first.loss
    assert metrics["r2"] > 0.99
    assert predict(model, data).shape == (512,)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_twice_with_one_seed_gives_bitwise_equal_weights(optimizer: str) -> None:
    """Same seed, data and start give identical weights; another seed does not."""
    data = _separable(300, seed=3)
    runs = []
    for seed in (5, 5, 6):
        model = _tabular("TabularMLP", batch_size=16, optimizer=optimizer, dropout=0.3)
        train(model, data, epochs=2, seed=seed, task="classification")
        runs.append(_weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_training_leaves_global_random_state_and_threads_alone() -> None:
    """train does not consume torch's global generator nor change the thread count."""
    threads = torch.get_num_threads()
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    model = _tabular("TabularMLP", dropout=0.5, batch_size=8)
    train(model, _separable(64, seed=0), steps=5, seed=1, task="classification")
    predict(model, _separable(8, seed=0))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_steps_count_minibatches_across_epochs() -> None:
    """steps=N runs exactly N optimizer steps, wrapping around the data when needed."""
    model = _tabular("LogisticRegression", batch_size=10)
    result = train(model, _separable(25, seed=0), steps=7, seed=0, task="classification")
    assert result.steps == 7
    assert result.samples == 10 + 10 + 5 + 10 + 10 + 5 + 10


def test_a_fresh_optimizer_each_call_makes_calls_independent() -> None:
    """Two calls of one epoch equal, bitwise, the same two calls on a copy of the model."""
    data = _separable(100, seed=0)
    a, b = _tabular("TabularMLP", batch_size=20), _tabular("TabularMLP", batch_size=20)
    train(a, data, epochs=1, seed=1, task="classification")
    train(b, data, epochs=1, seed=1, task="classification")
    train(a, data, epochs=1, seed=2, task="classification")
    b_state = _weights(b)
    c = _tabular("TabularMLP", batch_size=20)
    c.module.load_state_dict(b_state)
    train(c, data, epochs=1, seed=2, task="classification")
    assert all(torch.equal(v, _weights(c)[k]) for k, v in _weights(a).items())


@pytest.mark.parametrize(("epochs", "steps"), [(None, None), (1, 1), (-1, None), (None, -2)])
def test_train_needs_exactly_one_non_negative_count(epochs: int | None, steps: int | None) -> None:
    """Neither or both of epochs and steps, or a negative count, is a ValueError."""
    with pytest.raises(ValueError, match="epochs"):
        train(
            _tabular("LogisticRegression"),
            _separable(10, 0),
            epochs=epochs,
            steps=steps,
            seed=0,
            task="classification",
        )


def test_train_refuses_targets_outside_the_classes() -> None:
    """A class index the model has no output for is a clear ValueError."""
    data = TabularTensors.from_numpy(np.ones((3, 1)), np.zeros((3, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="from 0 to 1"):
        train(_tabular("LogisticRegression"), data, epochs=1, seed=0, task="classification")


def test_train_refuses_images_for_a_tabular_model() -> None:
    """Feeding image tensors to a tabular model is a TypeError naming the model."""
    images = ImageTensors.from_numpy(np.zeros((2, 1, 8, 8)), np.array([0, 1]))
    with pytest.raises(TypeError, match="LogisticRegression takes tabular"):
        train(_tabular("LogisticRegression"), images, epochs=1, seed=0, task="classification")


def test_training_on_no_rows_does_nothing() -> None:
    """No rows: no steps, NaN loss, weights unchanged."""
    model = _tabular("TabularMLP")
    before = _weights(model)
    result = train(model, _separable(0, 0), epochs=3, seed=0, task="classification")
    assert (result.samples, result.steps) == (0, 0)
    assert np.isnan(result.loss)
    assert all(torch.equal(v, _weights(model)[k]) for k, v in before.items())


def test_predict_gives_probabilities_in_eval_mode_and_restores_the_mode() -> None:
    """Classification predictions are rows of probabilities, repeatable despite dropout."""
    model = _tabular("TabularMLP", dropout=0.5)
    data = _separable(50, seed=0)
    model.module.train()
    first = predict(model, data, batch_size=7)
    assert model.module.training
    assert first.shape == (50, 2)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first, predict(model, data, batch_size=7))
    np.testing.assert_allclose(first, predict(model, data), rtol=1e-5)


def test_predict_works_without_targets_and_on_no_rows() -> None:
    """Data without targets can be predicted; no rows gives an empty [0, classes] array."""
    model = _tabular("LogisticRegression")
    unlabelled = TabularTensors.from_numpy(np.ones((4, 1)), np.zeros((4, 3)))
    assert predict(model, unlabelled).shape == (4, 2)
    assert predict(model, _separable(0, 0)).shape == (0, 2)


@dataclass
class _Encoded:
    categorical: np.ndarray
    continuous: np.ndarray
    target: np.ndarray | None


def test_tabular_tensors_come_from_an_encoders_output() -> None:
    """from_encoded copies codes as int64, values as float32 and integer targets as int64."""
    encoded = _Encoded(np.array([[1, 2]], dtype=np.int32), np.array([[0.5]]), np.array([1]))
    tensors = TabularTensors.from_encoded(encoded)
    assert tensors.categorical.dtype == torch.int64
    assert tensors.continuous.dtype == torch.float32
    assert tensors.target is not None
    assert tensors.target.dtype == torch.int64
    assert len(tensors) == 1
    encoded.categorical[0, 0] = 9
    assert tensors.categorical[0, 0] == 1


def test_tabular_tensors_refuse_rows_that_do_not_line_up() -> None:
    """Categorical, continuous and target arrays of different lengths are a ValueError."""
    with pytest.raises(ValueError, match="rows"):
        TabularTensors.from_numpy(np.ones((3, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \[3\]"):
        TabularTensors.from_numpy(np.ones((3, 1)), np.zeros((3, 3)), np.zeros(2))


def test_trainings_in_parallel_threads_match_sequential_ones() -> None:
    """Concurrent train calls (pods simulated in one process) stay deterministic."""
    data = _separable(200, seed=4)

    def run(seed: int) -> dict[str, torch.Tensor]:
        model = _tabular("TabularMLP", seed=seed, batch_size=8, dropout=0.5)
        train(model, data, epochs=2, seed=seed, task="classification")
        return _weights(model)

    sequential = [run(s) for s in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(run, range(4)))
    for one, other in zip(sequential, parallel, strict=True):
        assert all(torch.equal(one[k], other[k]) for k in one)


def test_dropout_draws_from_its_generator_and_is_off_in_eval_mode() -> None:
    """Seeded Dropout repeats its mask, scales kept values by 1/(1-p), and is identity in eval."""
    layer = Dropout(0.5)
    inputs = torch.ones(1000)
    layer.generator = torch.Generator().manual_seed(0)
    first = layer(inputs)
    layer.generator = torch.Generator().manual_seed(0)
    assert torch.equal(first, layer(inputs))
    assert set(first.unique().tolist()) == {0.0, 2.0}
    layer.eval()
    assert torch.equal(layer(inputs), inputs)


def test_batch_norm_models_never_train_on_a_single_row_batch() -> None:
    """With batch norm, a pass's last one-row batch is skipped instead of failing."""
    model = _tabular("TabularMLP", batch_norm=True, batch_size=10)
    result = train(model, _separable(21, seed=0), epochs=2, seed=0, task="classification")
    assert (result.steps, result.samples) == (4, 40)
    stepped = train(model, _separable(21, seed=0), steps=5, seed=0, task="classification")
    assert (stepped.steps, stepped.samples) == (5, 50)
    with pytest.raises(ValueError, match="single row"):
        train(model, _separable(1, seed=0), epochs=1, seed=0, task="classification")
