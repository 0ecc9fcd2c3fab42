"""A saved model named in a task file: evaluation and inference from YAML.

Federated training writes ``model.safetensors`` beside ``model-card.json``
(:func:`podium.modeller.results.write_results`). A task file names the card::

    task:
      protocol: {name: ResultsOnly}
      algorithm: {name: ModelEvaluation}
      model: {card: model/model-card.json}     # relative to the task file

:func:`apply_saved_model` reads the card and the weights beside it, puts the model's
definition, features, normalisation and the weights' SHA-256 into the arguments of each
algorithm that takes a trained model (so the pods get them signed), and returns the
weights, which the modeller attaches to those algorithms (:func:`attach_weights`) and
sends as safetensors. The weights never go into the task definition itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.core.errors import ConfigError
from podium.protocols.base import ProtocolFactory

__all__ = ["apply_saved_model", "attach_weights"]

#: The algorithms that take a trained model (its features, normalisation and weights).
TAKES_TRAINED_MODEL = frozenset({"ModelEvaluation", "ModelInference"})
_WEIGHTS_FILE = "model.safetensors"


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the model card ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: the model card is not JSON ({error.msg})") from None
    missing = [k for k in ("model", "features", "normalisation") if k not in card]
    if missing:
        raise ConfigError(
            f"{path}: not a model card (no {', '.join(missing)}); name the "
            "model-card.json that federated training wrote"
        )
    return dict(card)


def apply_saved_model(
    definition: Mapping[str, Any], *, base: Path
) -> tuple[dict[str, Any], bytes | None]:
    """The task definition with the saved model it names filled in, and its weights
    (None when the task names no saved model).

    Raises:
        ConfigError: The card or its weights cannot be read, or are not a model's.
    """
    model = definition.get("model")
    if not isinstance(model, Mapping) or "card" not in model:
        return dict(definition), None
    card_path = (base / str(model["card"])).resolve()
    card = _read_card(card_path)
    weights_path = card_path.with_name(_WEIGHTS_FILE)
    try:
        weights = weights_path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{weights_path}: cannot read the model's weights ({error.strerror}); they "
            f"belong beside the card as {_WEIGHTS_FILE}"
        ) from None
    filled = copy.deepcopy(dict(definition))
    filled["model"] = card["model"]
    algorithms = filled.get("algorithm")
    listed = algorithms if isinstance(algorithms, list) else [algorithms]
    for item in listed:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name", "")).removeprefix("bitfount.")
        if name in TAKES_TRAINED_MODEL:
            arguments = dict(item.get("arguments") or {})
            arguments.setdefault("model", card["model"])
            arguments.setdefault("features", card["features"])
            arguments.setdefault("normalisation", card["normalisation"])
            arguments["weights_sha256"] = hashlib.sha256(weights).hexdigest()
            item["arguments"] = arguments
    return filled, weights


def attach_weights(factory: ProtocolFactory, weights: bytes) -> None:
    """Give every algorithm of ``factory`` that takes a trained model its weights."""
    for algorithm in factory.algorithms:
        attach = getattr(algorithm, "attach_weights", None)
        if attach is not None:
            attach(weights)
