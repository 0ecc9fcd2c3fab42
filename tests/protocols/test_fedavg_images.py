"""Federated averaging of the small CNN on image folders (scikit-learn's digits written as
PNG files, labelled by sub-folder): images are read from their files a minibatch at a
time, and the federated model learns the digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits  # type: ignore[import-untyped]

from podium.algorithms.model_training import FederatedModelTraining
from podium.core.errors import TaskDefinitionError
from podium.data.sources.image_source import ImageSource
from podium.models.images import ImageFeatures, ImageFiles
from podium.protocols.fedavg import FederatedAveraging, TrainingResult
from tests.protocols.conftest import Federation

CNN = {"name": "SmallCNN", "hyperparameters": {"learning_rate": 0.01, "batch_size": 32}}


def _digit_folders(root: Path, pods: int) -> list[Path]:
    """The digits as 8x8 greyscale PNGs, <pod>/<digit>/<n>.png, dealt to the pods."""
    digits = load_digits()
    folders = [root / f"pod-{i}" for i in range(pods)]
    for n, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = folders[n % pods] / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = (pixels * (255 / 16)).astype(np.uint8)
        Image.fromarray(grey, mode="L").save(folder / f"{n}.png")
    return folders


async def test_fedavg_learns_digits_from_image_folders(
    federation: Federation, tmp_path: Path
) -> None:
    """Three pods of digit images: after 4 rounds the test accuracy is above 0.85."""
    folders = _digit_folders(tmp_path / "digits", 3)
    sources = {f"digits-{i}": ImageSource(folder) for i, folder in enumerate(folders)}
    training = FederatedModelTraining(
        model=CNN, data_structure={"target": "label"}, seed=2, image_size=8
    )
    task = FederatedAveraging(algorithm=training, rounds=4, epochs_between_parameter_updates=2)
    async with federation.pods(sources, force_stypes={"label": "categorical"}) as pods:
        outcome = await federation.modeller().run_async(task, pods)
    result = outcome.result
    assert isinstance(result, TrainingResult)
    assert outcome.completed == tuple(pods)
    assert result.features["classes"] == [str(d) for d in range(10)]
    assert result.test_combined["accuracy"] > 0.85


def test_image_files_decode_only_the_minibatch_asked_for(tmp_path: Path) -> None:
    """rows() decodes just the images at the index, resized and scaled to [0, 1]."""
    (folder,) = _digit_folders(tmp_path / "digits", 1)
    frame = ImageSource(folder).to_pandas()
    features = ImageFeatures(target="label", classes=tuple(str(d) for d in range(10)), size=8)
    files = features.files(frame)
    assert isinstance(files, ImageFiles)
    batch = files.rows(torch.tensor([0, 5]))
    assert tuple(batch.images.shape) == (2, 1, 8, 8)
    assert float(batch.images.max()) <= 1.0
    expected = np.asarray(Image.open(files.paths[5]), dtype=np.float32) / 255
    assert np.allclose(batch.images[1, 0].numpy(), expected)
    assert batch.target is not None
    assert int(batch.target[1]) == features.classes.index(frame["label"].iloc[5])


def test_an_image_model_needs_an_image_size() -> None:
    """SmallCNN without image_size: a clear error before anything is sent."""
    with pytest.raises(TaskDefinitionError, match="image_size"):
        FederatedModelTraining(model=CNN, data_structure={"target": "label"})
