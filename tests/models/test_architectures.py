"""The built-in architectures and the registry that builds them by name."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch

from podium.core.errors import TaskDefinitionError
from podium.models.architectures import (
    LogisticRegression,
    SmallCNN,
    TabularMLP,
    default_embedding_dim,
)
from podium.models.registry import (
    MODELS,
    SmallCNNHyperparameters,
    TabularMLPHyperparameters,
    build_model,
    model_spec,
    parse_hyperparameters,
)


def _inputs(rows: int, cardinalities: list[int], n_cont: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, c, (rows, 1), generator=generator) for c in cardinalities]
    categorical = torch.cat(codes, dim=1) if codes else torch.zeros(rows, 0, dtype=torch.int64)
    return categorical, torch.randn(rows, n_cont, generator=generator)


@pytest.mark.parametrize("model_type", [LogisticRegression, TabularMLP])
@pytest.mark.parametrize(("cardinalities", "n_cont"), [([3, 5], 4), ([], 4), ([3, 5], 0), ([2], 1)])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_tabular_forward_gives_one_logit_per_output(
    model_type: Any, cardinalities: list[int], n_cont: int, n_outputs: int
) -> None:
    """Tabular models map [n, n_cat] codes and [n, n_cont] values to [n, n_outputs]."""
    model = model_type(cardinalities, n_cont, n_outputs)
    out = model(*_inputs(7, cardinalities, n_cont))
    assert out.shape == (7, n_outputs)
    assert out.dtype == torch.float32


def test_logistic_regression_is_linear_in_one_hot_features() -> None:
    """LogisticRegression's logits equal a linear map of one-hot codes plus continuous."""
    model = LogisticRegression([3, 2], 2, 2)
    categorical, continuous = _inputs(5, [3, 2], 2)
    one_hot = torch.cat(
        [
            torch.nn.functional.one_hot(categorical[:, 0], 3),
            torch.nn.functional.one_hot(categorical[:, 1], 2),
        ],
        dim=1,
    ).float()
    state = model.state_dict()
    weight = torch.cat([state["embeddings.0.weight"], state["embeddings.1.weight"]], dim=0)
    assert model.linear is not None
    expected = one_hot @ weight + continuous @ model.linear.weight.T + model.bias
    torch.testing.assert_close(model(categorical, continuous), expected)


def test_tabular_mlp_embedding_widths_follow_the_cardinality() -> None:
    """Each embedding is min(16, (cardinality + 1) // 2) wide unless embedding_dim is set."""
    model = TabularMLP([3, 100], 1, 2)
    assert [e.embedding_dim for e in model.embeddings] == [2, 16]
    assert default_embedding_dim(1) == 1
    fixed = TabularMLP([3, 100], 1, 2, embedding_dim=5)
    assert [e.embedding_dim for e in fixed.embeddings] == [5, 5]


def test_tabular_mlp_has_no_batch_norm_unless_asked() -> None:
    """Batch norm is off by default (its statistics do not average) and on when asked."""

    def has_bn(model: torch.nn.Module) -> bool:
        return any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())

    assert not has_bn(TabularMLP([3], 2, 2))
    assert has_bn(TabularMLP([3], 2, 2, batch_norm=True))


def test_tabular_models_refuse_inputs_of_the_wrong_width() -> None:
    """A categorical input with another number of columns is a clear ValueError."""
    model = TabularMLP([3, 5], 2, 2)
    categorical, continuous = _inputs(4, [3], 2)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        model(categorical, continuous)


def test_tabular_models_need_some_input() -> None:
    """A model with neither categorical nor continuous inputs cannot be built."""
    with pytest.raises(ValueError, match="at least one"):
        TabularMLP([], 0, 2)


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (28, 3), (16, 2)])
def test_small_cnn_classifies_images_of_several_sizes(size: int, channels: int) -> None:
    """SmallCNN maps [n, C, H, W] images to [n, n_outputs] logits for 8x8 and 28x28."""
    model = SmallCNN(channels, 10, image_size=size)
    assert model(torch.zeros(3, channels, size, size)).shape == (3, 10)


def test_small_cnn_refuses_the_wrong_number_of_channels() -> None:
    """Images with another channel count than the model's are a clear ValueError."""
    with pytest.raises(ValueError, match=r"\[n, 1, height, width\]"):
        SmallCNN(1, 10)(torch.zeros(2, 3, 8, 8))


def test_models_are_known_by_name_with_or_without_the_bitfount_prefix() -> None:
    """MODELS holds the three models; 'bitfount.' is dropped, other names must match."""
    assert set(MODELS) == {"LogisticRegression", "TabularMLP", "SmallCNN"}
    assert model_spec("bitfount.TabularMLP").name == "TabularMLP"
    assert model_spec("SmallCNN").kind == "image"
    assert model_spec("LogisticRegression").kind == "tabular"
    with pytest.raises(TaskDefinitionError):
        model_spec("tabularmlp")


def test_models_mapping_is_read_only() -> None:
    """MODELS cannot be changed by a caller."""
    with pytest.raises(TypeError):
        MODELS["Other"] = MODELS["SmallCNN"]  # type: ignore[index]


def test_an_unknown_model_name_suggests_the_closest_and_lists_all() -> None:
    """An unknown name raises TaskDefinitionError with a did-you-mean and the known names."""
    with pytest.raises(TaskDefinitionError) as caught:
        build_model("TabularMPL", {}, n_continuous=2, n_outputs=2)
    message = str(caught.value)
    assert "did you mean 'TabularMLP'" in message
    assert "LogisticRegression, TabularMLP, SmallCNN" in message


@pytest.mark.parametrize(
    ("name", "hyperparameters", "named", "hint"),
    [
        ("TabularMLP", {"hidden": "64"}, "'hidden'", "e.g. [64, 32]"),
        ("TabularMLP", {"hidden": [64, "32"]}, "'hidden' item 1", "integers"),
        ("TabularMLP", {"hidden": [0]}, "'hidden' item 0", "from 1 to 4096"),
        ("TabularMLP", {"hidden": [8] * 9}, "'hidden'", "1 to 8"),
        ("TabularMLP", {"dropout": "x"}, "'dropout'", "from 0 to 0.9"),
        ("TabularMLP", {"dropout": 0.95}, "'dropout'", "from 0 to 0.9"),
        ("TabularMLP", {"embedding_dim": 2.5}, "'embedding_dim'", "integer"),
        ("TabularMLP", {"batch_norm": "yes"}, "'batch_norm'", "true or false"),
        ("LogisticRegression", {"learning_rate": 0}, "'learning_rate'", "above 0"),
        ("LogisticRegression", {"learning_rate": "0.1"}, "'learning_rate'", "above 0"),
        ("LogisticRegression", {"batch_size": 32.0}, "'batch_size'", "integer"),
        ("LogisticRegression", {"optimizer": "rmsprop"}, "'optimizer'", '"adam" or "sgd"'),
        ("LogisticRegression", {"weight_decay": -1.0}, "'weight_decay'", "from 0 up"),
        ("SmallCNN", {"channels": [16]}, "'channels'", "2 integers"),
    ],
)
def test_a_bad_hyperparameter_is_named_with_its_fix(
    name: str, hyperparameters: dict[str, Any], named: str, hint: str
) -> None:
    """A wrong type or value raises TaskDefinitionError naming it and what to give."""
    with pytest.raises(TaskDefinitionError) as caught:
        build_model(name, hyperparameters, n_continuous=2, n_outputs=2)
    assert f"{name}: hyperparameter {named}" in str(caught.value)
    assert hint in str(caught.value)


def test_an_unknown_hyperparameter_is_refused_with_the_known_ones() -> None:
    """A key the model does not take raises TaskDefinitionError listing the known keys."""
    with pytest.raises(TaskDefinitionError) as caught:
        build_model("TabularMLP", {"hiden": [8]}, n_continuous=2, n_outputs=2)
    assert "'hiden' is not a hyperparameter of TabularMLP" in str(caught.value)
    assert "hidden" in str(caught.value).split("known:")[1]


def test_hyperparameters_fill_in_defaults_and_give_a_canonical_definition() -> None:
    """Parsed hyperparameters hold every default; to_definition is a sorted JSON dict."""
    built = build_model("TabularMLP", {"hidden": [8]}, n_continuous=2, n_outputs=2)
    assert isinstance(built.hyperparameters, TabularMLPHyperparameters)
    assert built.hyperparameters.to_definition() == {
        "batch_norm": False,
        "batch_size": 256,
        "dropout": 0.1,
        "embedding_dim": None,
        "hidden": [8],
        "learning_rate": 1e-3,
        "optimizer": "adam",
        "weight_decay": 0.0,
    }
    logistic = build_model("LogisticRegression", {}, n_continuous=2, n_outputs=2)
    assert logistic.hyperparameters.learning_rate == 1e-2
    cnn = build_model("SmallCNN", {}, n_outputs=10)
    assert isinstance(cnn.hyperparameters, SmallCNNHyperparameters)
    assert cnn.hyperparameters.learning_rate == 1e-3


def test_build_model_gives_the_right_module_kind_and_shape() -> None:
    """build_model returns the named module, its kind and the requested output width."""
    built = build_model(
        "bitfount.TabularMLP",
        {"hidden": [8, 4]},
        cardinalities=[3],
        n_continuous=2,
        n_outputs=3,
    )
    assert isinstance(built.module, TabularMLP)
    assert (built.name, built.kind, built.n_outputs) == ("TabularMLP", "tabular", 3)
    assert built.module(*_inputs(5, [3], 2)).shape == (5, 3)
    image = build_model("SmallCNN", {}, n_outputs=10, in_channels=1, image_size=28)
    assert image.kind == "image"
    assert image.module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_build_model_refuses_a_tabular_model_without_features() -> None:
    """No categorical and no continuous inputs is a TaskDefinitionError saying so."""
    with pytest.raises(TaskDefinitionError, match="no input features"):
        build_model("LogisticRegression", {}, n_outputs=2)


def _state(name: str, seed: int, **shapes: Any) -> dict[str, torch.Tensor]:
    return build_model(name, {}, seed=seed, **shapes).module.state_dict()


@pytest.mark.parametrize(
    ("name", "shapes"),
    [
        ("TabularMLP", {"cardinalities": [3, 4], "n_continuous": 2, "n_outputs": 2}),
        ("LogisticRegression", {"cardinalities": [3], "n_continuous": 2, "n_outputs": 3}),
        ("SmallCNN", {"n_outputs": 10}),
    ],
)
def test_initial_weights_depend_only_on_the_seed(name: str, shapes: dict[str, Any]) -> None:
    """The same seed gives bitwise equal weights, another seed different ones."""
    first, again = _state(name, 7, **shapes), _state(name, 7, **shapes)
    other = _state(name, 8, **shapes)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_building_a_model_leaves_the_global_random_state_alone() -> None:
    """build_model does not consume or reseed torch's global generator."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("TabularMLP", {}, cardinalities=[3], n_continuous=2, n_outputs=2, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_models_built_in_parallel_threads_have_their_seeds_weights() -> None:
    """Concurrent build_model calls give the same initial weights as sequential ones."""

    def build(seed: int) -> dict[str, torch.Tensor]:
        hyperparameters = {"hidden": [512, 512]}
        return build_model(
            "TabularMLP", hyperparameters, n_continuous=4, n_outputs=2, seed=seed
        ).module.state_dict()

    sequential = [build(s) for s in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(build, range(8)))
    for one, other in zip(sequential, parallel, strict=True):
        assert all(torch.equal(one[k], other[k]) for k in one)


def test_hyperparameters_can_be_checked_before_any_shapes_are_known() -> None:
    """parse_hyperparameters fills defaults and refuses bad values without building."""
    parsed = parse_hyperparameters("bitfount.LogisticRegression", {"batch_size": 8})
    assert parsed.to_definition()["batch_size"] == 8
    assert parsed.learning_rate == 1e-2
    with pytest.raises(TaskDefinitionError, match="'hidden'"):
        parse_hyperparameters("TabularMLP", {"hidden": "64"})
