"""Model evaluation and inference on pods over a real hub's relay: metrics equal to local
evaluation, weights checked against the signed hash and the architecture, predictions in
CSV reports on the pods, usage limits and the row-level refusal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from podium.algorithms.csv_report import CSVReportAlgorithm
from podium.algorithms.model_eval import ModelEvaluation, ModelInference
from podium.config.task import RunOptions
from podium.core.errors import TaskDefinitionError
from podium.data.census import CENSUS_CATEGORICAL, load_census
from podium.data.schema import infer_schema
from podium.data.sources.frame_source import DataFrameSource
from podium.hub.client import HubClient
from podium.models.data_structure import DataStructure
from podium.models.features import Normalisation, TabularEncoder, TabularFeatures, moments_of
from podium.pod.policy import PodPolicy
from podium.protocols import registry
from podium.protocols.inference_report import (
    InferenceAndCSVReport,
    InferenceAndReturnCSVReport,
    InferenceReportResult,
)
from podium.protocols.results_only import ResultsOnly
from tests.protocols.conftest import MODELLER, Federation

torch = pytest.importorskip("torch", reason="models need the ml extra (make setup installs it)")

from podium.models.registry import BuiltModel, build_model  # noqa: E402 - after the skip
from podium.models.training import TabularTensors, evaluate, predict, train  # noqa: E402
from podium.models.weights import state_to_bytes  # noqa: E402

STRUCTURE: dict[str, Any] = {"target": "TARGET", "ignore_cols": ["fnlwgt"]}
MODEL: dict[str, Any] = {"name": "TabularMLP", "hyperparameters": {"hidden": [16]}}
FORCE = dict.fromkeys(CENSUS_CATEGORICAL, "categorical")
SEED = 3


@dataclass(frozen=True)
class Trained:
    """A small model trained locally on the pooled shares, as a modeller would hold it."""

    shares: dict[str, pd.DataFrame]
    features: TabularFeatures
    normalisation: Normalisation
    model: BuiltModel
    weights: bytes

    def evaluation(self, **options: Any) -> ModelEvaluation:
        return ModelEvaluation(
            model=MODEL,
            features=self.features,
            normalisation=self.normalisation,
            weights=self.weights,
            **options,
        )

    def inference(self, **options: Any) -> ModelInference:
        return ModelInference(
            model=MODEL,
            features=self.features,
            normalisation=self.normalisation,
            weights=self.weights,
            **options,
        )

    def tensors(self, frame: pd.DataFrame) -> TabularTensors:
        encoder = TabularEncoder(self.features, self.normalisation)
        return TabularTensors.from_encoded(encoder.encode(frame))


@pytest.fixture(scope="module")
def trained() -> Trained:
    sample = load_census().sample(1000, random_state=0).reset_index(drop=True)
    shares = {"census-1": sample.iloc[:600].reset_index(drop=True)}
    shares["census-2"] = sample.iloc[600:].reset_index(drop=True)
    structure = DataStructure.from_definition(STRUCTURE)
    schemas = [
        infer_schema(DataFrameSource(frame), name=name, force_stypes=FORCE)
        for name, frame in shares.items()
    ]
    features = TabularFeatures.from_schemas(schemas, structure)
    normalisation = Normalisation.from_moments(moments_of(sample, features.continuous))
    encoder = TabularEncoder(features, normalisation)
    model = build_model(
        MODEL["name"],
        MODEL["hyperparameters"],
        cardinalities=encoder.cardinalities,
        n_continuous=encoder.n_continuous,
        n_outputs=len(features.classes),
        seed=SEED,
    )
    data = TabularTensors.from_encoded(encoder.encode(sample))
    train(model, data, epochs=2, seed=SEED, task="classification")
    return Trained(shares, features, normalisation, model, state_to_bytes(model.module))


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The new protocols and algorithms in the pods' registries."""
    protocols = {cls.name: cls for cls in (InferenceAndCSVReport, InferenceAndReturnCSVReport)}
    algorithms = {cls.name: cls for cls in (ModelEvaluation, ModelInference)}
    monkeypatch.setattr(
        registry, "PROTOCOLS", MappingProxyType({**registry.PROTOCOLS, **protocols})
    )
    monkeypatch.setattr(
        registry, "ALGORITHMS", MappingProxyType({**registry.ALGORITHMS, **algorithms})
    )


# -- the definitions -----------------------------------------------------------------------


def test_the_definition_holds_the_weights_hash_not_the_weights(trained: Trained) -> None:
    """The signed arguments carry the weights' SHA-256; a pod's copy has no payload."""
    evaluation = trained.evaluation(data_structure=STRUCTURE, seed=SEED)
    arguments = evaluation.arguments()
    assert arguments["weights_sha256"] == hashlib.sha256(trained.weights).hexdigest()
    assert "weights" not in arguments
    assert evaluation.initial_payload() == trained.weights
    copy = ModelEvaluation.from_arguments(arguments)
    assert copy.arguments() == arguments
    assert copy.initial_payload() is None
    inference = trained.inference(class_outputs=True)
    assert inference.model_id == arguments["weights_sha256"][:16]
    assert ModelInference.from_arguments(inference.arguments()).arguments() == inference.arguments()


def test_a_report_protocol_takes_inference_then_a_csv_report(trained: Trained) -> None:
    """Anything but [ModelInference, CSVReportAlgorithm] is refused, naming what came."""
    with pytest.raises(TaskDefinitionError, match="CSVReportAlgorithm"):
        InferenceAndCSVReport(algorithm=[CSVReportAlgorithm(), trained.inference()])


def test_a_data_structure_for_another_target_is_refused(trained: Trained) -> None:
    """Evaluating on a split whose target is not the model's: a clear definition error."""
    with pytest.raises(TaskDefinitionError, match="not the model's target"):
        trained.evaluation(data_structure={"target": "age"})


# -- evaluation ----------------------------------------------------------------------------


async def test_evaluation_equals_local_evaluation_on_each_pods_test_split(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """Batched over the relay, each pod's metrics are those of the same weights on its
    own test split (or on all its rows without a data structure); combined: weighted."""
    structure = DataStructure.from_definition(STRUCTURE)
    options = RunOptions(batched_execution=True, batch_rows=250)
    async with federation.pods(trained.shares, force_stypes=FORCE) as pods:
        modeller = federation.modeller()
        split = await modeller.run_async(
            ResultsOnly(algorithm=trained.evaluation(data_structure=STRUCTURE, seed=SEED)),
            pods,
            options=options,
        )
        every = await modeller.run_async(
            ResultsOnly(algorithm=trained.evaluation()), pods, options=options
        )
    assert split.completed == tuple(pods) == every.completed
    for outcome, rows_of in (
        (split, lambda f: structure.split(f, seed=SEED).test),
        (every, lambda f: f),
    ):
        table = outcome.result.combined[0]
        for pod, name in zip(pods, trained.shares, strict=True):
            tensors = trained.tensors(rows_of(trained.shares[name]))
            local = evaluate(trained.model, tensors, task="classification")
            got = table.per_pod[pod].iloc[0]
            for metric in ("accuracy", "loss", "f1", "auc", "count"):
                assert got[metric] == pytest.approx(local[metric], rel=1e-9), (pod, metric)
        counts = [table.per_pod[pod].iloc[0]["count"] for pod in pods]
        accuracies = [table.per_pod[pod].iloc[0]["accuracy"] for pod in pods]
        combined = table.combined.iloc[0]
        assert combined["count"] == sum(counts)
        assert combined["accuracy"] == pytest.approx(np.average(accuracies, weights=counts))
    assert every.result.combined[0].combined.iloc[0]["count"] == 1000


class _Tampered(ModelEvaluation):
    """Sends other bytes than the ones its definition's hash was signed for."""

    def initial_payload(self) -> bytes | None:
        payload = super().initial_payload()
        assert payload is not None
        return payload[:-1] + bytes([payload[-1] ^ 1])


async def test_weights_other_than_the_signed_ones_are_refused(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """A payload whose hash is not the signed one: the pod aborts before loading it."""
    task = _Tampered(
        model=MODEL,
        features=trained.features,
        normalisation=trained.normalisation,
        weights=trained.weights,
    )
    async with federation.pods(
        {"census-1": trained.shares["census-1"]}, force_stypes=FORCE
    ) as pods:
        outcome = await federation.modeller().run_async(ResultsOnly(algorithm=task), pods)
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    assert "not the ones the task was signed for" in (state.reason or "")
    assert outcome.result.combined[0].per_pod == {}


async def test_weights_of_another_architecture_are_refused_naming_tensors(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """Logistic-regression weights for the MLP the task names: an abort that lists the
    tensors that do not fit."""
    encoder = TabularEncoder(trained.features, trained.normalisation)
    other = build_model(
        "LogisticRegression",
        {},
        cardinalities=encoder.cardinalities,
        n_continuous=encoder.n_continuous,
        n_outputs=2,
    )
    task = ModelEvaluation(
        model=MODEL,
        features=trained.features,
        normalisation=trained.normalisation,
        weights=state_to_bytes(other.module),
    )
    async with federation.pods(
        {"census-1": trained.shares["census-1"]}, force_stypes=FORCE
    ) as pods:
        outcome = await federation.modeller().run_async(ResultsOnly(algorithm=task), pods)
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    reason = state.reason or ""
    assert reason.startswith("WORKER_ERROR")
    assert "head.weight: missing" in reason
    assert "linear.weight: unexpected" in reason
    assert "TabularMLP architecture" in reason


# -- inference -----------------------------------------------------------------------------


async def test_inference_returns_a_prediction_per_row_with_the_models_classes(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """InferenceAndReturnCSVReport: one prediction per row, labels from the features,
    probabilities per class, no columns of the pod's own; the same as local predictions."""
    frame = trained.shares["census-1"]
    task = InferenceAndReturnCSVReport(
        algorithm=[trained.inference(class_outputs=True), CSVReportAlgorithm()]
    )
    async with federation.pods({"census-1": frame}, force_stypes=FORCE) as pods:
        outcome = await federation.modeller().run_async(
            task, pods, options=RunOptions(batched_execution=True, batch_rows=250)
        )
    assert outcome.completed == tuple(pods)
    result = outcome.result
    assert isinstance(result, InferenceReportResult)
    predictions = result.predictions.per_pod[pods[0]]
    classes = list(trained.features.classes)
    assert list(predictions.columns) == ["prediction", *(f"p_{c}" for c in classes)]
    assert len(predictions) == len(frame)
    local = predict(trained.model, trained.tensors(frame.drop(columns=["TARGET"])))
    assert list(predictions["prediction"]) == [classes[i] for i in local.argmax(axis=1)]
    assert predictions[f"p_{classes[1]}"].to_numpy() == pytest.approx(local[:, 1])
    report = result.reports.per_pod[pods[0]].iloc[0]
    assert report["rows"] == report["predictions"] == len(frame)


async def test_the_csv_report_is_written_on_the_pod_and_only_its_summary_returns(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """InferenceAndCSVReport: the pod's rows with their predictions in the pod's output
    folder; the modeller gets the summary (rows, file, SHA-256), no predictions."""
    frame = trained.shares["census-2"]
    task = InferenceAndCSVReport(
        algorithm=[trained.inference(), CSVReportAlgorithm(filename="scored.csv")]
    )
    async with federation.pods({"census-2": frame}, force_stypes=FORCE) as pods:
        outcome = await federation.modeller().run_async(task, pods)
    assert outcome.completed == tuple(pods)
    path = federation.tmp / "outputs" / "census-2" / "scored.csv"
    written = pd.read_csv(path)
    assert list(written.columns) == [*frame.columns, "prediction"]
    assert len(written) == len(frame)
    assert set(written["prediction"]) <= set(trained.features.classes)
    result = outcome.result
    assert result.predictions.per_pod == {}
    summary = result.reports.per_pod[pods[0]].iloc[0]
    assert summary["file"] == "scored.csv"
    assert summary["rows"] == summary["predictions"] == len(frame)
    assert summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("protocol", [InferenceAndCSVReport, InferenceAndReturnCSVReport])
async def test_a_usage_limit_keeps_exactly_the_allowed_predictions(
    federation: Federation, trained: Trained, registered: None, protocol: type[Any]
) -> None:
    """A limit of 130 on 200 rows in batches of 50: the task aborts with LIMITS_EXCEEDED,
    and the CSV (and the returned predictions) hold exactly 130 rows."""
    frame = trained.shares["census-1"].iloc[:200]
    task = protocol(algorithm=[trained.inference(), CSVReportAlgorithm(filename="limited.csv")])
    async with federation.pods({"census-1": frame}, force_stypes=FORCE) as pods:
        async with HubClient(federation.url, token=federation.owner_key) as alice:
            await alice.set_limit(pods[0], MODELLER, 130)
        outcome = await federation.modeller().run_async(
            task, pods, options=RunOptions(batched_execution=True, batch_rows=50)
        )
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    assert (state.reason or "").startswith("LIMITS_EXCEEDED")
    written = pd.read_csv(federation.tmp / "outputs" / "census-1" / "limited.csv")
    assert len(written) == 130
    summary = outcome.result.reports.per_pod[pods[0]].iloc[0]
    assert summary["rows"] == summary["predictions"] == 130
    returned = outcome.result.predictions.per_pod
    assert len(returned.get(pods[0], [])) == (130 if protocol.returns_predictions else 0)


async def test_inference_in_results_only_needs_a_row_level_role(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """ResultsOnly(ModelInference) for a modeller without row-level access: refused with
    a message that points to the report protocols."""
    frame = trained.shares["census-1"].iloc[:100]
    async with federation.pods({"census-1": frame}, force_stypes=FORCE) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=trained.inference()), pods
        )
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    reason = state.reason or ""
    assert reason.startswith("WORKER_ERROR")
    assert "row-level" in reason
    assert "InferenceAndCSVReport" in reason
    assert outcome.result.combined[0].per_pod == {}


async def test_inference_in_results_only_returns_rows_to_a_row_level_role(
    federation: Federation, trained: Trained, registered: None
) -> None:
    """Where the pod lets the infer role see rows, ResultsOnly(ModelInference) returns
    the pod's rows with a prediction each."""
    frame = trained.shares["census-1"].iloc[:100]
    policy = PodPolicy(row_level_roles=["infer"])
    async with federation.pods({"census-1": frame}, force_stypes=FORCE, policy=policy) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=trained.inference()), pods
        )
    assert outcome.completed == tuple(pods)
    table = outcome.result.combined[0].per_pod[pods[0]]
    assert list(table.columns) == [*frame.columns, "prediction"]
    assert len(table) == len(frame)
    assert list(table["age"]) == list(frame["age"])
