"""A source over a folder of images: one record per image file.

Images are found recursively (hidden files and folders skipped) and ordered by their path
relative to the folder, so the order is the same on every machine. Labels come from a CSV
(``labels=``) or, without one, from the name of each image's first-level sub-folder
(``cats/001.png`` has label ``cats``).

Columns, in order:

* ``image``: the absolute path of the file, as text;
* the label column (``label_column``, default ``label``), when there are labels: always
  with a labels CSV; with sub-folder labels, when at least one image lies in a sub-folder
  (images directly in the folder then have a missing label, and a flat folder has no label
  column at all);
* ``width``, ``height``, ``mode``: read from each image's header with Pillow, one batch at
  a time; pixels are decoded only by :func:`load_image`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt
import pandas as pd
from PIL import Image, UnidentifiedImageError

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data.sources.base import DEFAULT_BATCH_ROWS, FileSource, Modifier

__all__ = ["DEFAULT_IMAGE_EXTENSIONS", "ImageSource", "load_image"]

logger = logging.getLogger("podium.data.sources.image_source")

#: File extensions read by default (compared case-insensitively).
DEFAULT_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")

IMAGE_COLUMN = "image"
_HEADER_COLUMNS = ("width", "height", "mode")
_MAX_LISTED = 5
#: What Pillow raises for a file it cannot read (UnidentifiedImageError is an OSError).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def load_image(path: str | os.PathLike[str], *, mode: str | None = None) -> npt.NDArray[np.generic]:
    """Decode an image file into a numpy array (``H x W`` or ``H x W x C``).

    Args:
        path: The image file.
        mode: A Pillow mode to convert to first (``"RGB"``, ``"L"``); ``None`` keeps the
            file's own mode.

    Raises:
        DataSourceNotFoundError: The file is not there.
        DataSourceReadError: The file is not an image Pillow can decode, or is truncated.
    """
    file = Path(path)
    if not file.is_file():
        raise DataSourceNotFoundError(f"load_image: {file} does not exist or is not a file.")
    try:
        with Image.open(file) as image:
            image.load()
            converted = image.convert(mode) if mode is not None and mode != image.mode else image
            return np.asarray(converted)
    except _PIL_ERRORS as exc:
        raise DataSourceReadError(
            f"load_image: cannot decode image {file}: {exc}. Replace or remove the file."
        ) from exc


@dataclass(frozen=True, slots=True)
class _Entry:
    """One image: its absolute path, its path relative to the folder, and its label."""

    path: Path
    relative: str
    label: object


class ImageSource(FileSource):
    """A folder of images with optional labels.

    Args:
        path: The folder of images (searched recursively).
        labels: A CSV with one row per image: ``file_column`` holds the file's path
            relative to the folder, ``label_column`` its label. Without it, labels are the
            names of first-level sub-folders.
        file_column: The CSV column with file names.
        label_column: The CSV column with labels, also the name of the label column
            this source yields.
        extensions: File extensions that count as images (case-insensitive).
        ignore_cols: Columns dropped from everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` added to every (string) value.
        seed: Seed for anything random done with this source.
        batch_rows: Default number of images per batch.
    """

    kind = "ImageSource"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        labels: str | os.PathLike[str] | None = None,
        file_column: str = "file",
        label_column: str = "label",
        extensions: Sequence[str] = DEFAULT_IMAGE_EXTENSIONS,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(
            path, ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        self.labels = Path(labels).expanduser() if labels is not None else None
        self.file_column = file_column
        self.label_column = label_column
        if isinstance(extensions, str):
            extensions = [extensions]
        self.extensions = tuple(sorted({_dotted(e) for e in extensions}))
        if not self.extensions:
            raise ConfigValidationError(
                f"{self.describe()}: datasource_args.extensions is empty; list the image "
                f"file extensions to read, such as ['.png', '.jpg']."
            )
        if label_column in (IMAGE_COLUMN, *_HEADER_COLUMNS):
            raise ConfigValidationError(
                f"{self.describe()}: datasource_args.label_column {label_column!r} clashes "
                f"with a column ImageSource makes; choose another name."
            )

    # -- listing -------------------------------------------------------------------------

    def _paths(self) -> list[Path]:
        return [entry.path for entry in self._entries()]

    def _image_files(self) -> list[tuple[str, Path]]:
        """Every image under the folder as (relative POSIX path, absolute path), sorted."""
        return self._walk_folder(
            f"images with extensions {list(self.extensions)}",
            lambda file: file.suffix.lower() in self.extensions,
            "Check datasource_args.path and datasource_args.extensions.",
        )

    def _entries(self) -> list[_Entry]:
        files = self._image_files()
        if self.labels is not None:
            by_file = self._read_label_csv({rel for rel, _ in files})
            return [_Entry(path, rel, by_file[rel]) for rel, path in files]
        return [
            _Entry(path, rel, rel.split("/", 1)[0] if "/" in rel else None) for rel, path in files
        ]

    def _has_labels(self, entries: Sequence[_Entry]) -> bool:
        return self.labels is not None or any(e.label is not None for e in entries)

    def _read_label_csv(self, present: set[str]) -> dict[str, object]:
        """Map each image's relative path to its label from the labels CSV."""
        csv = self.labels
        assert csv is not None
        if not csv.is_file():
            raise DataSourceNotFoundError(
                f"{self.describe()}: the labels file {csv} does not exist. Check "
                f"datasource_args.labels."
            )
        try:
            table = pd.read_csv(csv, dtype={self.file_column: str})
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataSourceReadError(
                f"{self.describe()}: cannot read the labels file {csv}: {exc}."
            ) from exc
        missing_cols = [c for c in (self.file_column, self.label_column) if c not in table]
        if missing_cols:
            raise DataSourceReadError(
                f"{self.describe()}: the labels file {csv} has no column(s) {missing_cols}; "
                f"its columns are {list(map(str, table.columns))}. Set "
                f"datasource_args.file_column and datasource_args.label_column."
            )
        names = [self._relative_name(str(name)) for name in table[self.file_column]]
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise DataSourceReadError(
                f"{self.describe()}: the labels file {csv} lists {_listing(repeated)} more "
                f"than once. Keep one row per image."
            )
        labels = dict(zip(names, table[self.label_column].tolist(), strict=True))
        self._check_label_coverage(csv, labels, present)
        return {name: (None if pd.isna(v) else v) for name, v in labels.items()}

    def _check_label_coverage(
        self, csv: Path, labels: Mapping[str, object], present: set[str]
    ) -> None:
        absent = sorted(set(labels) - present)
        if absent:
            raise DataSourceNotFoundError(
                f"{self.describe()}: the labels file {csv} names image(s) that are not in "
                f"{self.path}: {_listing(absent)}. Remove those rows or add the images "
                f"(names are relative to the folder)."
            )
        unlabelled = sorted(present - set(labels))
        if unlabelled:
            raise DataSourceReadError(
                f"{self.describe()}: the labels file {csv} has no row for image(s) "
                f"{_listing(unlabelled)} in {self.path}. Add a row per image to the CSV."
            )

    def _relative_name(self, name: str) -> str:
        """A CSV file name as a relative POSIX path (``./a\\b.png`` -> ``a/b.png``)."""
        candidate = Path(name)
        if candidate.is_absolute():
            root = self.path.resolve()
            if candidate.is_relative_to(root):
                return candidate.relative_to(root).as_posix()
            return candidate.as_posix()
        return PurePosixPath(name.replace("\\", "/")).as_posix()

    # -- DataSource ----------------------------------------------------------------------

    def _raw_columns(self) -> list[str]:
        entries = self._entries()
        label = [self.label_column] if self._has_labels(entries) else []
        return [IMAGE_COLUMN, *label, *_HEADER_COLUMNS]

    def _raw_record_count(self) -> int:
        return len(self._image_files())

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        entries = self._entries()
        with_labels = self._has_labels(entries)
        for start in range(0, len(entries), batch_rows):
            chunk = entries[start : start + batch_rows]
            headers = [self._read_header(entry.path) for entry in chunk]
            columns: dict[str, object] = {IMAGE_COLUMN: [str(e.path) for e in chunk]}
            if with_labels:
                columns[self.label_column] = [e.label for e in chunk]
            columns["width"] = np.array([h[0] for h in headers], dtype=np.int64)
            columns["height"] = np.array([h[1] for h in headers], dtype=np.int64)
            columns["mode"] = [h[2] for h in headers]
            yield pd.DataFrame(columns)

    def _read_header(self, path: Path) -> tuple[int, int, str]:
        """Width, height and mode from the image's header, without decoding pixels."""
        try:
            with Image.open(path) as image:
                width, height = image.size
                return width, height, image.mode
        except UnidentifiedImageError as exc:
            raise DataSourceReadError(
                f"{self.describe()}: {path} is not an image Pillow can read (corrupt or "
                f"not really a {path.suffix} file). Replace or remove it."
            ) from exc
        except _PIL_ERRORS as exc:
            raise DataSourceReadError(
                f"{self.describe()}: cannot read the image {path}: {exc}. Replace or remove it."
            ) from exc


def _dotted(extension: str) -> str:
    clean = extension.strip().lower()
    return clean if clean.startswith(".") else f".{clean}"
