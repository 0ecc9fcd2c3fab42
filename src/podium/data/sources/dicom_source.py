"""A source over a folder of DICOM files (pydicom): one record per file.

Files are found recursively: every ``.dcm`` / ``.dicom`` file, and every file without an
extension that starts with the DICOM preamble (``DICM`` at byte 128), except ``DICOMDIR``
indexes; hidden files and folders are skipped. Records are ordered by path relative to the
folder.

Columns, in order: ``image`` (the file's absolute path, as text), one column per tag in
``tags`` (named by its keyword; a tag a file lacks is a missing value), and, with
``include_pixels``, ``pixels`` holding each file's pixel array. Tag values become plain
Python values: numbers stay numbers, names and UIDs become text, and multi-valued elements
(such as ``PixelSpacing``) become text joined by a backslash, as DICOM writes them.
Without ``include_pixels`` files are read only up to the pixel data.
"""

from __future__ import annotations

import difflib
import logging
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pydicom
from pydicom import datadict
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data.sources.base import DEFAULT_BATCH_ROWS, FileSource, Modifier

__all__ = ["DEFAULT_DICOM_TAGS", "DICOMSource", "load_pixels"]

logger = logging.getLogger("podium.data.sources.dicom_source")

#: Tags read when none are given: who, which study/series/instance, what and how big.
DEFAULT_DICOM_TAGS = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "StudyDate",
    "SeriesDescription",
    "BodyPartExamined",
    "Rows",
    "Columns",
)
#: Rows per batch with ``include_pixels`` unless set: pixel arrays make records heavy.
PIXEL_BATCH_ROWS = 64

IMAGE_COLUMN = "image"
PIXELS_COLUMN = "pixels"
_EXTENSIONS = frozenset({".dcm", ".dicom"})
_PREAMBLE_END = 132
_MAGIC = b"DICM"
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "IS"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "OB or OW", "US or OW", "UN"})
_PIXEL_KEYWORDS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})
#: What pydicom raises for a malformed file or pixel data it cannot decode.
_PYDICOM_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    AttributeError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,
    NotImplementedError,
    struct.error,
)

TagValue = str | int | float | None


def load_pixels(path: str | os.PathLike[str]) -> npt.NDArray[np.generic]:
    """Read a DICOM file's pixel data as a numpy array of the stored values.

    No rescale or windowing is applied; use pydicom's ``apply_rescale`` for that.

    Raises:
        DataSourceNotFoundError: The file is not there.
        DataSourceReadError: The file is not DICOM, has no pixel data, or it cannot be
            decoded (for example a compressed transfer syntax without its plugin).
    """
    file = Path(path)
    if not file.is_file():
        raise DataSourceNotFoundError(f"load_pixels: {file} does not exist or is not a file.")
    _, array = _read_file(file, pixels=True, tags=(), where="load_pixels")
    assert array is not None  # _read_file raises when there is no pixel data
    return array


def _read_file(
    path: Path, *, pixels: bool, tags: Sequence[str], where: str
) -> tuple[dict[str, TagValue], npt.NDArray[np.generic] | None]:
    """Read the tags (and pixels) of one file; any failure names the file."""
    try:
        if pixels:
            dataset = pydicom.dcmread(path)
        else:
            wanted = list(tags) if tags else None
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=wanted)
        if "TransferSyntaxUID" not in getattr(dataset, "file_meta", ()):
            raise InvalidDicomError("the file meta information has no Transfer Syntax UID")
        values = {keyword: _plain(dataset.get(keyword)) for keyword in tags}
        array: npt.NDArray[np.generic] | None = None
        if pixels:
            if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
                raise DataSourceReadError(
                    f"{where}: {path} has no pixel data. Remove it from the folder or "
                    f"read the source without include_pixels."
                )
            array = np.asarray(dataset.pixel_array)
    except _PYDICOM_ERRORS as exc:
        raise DataSourceReadError(
            f"{where}: cannot read the DICOM file {path}: {exc}. The file is corrupt or "
            f"not DICOM; replace or remove it."
        ) from exc
    return values, array


def _plain(value: object) -> TagValue:
    """A pydicom element value as a plain number or text; empty values become None."""
    if isinstance(value, list | tuple | MultiValue):
        parts = [_plain(item) for item in value]
        return "\\".join("" if p is None else str(p) for p in parts) or None
    if value is None:
        return None
    if isinstance(value, int):  # IS and bool too
        return int(value)
    if isinstance(value, float | Decimal):  # DSfloat, DSdecimal
        return float(value)
    if isinstance(value, bytes):
        text = value.decode("ascii", errors="replace").strip("\x00 ")
    else:  # str, UID, PersonName, dates and times
        text = str(value)
    return text or None


def _check_tags(kind: str, tags: Sequence[str]) -> tuple[str, ...]:
    """Validate tag keywords against pydicom's dictionary; suggest close matches."""
    where = f"{kind}: datasource_args.tags"
    checked: list[str] = []
    for keyword in tags:
        if datadict.tag_for_keyword(keyword) is None:
            close = difflib.get_close_matches(keyword, list(datadict.keyword_dict), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigValidationError(
                f"{where}: {keyword!r} is not a DICOM keyword in pydicom's dictionary.{hint} "
                f"Keywords are written like PatientID or StudyInstanceUID."
            )
        vr = datadict.dictionary_VR(keyword)
        if keyword in _PIXEL_KEYWORDS:
            raise ConfigValidationError(
                f"{where}: {keyword} is pixel data, not a tag column; set "
                f"datasource_args.include_pixels: true instead."
            )
        if vr == "SQ" or vr in _BINARY_VRS:
            raise ConfigValidationError(
                f"{where}: {keyword} has VR {vr} (a sequence or binary data), which cannot "
                f"be a column. Choose tags with text or numeric values."
            )
        if keyword in checked:
            raise ConfigValidationError(f"{where}: {keyword} is listed twice.")
        checked.append(keyword)
    return tuple(checked)


def _column(keyword: str, values: list[TagValue]) -> pd.Series:
    """A column with a dtype that fits the tag: nullable ints, floats, or text."""
    vr = datadict.dictionary_VR(keyword)
    single = datadict.dictionary_VM(keyword) == "1"
    if single and vr in _INT_VRS and all(v is None or isinstance(v, int) for v in values):
        return pd.Series(values, dtype="Int64")
    if single and vr in _FLOAT_VRS and all(v is None or isinstance(v, int | float) for v in values):
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    return pd.Series([None if v is None else str(v) for v in values], dtype="str")


class DICOMSource(FileSource):
    """A folder of DICOM files, one record per file.

    Args:
        path: The folder (searched recursively).
        tags: DICOM keywords read into columns (``datasource_args.tags``).
        include_pixels: Add a ``pixels`` column with each file's pixel array.
        ignore_cols: Columns dropped from everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` added to every (string) value.
        seed: Seed for anything random done with this source.
        batch_rows: Files per batch; by default 50,000 without pixels, 64 with them.
    """

    kind = "DICOMSource"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tags: Sequence[str] = DEFAULT_DICOM_TAGS,
        include_pixels: bool = False,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int | None = None,
    ) -> None:
        if batch_rows is None:
            batch_rows = PIXEL_BATCH_ROWS if include_pixels else DEFAULT_BATCH_ROWS
        super().__init__(
            path, ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        self.tags = _check_tags(self.kind, [tags] if isinstance(tags, str) else tags)
        self.include_pixels = include_pixels

    def _paths(self) -> list[Path]:
        found = self._walk_folder(
            "DICOM files (.dcm, .dicom, or without extension with the DICM preamble)",
            _is_dicom_name,
            "Check datasource_args.path.",
        )
        return [file for _, file in found]

    def _raw_columns(self) -> list[str]:
        self._paths()
        pixels = [PIXELS_COLUMN] if self.include_pixels else []
        return [IMAGE_COLUMN, *self.tags, *pixels]

    def _raw_record_count(self) -> int:
        return len(self._paths())

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        paths = self._paths()
        for start in range(0, len(paths), batch_rows):
            chunk = paths[start : start + batch_rows]
            read = [
                _read_file(p, pixels=self.include_pixels, tags=self.tags, where=self.describe())
                for p in chunk
            ]
            columns: dict[str, pd.Series | list[object]] = {
                IMAGE_COLUMN: pd.Series([str(p) for p in chunk], dtype="str")
            }
            for keyword in self.tags:
                columns[keyword] = _column(keyword, [values[keyword] for values, _ in read])
            if self.include_pixels:
                columns[PIXELS_COLUMN] = [array for _, array in read]
            yield pd.DataFrame(columns)


def _is_dicom_name(file: Path) -> bool:
    """True for ``.dcm``/``.dicom`` files and extensionless files with the DICM preamble."""
    suffix = file.suffix.lower()
    if suffix in _EXTENSIONS:
        return True
    if suffix or file.name.upper() == "DICOMDIR":
        return False
    try:
        with file.open("rb") as handle:
            head = handle.read(_PREAMBLE_END)
    except OSError:
        logger.debug("skipping unreadable file %s", file)
        return False
    return head[128:_PREAMBLE_END] == _MAGIC
