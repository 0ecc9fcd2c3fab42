"""Weights as safetensors bytes: round trips, strict loading and weighted averages."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.models.registry import build_model
from podium.models.weights import (
    WeightsFormatError,
    WeightsMismatchError,
    bytes_to_state,
    load_into,
    state_to_bytes,
    weighted_average,
)


def _mlp(seed: int = 0, hidden: list[int] | None = None) -> torch.nn.Module:
    return build_model(
        "TabularMLP",
        {"hidden": hidden or [8, 4], "batch_norm": True},
        cardinalities=[3, 4],
        n_continuous=2,
        n_outputs=2,
        seed=seed,
    ).module


def _blob(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def test_a_module_round_trips_exactly_with_its_metadata() -> None:
    """Every tensor comes back bitwise equal with its dtype, and the metadata too."""
    module = _mlp()
    data = state_to_bytes(module, metadata={"samples": "12", "loss": "0.5"})
    state, metadata = bytes_to_state(data)
    expected = module.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert state[name].dtype == tensor.dtype
        assert torch.equal(state[name], tensor)
    assert metadata == {"samples": "12", "loss": "0.5"}


def test_weights_without_metadata_have_empty_metadata() -> None:
    """No metadata given reads back as an empty dict."""
    _, metadata = bytes_to_state(state_to_bytes({"w": torch.ones(2)}))
    assert metadata == {}


def test_state_to_bytes_keeps_half_precision_and_copies_views() -> None:
    """A float16 tensor stays float16, and a non-contiguous view is saved by value."""
    base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    state, _ = bytes_to_state(
        state_to_bytes({"half": torch.ones(3, dtype=torch.float16), "view": base.T})
    )
    assert state["half"].dtype == torch.float16
    assert torch.equal(state["view"], base.T)


def test_state_to_bytes_refuses_metadata_that_is_not_strings() -> None:
    """Metadata values must be strings (safetensors' format)."""
    with pytest.raises(TypeError, match="strings to strings"):
        state_to_bytes({"w": torch.ones(1)}, metadata={"samples": 12})  # type: ignore[dict-item]


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh.", min_size=1, max_size=8),
        arrays(np.float32, array_shapes(min_dims=0, max_dims=3, max_side=4)),
        max_size=4,
    ),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_any_float_state_round_trips(
    tensors: dict[str, np.ndarray], metadata: dict[str, str]
) -> None:
    """Any float32 state dict and string metadata come back bitwise the same."""
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    back, meta = bytes_to_state(state_to_bytes(state, metadata=metadata))
    assert back.keys() == state.keys()
    assert all(
        torch.equal(
            back[k],
            v,
        )
        or bool(torch.isnan(v).any())
        for k, v in state.items()
    )
    assert all(np.array_equal(back[k].numpy(), v.numpy(), equal_nan=True) for k, v in state.items())
    assert meta == metadata


@pytest.mark.parametrize(
    ("blob", "says"),
    [
        (b"", "truncated"),
        (b"\x05\x00\x00", "truncated"),
        (struct.pack("<Q", 1000) + b"{}", "only 2 follow"),
        (struct.pack("<Q", 2**40), "above"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid JSON"),
        (_blob([1, 2]), "not a JSON object"),
        (_blob({"__metadata__": {"a": 1}}), "object of strings"),
        (_blob({"__metadata__": "x"}), "object of strings"),
        (_blob({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}), "safetensors"),
        (b"garbage that is no safetensors at all", "header"),
    ],
)
def test_malformed_bytes_are_a_weights_format_error(blob: bytes, says: str) -> None:
    """Truncated, oversized, non-JSON or inconsistent blobs raise WeightsFormatError."""
    with pytest.raises(WeightsFormatError, match=says):
        bytes_to_state(blob)


def test_a_truncated_real_blob_is_a_weights_format_error() -> None:
    """Cutting real weights short anywhere raises WeightsFormatError, never another error."""
    data = state_to_bytes(_mlp())
    for cut in (4, 8, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(WeightsFormatError):
            bytes_to_state(data[:cut])


def test_format_and_mismatch_errors_sit_in_the_error_tree() -> None:
    """A malformed blob is a ProtocolError; weights of another architecture a task error."""
    assert issubclass(WeightsFormatError, ProtocolError)
    assert issubclass(WeightsMismatchError, TaskDefinitionError)


def test_load_into_copies_every_tensor() -> None:
    """After load_into the module holds exactly the given weights."""
    source, target = _mlp(seed=1), _mlp(seed=2)
    state, _ = bytes_to_state(state_to_bytes(source))
    load_into(target, state)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_load_into_names_each_tensor_whose_shape_differs() -> None:
    """Weights of another width raise WeightsMismatchError with names and both shapes."""
    state = _mlp(hidden=[16, 4]).state_dict()
    with pytest.raises(WeightsMismatchError) as caught:
        load_into(_mlp(hidden=[8, 4]), state)
    message = str(caught.value)
    assert "body.0.weight: expected [8, 6] float32, got [16, 6] float32" in message
    assert "body.0.bias: expected [8] float32, got [16] float32" in message
    assert "body.4.weight: expected [4, 8] float32, got [4, 16] float32" in message


def test_load_into_names_missing_unexpected_and_retyped_tensors() -> None:
    """Missing, extra and other-dtype tensors are each listed, and nothing is loaded."""
    module = _mlp()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = dict(module.state_dict())
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["head.weight"] = state["head.weight"].double() + 1
    with pytest.raises(WeightsMismatchError) as caught:
        load_into(module, state)
    message = str(caught.value)
    assert "head.bias: missing (expected [2] float32)" in message
    assert "extra.weight: unexpected (got [2] float32)" in message
    assert "head.weight: expected [2, 4] float32, got [2, 4] float64" in message
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())


def test_weighted_average_matches_a_hand_computation() -> None:
    """Weights are normalised: (1*a + 3*b) / 4 for floats, the first state's integers."""
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([5.0, -2.0]), "n": torch.tensor(9)}
    result = weighted_average([(a, 1.0), (b, 3.0)])
    assert torch.equal(result["w"], torch.tensor([4.0, -1.0]))
    assert result["w"].dtype == torch.float32
    assert result["n"].item() == 5
    assert result["n"].dtype == torch.int64


def test_weighted_average_is_computed_in_double_precision() -> None:
    """Averaging float16 tensors keeps float16 but rounds once, from float64."""
    a = {"w": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([1.0009765625], dtype=torch.float16)}
    result = weighted_average([(a, 1.0), (b, 1.0)])
    assert result["w"].dtype == torch.float16
    expected = torch.tensor([(1.0 + 1.0009765625) / 2], dtype=torch.float64).half()
    assert torch.equal(result["w"], expected)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.lists(st.floats(0.1, 100.0), min_size=1, max_size=5))
def test_averaging_copies_of_one_state_gives_that_state(weights: list[float]) -> None:
    """Whatever the weights, the average of identical states is that state."""
    state = _mlp(seed=3).state_dict()
    result = weighted_average([(state, w) for w in weights])
    for name, tensor in state.items():
        torch.testing.assert_close(result[name], tensor, rtol=1e-6, atol=1e-7)


def test_weighted_average_refuses_states_of_other_shapes() -> None:
    """States that differ in a tensor's shape raise WeightsMismatchError naming it."""
    with pytest.raises(WeightsMismatchError, match=r"state 1 .*body.0.weight"):
        weighted_average(
            [(_mlp(hidden=[8, 4]).state_dict(), 1.0), (_mlp(hidden=[16, 4]).state_dict(), 1.0)]
        )


@pytest.mark.parametrize("weights", [[], [0.0, 0.0], [-1.0, 2.0], [float("nan"), 1.0]])
def test_weighted_average_refuses_bad_weights(weights: list[float]) -> None:
    """No states, all-zero, negative or NaN weights are a ValueError."""
    state = {"w": torch.ones(1)}
    with pytest.raises(ValueError, match=r"weight|at least one"):
        weighted_average([(state, w) for w in weights])


def test_an_empty_state_with_empty_metadata_round_trips() -> None:
    """No tensors and empty metadata give well-formed bytes (safetensors 0.8 alone does not)."""
    assert bytes_to_state(state_to_bytes({}, metadata={})) == ({}, {})
