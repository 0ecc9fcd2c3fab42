"""Excel workbooks (``.xlsx``, ``.xlsm``), read row by row with openpyxl's read-only mode.

One sheet is one table: a header row of column names, then one record per non-empty row.
Rows are streamed, so a batch never holds more than ``batch_rows`` rows; a first pass
over the sheet (kept until the file changes) counts the records and fixes each column's
dtype, so that every batch of a column has the same dtype. Empty cells, empty strings
and Excel error values (``#N/A``, ``#DIV/0!``, ...) are missing values. Formulas give
the value Excel last computed (none, for a file never opened in Excel).
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from xml.etree.ElementTree import ParseError

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data.sources.base import DEFAULT_BATCH_ROWS, FileSource, Modifier

__all__ = ["ExcelSource"]

#: Values Excel shows for a formula that failed; read as missing.
_EXCEL_ERRORS = frozenset(
    {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!"}
)

#: What opening a file that is not a readable workbook raises in openpyxl.
_OPEN_ERRORS = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, ParseError)

_INT64 = np.iinfo(np.int64)


class _Kind(Enum):
    """What a column holds; decides its dtype."""

    INT = "Int64"
    FLOAT = "float64"
    BOOL = "boolean"
    DATETIME = "datetime64[us]"
    TEXT = "str"


def _kind_of(value: object) -> _Kind:
    if isinstance(value, bool):
        return _Kind.BOOL
    if isinstance(value, int):
        return _Kind.INT if _INT64.min <= value <= _INT64.max else _Kind.FLOAT
    if isinstance(value, float):
        return _Kind.FLOAT
    if isinstance(value, dt.date):  # datetime.datetime is a date too
        return _Kind.DATETIME
    return _Kind.TEXT


def _merge(seen: _Kind | None, new: _Kind) -> _Kind:
    if seen is None or seen is new:
        return new
    if {seen, new} == {_Kind.INT, _Kind.FLOAT}:
        return _Kind.FLOAT
    return _Kind.TEXT


def _clean(value: object) -> object:
    """An empty string or an Excel error value is a missing value."""
    if isinstance(value, str) and (value == "" or value in _EXCEL_ERRORS):
        return None
    return value


def _as_datetime(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _column(values: list[object], kind: _Kind) -> pd.Series:
    """One column of a batch with the dtype of ``kind`` whatever values it holds."""
    if kind is _Kind.TEXT:
        return pd.Series([None if v is None else str(v) for v in values], dtype="str")
    if kind is _Kind.DATETIME:
        return pd.Series([_as_datetime(v) for v in values], dtype="datetime64[us]")
    return pd.Series(values, dtype=kind.value)


@dataclass(frozen=True, slots=True)
class _Layout:
    """What a first pass over the sheet learnt: names, dtypes and number of records."""

    signature: tuple[int, int]
    columns: tuple[str, ...]
    kinds: tuple[_Kind, ...]
    record_count: int


class ExcelSource(FileSource):
    """One sheet of an Excel workbook.

    Args:
        path: The workbook (``.xlsx``, ``.xlsm``, ``.xltx``, ``.xltm``).
        sheet_name: The sheet's name, or its position from 0; ``None`` for the first.
        header_row: The row (counted from 1, as Excel shows it) holding the column names;
            rows above it are ignored.
        ignore_cols: Columns left out of everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` for string values.
        seed: Seed for anything random done with this source.
        batch_rows: Default number of rows per batch.
    """

    kind = "ExcelSource"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sheet_name: str | int | None = None,
        header_row: int = 1,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(
            path, ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
            raise ConfigValidationError(
                f"datasource_args.header_row: expected a row number from 1, got {header_row!r}."
            )
        if isinstance(sheet_name, bool) or (isinstance(sheet_name, int) and sheet_name < 0):
            raise ConfigValidationError(
                "datasource_args.sheet_name: expected a sheet name or a position from 0, "
                f"got {sheet_name!r}."
            )
        self.sheet_name = sheet_name
        self.header_row = header_row
        self._layout_cache: _Layout | None = None

    # -- the raw interface ---------------------------------------------------------------

    def _raw_columns(self) -> list[str]:
        cached = self._layout_cache
        if cached is not None and cached.signature == self._signature():
            return list(cached.columns)
        with self._sheet() as (sheet, rows):
            return list(self._header(sheet, rows))

    def _raw_record_count(self) -> int:
        return self._layout().record_count

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        layout = self._layout()
        with self._sheet() as (sheet, rows):
            self._header(sheet, rows)
            buffer: list[list[object]] = []
            for _, values in self._records(sheet, rows, len(layout.columns)):
                buffer.append(values)
                if len(buffer) == batch_rows:
                    yield self._frame(buffer, layout)
                    buffer = []
            if buffer:
                yield self._frame(buffer, layout)

    def _paths(self) -> list[Path]:
        self._require_exists()
        if not self.path.is_file():
            raise DataSourceReadError(
                f"{self.describe()}: {self.path} is not a file (a folder?). Point "
                f"datasource_args.path at the workbook itself."
            )
        return [self.path]

    def describe(self) -> str:
        sheet = "" if self.sheet_name is None else f", sheet={self.sheet_name!r}"
        return f"{self.kind}({self.path}{sheet})"

    # -- reading -------------------------------------------------------------------------

    def _signature(self) -> tuple[int, int]:
        stat = self._paths()[0].stat()
        return (stat.st_size, stat.st_mtime_ns)

    def _layout(self) -> _Layout:
        signature = self._signature()
        cached = self._layout_cache
        if cached is not None and cached.signature == signature:
            return cached
        with self._sheet() as (sheet, rows):
            columns = self._header(sheet, rows)
            kinds: list[_Kind | None] = [None] * len(columns)
            count = 0
            for _, values in self._records(sheet, rows, len(columns)):
                count += 1
                for i, value in enumerate(values):
                    if value is not None:
                        kinds[i] = _merge(kinds[i], _kind_of(value))
        self._layout_cache = _Layout(
            signature=signature,
            columns=columns,
            kinds=tuple(k or _Kind.TEXT for k in kinds),
            record_count=count,
        )
        return self._layout_cache

    @contextmanager
    def _sheet(self) -> Iterator[tuple[str, Iterator[tuple[object, ...]]]]:
        """Open the workbook read-only; give the sheet's name and its rows from the header."""
        path = self._paths()[0]
        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except _OPEN_ERRORS as exc:
            raise DataSourceReadError(
                f"{self.describe()}: cannot open {path} as an Excel workbook ({exc}). Save it "
                f"as .xlsx (older .xls files and CSV files renamed to .xlsx are not read)."
            ) from exc
        try:
            name = self._pick_sheet(list(workbook.sheetnames))
            worksheet = workbook[name]
            if not hasattr(worksheet, "iter_rows"):
                raise DataSourceReadError(
                    f"{self.describe()}: sheet {name!r} is a chart, not a table of cells. "
                    f"Choose another sheet with datasource_args.sheet_name."
                )
            yield (
                name,
                self._guarded(worksheet.iter_rows(min_row=self.header_row, values_only=True)),
            )
        finally:
            workbook.close()

    def _guarded(self, rows: Iterator[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
        """The sheet's rows, with a damaged sheet reported as a read error."""
        try:
            yield from rows
        except _OPEN_ERRORS as exc:
            raise DataSourceReadError(
                f"{self.describe()}: the sheet in {self.path} is damaged ({exc}). Open and "
                f"save it again in Excel, or export it as .xlsx."
            ) from exc

    def _pick_sheet(self, names: list[str]) -> str:
        if self.sheet_name is None and names:
            return names[0]
        if isinstance(self.sheet_name, str) and self.sheet_name in names:
            return self.sheet_name
        if isinstance(self.sheet_name, int) and self.sheet_name < len(names):
            return names[self.sheet_name]
        raise DataSourceNotFoundError(
            f"{self.describe()}: the workbook has no sheet {self.sheet_name!r}; its sheets "
            f"are {names}. Fix datasource_args.sheet_name (a name, or a position from 0)."
        )

    def _header(self, sheet: str, rows: Iterator[tuple[object, ...]]) -> tuple[str, ...]:
        """Read the header row from ``rows`` and check the names."""
        cells = list(next(rows, ()))
        while cells and _clean(cells[-1]) is None:
            cells.pop()
        where = f"sheet {sheet!r} of {self.path}"
        if not cells:
            raise DataSourceReadError(
                f"{self.describe()}: row {self.header_row} of {where} is empty, so there are "
                f"no column names. Set datasource_args.header_row to the row with the names."
            )
        names: list[str] = []
        for i, value in enumerate(cells):
            cell = f"{get_column_letter(i + 1)}{self.header_row}"
            if _clean(value) is None:
                raise DataSourceReadError(
                    f"{self.describe()}: cell {cell} of {where} is empty; every column needs "
                    f"a name in the header row. Add a name or delete the column."
                )
            name = str(value)
            if name in names:
                first = f"{get_column_letter(names.index(name) + 1)}{self.header_row}"
                raise DataSourceReadError(
                    f"{self.describe()}: column name {name!r} appears twice in {where} "
                    f"(cells {first} and {cell}). Rename one of them."
                )
            names.append(name)
        return tuple(names)

    def _records(
        self, sheet: str, rows: Iterator[tuple[object, ...]], width: int
    ) -> Iterator[tuple[int, list[object]]]:
        """Yield ``(row number, values)`` for each non-empty row after the header."""
        number = self.header_row
        for cells in rows:
            number += 1
            values = [_clean(v) for v in cells]
            for i in range(width, len(values)):
                if values[i] is not None:
                    raise DataSourceReadError(
                        f"{self.describe()}: cell {get_column_letter(i + 1)}{number} of sheet "
                        f"{sheet!r} in {self.path} holds a value but its column has no name "
                        f"in header row {self.header_row}. Add a name or clear the cell."
                    )
            values = values[:width] + [None] * (width - len(values))
            if any(v is not None for v in values):
                yield number, values

    def _frame(self, rows: list[list[object]], layout: _Layout) -> pd.DataFrame:
        columns = list(zip(*rows, strict=True))
        try:
            data = {
                name: _column(list(values), kind)
                for name, values, kind in zip(layout.columns, columns, layout.kinds, strict=True)
            }
        except (TypeError, ValueError) as exc:
            raise DataSourceReadError(
                f"{self.describe()}: {self.path} changed while it was being read ({exc}). "
                f"Read it again once it is no longer being written."
            ) from exc
        return pd.DataFrame(data)
