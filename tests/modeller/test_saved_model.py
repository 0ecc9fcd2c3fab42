"""A saved model named in a task file: the card and weights read, the arguments filled
in, the weights bound by their hash; each bad file a clear error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from podium.core.errors import ConfigError, TaskDefinitionError
from podium.data.schema import infer_schema
from podium.data.sources.frame_source import DataFrameSource
from podium.modeller.saved_model import apply_saved_model, attach_weights
from podium.models.data_structure import DataStructure
from podium.models.features import Normalisation, TabularFeatures, moments_of
from podium.models.registry import build_model
from podium.models.weights import state_to_bytes
from podium.protocols.registry import protocol_from_definition

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})


def _saved(folder: Path) -> bytes:
    """A model card and weights as federated training writes them."""
    schema = infer_schema(DataFrameSource(FRAME), name="t", force_stypes={"y": "categorical"})
    features = TabularFeatures.from_schemas(
        [schema.to_dict()], DataStructure.from_definition({"target": "y"})
    )
    normalisation = Normalisation.from_moments(moments_of(FRAME, ["x"]))
    model = build_model("LogisticRegression", {}, n_continuous=1, n_outputs=2)
    weights = state_to_bytes(model.module)
    folder.mkdir(parents=True)
    card = {
        "model": {"name": "LogisticRegression", "hyperparameters": {}},
        "features": features.to_definition(),
        "normalisation": normalisation.to_definition(),
    }
    (folder / "model-card.json").write_text(json.dumps(card))
    (folder / "model.safetensors").write_bytes(weights)
    return weights


def _task(algorithm: str = "ModelEvaluation") -> dict[str, Any]:
    return {
        "protocol": {"name": "ResultsOnly", "arguments": {}},
        "algorithm": [{"name": algorithm, "arguments": {}}],
        "model": {"card": "model/model-card.json"},
    }


def test_the_card_fills_in_the_algorithm_and_the_weights_attach(tmp_path: Path) -> None:
    """The algorithm gets the card's model, features, normalisation and the weights'
    hash; the factory built from it takes the weights as its payload."""
    weights = _saved(tmp_path / "model")
    definition, loaded = apply_saved_model(_task(), base=tmp_path)
    assert loaded == weights
    arguments = definition["algorithm"][0]["arguments"]
    assert arguments["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert definition["model"] == {"name": "LogisticRegression", "hyperparameters": {}}
    factory = protocol_from_definition(definition)
    attach_weights(factory, weights)
    assert factory.algorithms[0].initial_payload() == weights
    assert "weights" not in json.dumps(definition).replace("weights_sha256", "")


def test_other_weights_are_refused(tmp_path: Path) -> None:
    """Weights that are not the ones the definition's hash names: TaskDefinitionError."""
    _saved(tmp_path / "model")
    definition, _ = apply_saved_model(_task("ModelInference"), base=tmp_path)
    factory = protocol_from_definition(definition)
    with pytest.raises(TaskDefinitionError, match="not the one the task names"):
        attach_weights(factory, b"other weights")


def test_a_task_without_a_saved_model_is_left_alone(tmp_path: Path) -> None:
    """No card in the task: the definition comes back as it was, with no weights."""
    task = {"protocol": {"name": "ResultsOnly"}, "algorithm": [{"name": "Statistics"}]}
    assert apply_saved_model(task, base=tmp_path) == (task, None)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda folder: (folder / "model-card.json").unlink(), "cannot read the model card"),
        (lambda folder: (folder / "model-card.json").write_text("{"), "is not JSON"),
        (lambda folder: (folder / "model-card.json").write_text("{}"), "not a model card"),
        (lambda folder: (folder / "model.safetensors").unlink(), "cannot read the model's weights"),
    ],
)
def test_a_bad_saved_model_is_a_config_error(tmp_path: Path, break_it: Any, message: str) -> None:
    """A missing or broken card, or missing weights: a ConfigError naming the file."""
    _saved(tmp_path / "model")
    break_it(tmp_path / "model")
    with pytest.raises(ConfigError, match=message):
        apply_saved_model(_task(), base=tmp_path)
