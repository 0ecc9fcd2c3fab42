"""Model weights as safetensors bytes, strict loading, and weighted averaging.

Weights only ever travel as `safetensors <https://github.com/huggingface/safetensors>`_:
a little-endian 8-byte header length, a JSON header (tensor names, dtypes, shapes, offsets
and an optional ``__metadata__`` object of strings) and the raw tensor bytes. Nothing here
unpickles anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load
from safetensors.torch import save as _save
from torch import Tensor, nn

from podium.core.errors import ProtocolError, TaskDefinitionError

__all__ = [
    "WeightsFormatError",
    "WeightsMismatchError",
    "bytes_to_state",
    "load_into",
    "state_to_bytes",
    "weighted_average",
]

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The largest safetensors header accepted (the format's own limit)."""

_LENGTH_BYTES = 8


class WeightsFormatError(ProtocolError):
    """Bytes that are not well-formed safetensors weights."""


class WeightsMismatchError(TaskDefinitionError):
    """Weights whose tensors do not match the model's architecture."""


def state_to_bytes(
    module_or_state: nn.Module | Mapping[str, Tensor],
    *,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """The module's (or state dict's) tensors as safetensors bytes, with ``metadata``.

    Tensors keep their dtype; they are copied to contiguous CPU memory first.

    Raises:
        TypeError: ``metadata`` is not a mapping of strings to strings.
    """
    if isinstance(module_or_state, nn.Module):
        state: Mapping[str, Tensor] = module_or_state.state_dict()
    else:
        state = module_or_state
    if metadata is not None:
        wrong = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if wrong:
            raise TypeError(f"weights metadata must map strings to strings; fix {wrong}")
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    # An empty metadata dict is written as None: safetensors 0.8 writes a malformed header
    # for no tensors with empty metadata, and both read back as no metadata.
    return _save(tensors, metadata=dict(metadata) if metadata else None)


def bytes_to_state(data: bytes) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata in safetensors ``data``.

    Raises:
        WeightsFormatError: ``data`` is truncated, has a malformed header or metadata, or
            is otherwise not safetensors.
    """
    metadata = _read_metadata(data)
    try:
        state = _load(bytes(data))
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise WeightsFormatError(f"the weights are not valid safetensors: {error}") from None
    return state, metadata


def _read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors ``data``, checking the header's framing."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WeightsFormatError(f"weights must be bytes, got {type(data).__name__}")
    view = memoryview(data)
    if len(view) < _LENGTH_BYTES:
        raise WeightsFormatError(
            f"the weights are truncated: {len(view)} bytes, fewer than the 8-byte header length"
        )
    size = int.from_bytes(view[:_LENGTH_BYTES], "little")
    if size > MAX_HEADER_BYTES:
        raise WeightsFormatError(
            f"the weights' header claims {size} bytes, above the {MAX_HEADER_BYTES} limit"
        )
    if _LENGTH_BYTES + size > len(view):
        raise WeightsFormatError(
            f"the weights are truncated: the header claims {size} bytes but only "
            f"{len(view) - _LENGTH_BYTES} follow"
        )
    try:
        header = json.loads(
            bytes(view[_LENGTH_BYTES : _LENGTH_BYTES + size]), object_pairs_hook=_no_duplicates
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise WeightsFormatError(f"the weights' header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise WeightsFormatError("the weights' header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str) for value in metadata.values()
    ):
        raise WeightsFormatError("the weights' __metadata__ is not an object of strings")
    return dict(metadata)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _describe(tensor: Tensor) -> str:
    return f"{list(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')}"


def _differences(expected: Mapping[str, Tensor], got: Mapping[str, Tensor]) -> list[str]:
    """One line per tensor of ``got`` that does not match ``expected``."""
    problems = [
        f"{name}: missing (expected {_describe(expected[name])})"
        for name in expected
        if name not in got
    ]
    problems += [
        f"{name}: unexpected (got {_describe(got[name])})" for name in got if name not in expected
    ]
    for name, want in expected.items():
        have = got.get(name)
        if have is not None and (have.shape != want.shape or have.dtype != want.dtype):
            problems.append(f"{name}: expected {_describe(want)}, got {_describe(have)}")
    return problems


def load_into(module: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Copy ``state`` into ``module``'s parameters and buffers, strictly.

    Raises:
        WeightsMismatchError: A tensor is missing, unexpected, or of another shape or dtype
            than the architecture's; the message lists each one.
    """
    problems = _differences(module.state_dict(), state)
    if problems:
        raise WeightsMismatchError(
            f"weights that do not match the {type(module).__name__} architecture: "
            + "; ".join(problems)
            + ". Build the model with the same name, hyperparameters and data shapes as "
            "the weights were trained with."
        )
    with torch.no_grad():
        module.load_state_dict(dict(state), strict=True)


def weighted_average(states: Sequence[tuple[Mapping[str, Tensor], float]]) -> dict[str, Tensor]:
    """The average of ``states`` with their weights (normalised to sum to 1).

    Floating tensors are averaged in float64 and cast back to their dtype; integer and
    boolean tensors (such as batch-norm counters) take the first state's value.

    Raises:
        ValueError: No states, or a weight that is negative, not finite, or all weights 0.
        WeightsMismatchError: The states do not all have the same tensors, shapes and dtypes.
    """
    if not states:
        raise ValueError("weighted_average needs at least one state")
    weights = [float(w) for _, w in states]
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, at least 0 and not all 0, got {weights}")
    first = states[0][0]
    for index, (state, _) in enumerate(states[1:], start=1):
        problems = _differences(first, state)
        if problems:
            raise WeightsMismatchError(
                f"state {index} does not match state 0: " + "; ".join(problems)
            )
    total = math.fsum(weights)
    result: dict[str, Tensor] = {}
    for name, reference in first.items():
        if not (reference.is_floating_point() or reference.is_complex()):
            result[name] = reference.detach().to("cpu").clone()
            continue
        wide = torch.complex128 if reference.is_complex() else torch.float64
        accumulated = torch.zeros(reference.shape, dtype=wide)
        for (state, _), weight in zip(states, weights, strict=True):
            accumulated += state[name].detach().to("cpu", wide) * (weight / total)
        result[name] = accumulated.to(reference.dtype)
    return result
