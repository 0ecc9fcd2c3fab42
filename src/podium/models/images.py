"""Images for the image models, read from their files a minibatch at a time.

An :class:`ImageSource` yields one record per image: the file's path (the ``image``
column) and its label. :class:`ImageFiles` holds only the paths and the class indices; its
:meth:`ImageFiles.rows` decodes the images of one minibatch (resized to the model's size,
scaled to [0, 1]), so training and prediction never hold every image in memory.
:class:`ImageFeatures` is what the modeller and the pods agree on: the target column, the
classes (the union of every pod's label values), the image column, size and mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor

from podium.core.errors import TaskDefinitionError
from podium.data.sources.image_source import IMAGE_COLUMN, load_image
from podium.models.training import ImageTensors

__all__ = ["ImageFeatures", "ImageFiles"]

Mode = Literal["L", "RGB"]


@dataclass(frozen=True, slots=True)
class ImageFeatures:
    """The image models' inputs and outputs, the same on every pod."""

    target: str
    classes: tuple[str, ...]
    image_column: str = IMAGE_COLUMN
    size: int = 8
    mode: Mode = "L"

    @property
    def channels(self) -> int:
        """1 for greyscale, 3 for RGB."""
        return 1 if self.mode == "L" else 3

    @classmethod
    def from_schemas(
        cls,
        schemas: Sequence[Mapping[str, Any]],
        *,
        target: str,
        size: int,
        mode: Mode,
        image_column: str = IMAGE_COLUMN,
    ) -> ImageFeatures:
        """The classes from the target's value sets in the pods' schemas (their union).

        Raises:
            TaskDefinitionError: A pod's schema lacks the target or the image column, or
                its target has no value set.
        """
        classes: set[str] = set()
        for index, schema in enumerate(schemas):
            columns = {c.get("name"): c for c in schema.get("columns", [])}
            for needed in (target, image_column):
                if needed not in columns:
                    raise TaskDefinitionError(
                        f"pod {index} has no column {needed!r}; its columns: "
                        f"{', '.join(map(str, columns))}"
                    )
            values = columns[target].get("values")
            if not values:
                raise TaskDefinitionError(
                    f"pod {index}'s target {target!r} has no value set in its schema: make "
                    "it categorical (force_stypes)"
                )
            classes.update(str(v) for v in values)
        if len(classes) < 2:
            raise TaskDefinitionError(f"{target!r} needs at least two classes across the pods")
        return cls(target, tuple(sorted(classes)), image_column, size, mode)

    def to_definition(self) -> dict[str, Any]:
        """As canonical JSON values."""
        return {
            "kind": "image",
            "target": self.target,
            "classes": list(self.classes),
            "image_column": self.image_column,
            "size": self.size,
            "mode": self.mode,
        }

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> ImageFeatures:
        """The features :meth:`to_definition` wrote.

        Raises:
            TaskDefinitionError: A malformed definition.
        """
        try:
            mode = data["mode"]
            if mode not in ("L", "RGB"):
                raise ValueError(f"mode {mode!r}")
            size = int(data["size"])
            if not 4 <= size <= 512:
                raise ValueError(f"size {size}")
            return cls(
                str(data["target"]),
                tuple(str(c) for c in data["classes"]),
                str(data["image_column"]),
                size,
                mode,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TaskDefinitionError(f"malformed image features: {error}") from None

    def files(self, frame: pd.DataFrame) -> ImageFiles:
        """The images of ``frame``'s rows with a known class (others are left out)."""
        labels = frame[self.target].astype("string")
        index = {name: i for i, name in enumerate(self.classes)}
        codes = labels.map(index)
        known = codes.notna().to_numpy()
        paths = frame.loc[known, self.image_column].astype(str).tolist()
        target = torch.from_numpy(np.array(codes[known], dtype=np.int64, copy=True))
        return ImageFiles(paths, target, self.size, self.mode)


@dataclass(frozen=True)
class ImageFiles:
    """Image files and their class indices; images are decoded by minibatch."""

    paths: list[str]
    target: Tensor | None
    size: int
    mode: Mode

    def __len__(self) -> int:
        return len(self.paths)

    def rows(self, index: Tensor) -> ImageTensors:
        """The images at ``index``, decoded, resized and scaled to [0, 1]."""
        arrays = [self._load(self.paths[int(i)]) for i in index]
        channels = 1 if self.mode == "L" else 3
        images = (
            np.stack(arrays) if arrays else np.zeros((0, self.size, self.size), dtype=np.float32)
        )
        images = images.reshape(len(arrays), self.size, self.size, channels).transpose(0, 3, 1, 2)
        target = None if self.target is None else self.target[index]
        return ImageTensors(torch.from_numpy(np.ascontiguousarray(images)), target)

    def _load(self, path: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        pixels = load_image(path, mode=self.mode)
        image = Image.fromarray(np.asarray(pixels))
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255.0
