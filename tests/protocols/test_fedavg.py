"""Federated averaging over a real hub's relay: accuracy against central training on the
census data, the model's files, early stopping and the bad-input refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from podium.algorithms.model_training import FederatedModelTraining
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.data.census import CENSUS_CATEGORICAL, load_census
from podium.data.splitting import split_frame
from podium.modeller.results import write_results
from podium.models.data_structure import DataStructure
from podium.models.features import Normalisation, TabularEncoder, TabularFeatures, moments_of
from podium.models.registry import build_model
from podium.models.training import TabularTensors, evaluate, train
from podium.protocols.fedavg import FederatedAveraging, TrainingResult
from tests.protocols.conftest import Federation

pytest.importorskip(
    "torch", reason="federated training needs the ml extra (make setup installs it)"
)


STRUCTURE = {"target": "TARGET", "ignore_cols": ["fnlwgt"]}
MODEL: dict[str, Any] = {
    "name": "TabularMLP",
    "hyperparameters": {"hidden": [64, 32], "learning_rate": 0.003},
}
ROUNDS = 8
FORCE = dict.fromkeys(CENSUS_CATEGORICAL, "categorical")


def _task(**protocol: Any) -> FederatedAveraging:
    training = FederatedModelTraining(model=MODEL, data_structure=STRUCTURE, seed=3)
    return FederatedAveraging(algorithm=training, rounds=ROUNDS, **protocol)


def _central_accuracy(shares: list[pd.DataFrame], result: TrainingResult) -> float:
    """The same model trained centrally on the pooled training rows (the pods' own splits,
    the same features and normalisation), tested on the pooled test rows."""
    structure = DataStructure.from_definition(STRUCTURE)
    splits = [structure.split(share, seed=3) for share in shares]
    features = TabularFeatures.from_definition(result.features)
    pooled_train = pd.concat([s.train for s in splits], ignore_index=True)
    pooled_test = pd.concat([s.test for s in splits], ignore_index=True)
    normalisation = Normalisation.from_moments(moments_of(pooled_train, list(features.continuous)))
    encoder = TabularEncoder(features, normalisation)
    model = build_model(
        MODEL["name"],
        MODEL["hyperparameters"],
        cardinalities=encoder.cardinalities,
        n_continuous=encoder.n_continuous,
        n_outputs=len(features.classes),
        seed=3,
    )
    train(model, TabularTensors.from_encoded(encoder.encode(pooled_train)), epochs=ROUNDS, seed=3,
          task="classification")  # fmt: skip
    metrics = evaluate(model, TabularTensors.from_encoded(encoder.encode(pooled_test)),
                       task="classification")  # fmt: skip
    return float(metrics["accuracy"])


@pytest.mark.parametrize(("by", "tolerance"), [("race", 0.01), (None, 0.005)])
async def test_fedavg_reaches_central_accuracy(
    federation: Federation, tmp_path: Path, by: str | None, tolerance: float
) -> None:
    """Three pods (non-IID by race, or IID): FedAvg's test accuracy is within 1 point (0.5
    IID) of the same model trained centrally, and about 0.85."""
    shares = split_frame(load_census(), 3, by=by, seed=0)
    sources = {f"census-{i}": share for i, share in enumerate(shares, start=1)}
    async with federation.pods(sources, force_stypes=FORCE) as pods:
        outcome = await federation.modeller().run_async(_task(), pods)
    result = outcome.result
    assert isinstance(result, TrainingResult)
    assert outcome.completed == tuple(pods)
    federated = result.test_combined["accuracy"]
    central = _central_accuracy(shares, result)
    assert federated > 0.83
    assert abs(federated - central) <= tolerance, (federated, central)
    assert len(result.history) == ROUNDS
    assert set(result.history[-1].metrics) == set(pods)
    manifest = write_results(outcome, _task(), tmp_path / "out")
    card = json.loads((tmp_path / "out" / "model-card.json").read_text())
    assert card["model"]["name"] == "TabularMLP"
    assert card["rounds"] == ROUNDS
    assert (tmp_path / "out" / "metrics.png").stat().st_size > 1000
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == result.weights
    assert json.loads(manifest.read_text())["training"]["weights"] == "model.safetensors"


async def test_early_stopping_keeps_the_best_round(federation: Federation) -> None:
    """A patience of 1 on validation loss with a learning rate that overshoots: training
    stops early and the final weights are those of the best round."""
    frame = load_census().sample(4000, random_state=0)
    training = FederatedModelTraining(
        model={"name": "TabularMLP", "hyperparameters": {"learning_rate": 0.5}},
        data_structure=STRUCTURE,
        seed=1,
    )
    task = FederatedAveraging(
        algorithm=training, rounds=30, early_stopping={"metric": "loss", "patience": 1}
    )
    async with federation.pods({"census": frame}, force_stypes=FORCE) as pods:
        outcome = await federation.modeller().run_async(task, pods)
    result = outcome.result
    assert result.stopped_early
    assert len(result.history) < 30
    losses = [r.combined["loss"] for r in result.history]
    assert result.best_round == losses.index(min(losses))


def test_an_unknown_model_is_refused_before_anything_is_sent() -> None:
    """A model name Podium does not have: a TaskDefinitionError with the known names."""
    with pytest.raises(TaskDefinitionError, match="TabularMLP"):
        FederatedModelTraining(model={"name": "TabularMLPP"}, data_structure=STRUCTURE)


def test_hyperparameters_of_the_wrong_type_are_refused() -> None:
    """hidden given as text: the error names the hyperparameter."""
    with pytest.raises(TaskDefinitionError, match="hidden"):
        FederatedModelTraining(
            model={"name": "TabularMLP", "hyperparameters": {"hidden": "64"}},
            data_structure=STRUCTURE,
        )


async def test_a_target_missing_on_a_pod_aborts_that_pod_with_the_reason(
    federation: Federation,
) -> None:
    """The only pod lacks the target column: it aborts saying so, and the modeller's error
    carries the pod's reason."""
    frame = load_census().sample(2000, random_state=0).drop(columns=["TARGET"])
    async with federation.pods({"census": frame}, force_stypes={}) as pods:
        with pytest.raises(ProtocolError, match="TARGET") as raised:
            await federation.modeller().run_async(_task(), pods)
    assert "alice/census" in str(raised.value)
