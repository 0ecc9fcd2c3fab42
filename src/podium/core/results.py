"""Result values on the wire: plain data and tables, never pickles.

What a pod sends back (a query's rows, a statistics summary, a report's summary) is a tree
of ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists, maps with string keys
and :class:`pandas.DataFrame` tables. :func:`encode_result` packs it with msgpack; a table
travels as an Arrow IPC stream inside a one-key map ``{"$table": <bytes>}``.
:func:`decode_result` is strict: container and string limits, no msgpack extension types,
and a table must be a plain Arrow stream: extension types are refused and the schema's
metadata is dropped before pandas sees it, so nothing in a result can make the receiver
run code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from podium.core.errors import ProtocolError
from podium.core.messages._wire import Limits, Malformed, pack, unpack

__all__ = ["ResultFormatError", "decode_result", "encode_result", "frame_from_arrow"]

_TABLE = "$table"
_MAX_DEPTH = 32
_LIMITS = Limits(
    max_str_len=1 << 24, max_bin_len=(1 << 31) - 1, max_array_len=10_000_000, max_map_len=1_000_000
)


class ResultFormatError(ProtocolError):
    """A result that is not plain data and tables (a bug on the sending side, or tampering)."""


def _table_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _plain(value: object, depth: int) -> object:
    if depth > _MAX_DEPTH:
        raise ResultFormatError(f"a result nests deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, pd.DataFrame):
        return {_TABLE: _table_bytes(value)}
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ResultFormatError(f"a result map has a non-string key {key!r}")
            if key == _TABLE:
                raise ResultFormatError(f"{_TABLE!r} is reserved for tables in result maps")
            out[key] = _plain(item, depth + 1)
        return out
    if isinstance(value, Sequence):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, np.generic):  # a numpy scalar (arrays are refused below)
        return _plain(value.item(), depth)
    raise ResultFormatError(f"a result holds a {type(value).__name__}, which has no wire form")


def encode_result(value: object) -> bytes:
    """The wire bytes of ``value`` (see the module docstring).

    Raises:
        ResultFormatError: ``value`` holds something other than plain data and tables.
    """
    return pack(_plain(value, 0))


def frame_from_arrow(data: bytes) -> pd.DataFrame:
    """The table in an Arrow IPC stream, refusing extension types and dropping metadata.

    Raises:
        ResultFormatError: ``data`` is not a plain Arrow IPC stream.
    """
    try:
        with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
            table = reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise ResultFormatError(f"a result table is not an Arrow IPC stream: {error}") from None
    for field in table.schema:
        if _has_extension(field.type):
            raise ResultFormatError(f"a result table's column {field.name!r} has an extension type")
    frame: pd.DataFrame = table.replace_schema_metadata(None).to_pandas()
    return frame


def _has_extension(kind: pa.DataType) -> bool:
    """Whether ``kind`` is, or holds at any depth (lists, structs, maps, unions), an
    extension type."""
    if isinstance(kind, pa.ExtensionType):
        return True
    return any(_has_extension(kind.field(i).type) for i in range(kind.num_fields))


def _restore(value: object, depth: int) -> object:
    if depth > _MAX_DEPTH:
        raise ResultFormatError(f"a result nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        if set(value) == {_TABLE}:
            data = value[_TABLE]
            if not isinstance(data, bytes):
                raise ResultFormatError("a result table must be bytes")
            return frame_from_arrow(data)
        return {key: _restore(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item, depth + 1) for item in value]
    return value


def decode_result(data: bytes) -> Any:
    """The value :func:`encode_result` encoded.

    Raises:
        ResultFormatError: ``data`` is not a result's wire form.
    """
    try:
        plain = unpack(data, _LIMITS)
    except Malformed as error:
        raise ResultFormatError(f"a result is not valid: {error.reason}") from None
    return _restore(plain, 0)
