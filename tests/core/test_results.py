"""Result values on the wire: plain data and Arrow tables round-trip; nothing else passes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import ProtocolError
from podium.core.messages._wire import pack
from podium.core.results import (
    ResultFormatError,
    decode_result,
    encode_result,
    frame_from_arrow,
)


class _Tagged(pa.ExtensionType):  # type: ignore[misc]  # pyarrow ships no stubs
    """A minimal Arrow extension type over int64, registered only for these tests."""

    def __init__(self) -> None:
        super().__init__(pa.int64(), "podium-tests.tagged")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> _Tagged:
        return cls()


@pytest.fixture
def tagged() -> Iterator[pa.ExtensionType]:
    """The extension type, registered with pyarrow while the test runs."""
    kind = _Tagged()
    pa.register_extension_type(kind)
    try:
        yield kind
    finally:
        pa.unregister_extension_type("podium-tests.tagged")


def arrow_stream(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def nested_lists(depth: int) -> object:
    """``1`` inside ``depth`` lists."""
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nested_plain_data_round_trips() -> None:
    """Maps, lists, strings, numbers, booleans, None and bytes come back equal."""
    value = {
        "name": "census",
        "rows": 1200,
        "mean": -3.25,
        "ok": True,
        "missing": None,
        "blob": b"\x00\xff",
        "nested": {"list": [1, "two", [3.0, False, None]], "empty": {}, "none": []},
    }

    assert decode_result(encode_result(value)) == value


def test_a_tuple_comes_back_as_a_list() -> None:
    """Any sequence travels as a list."""
    assert decode_result(encode_result({"pair": (1, "a")})) == {"pair": [1, "a"]}


def test_a_data_frame_round_trips() -> None:
    """A table of ints, floats with NaN, strings, booleans and datetimes comes back equal."""
    frame = pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype="int64"),
            "f": [0.5, math.nan, -1.0],
            "s": ["a", None, "c"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )

    back = decode_result(encode_result(frame))

    pd.testing.assert_frame_equal(back, frame)


def test_frames_inside_plain_data_round_trip() -> None:
    """Tables nested in maps and lists come back as tables in the same places."""
    first = pd.DataFrame({"g": ["a", "b"], "n": [3, 4]})
    second = pd.DataFrame({"x": [1.5]})
    value = {"per_pod": {"alice/census": first}, "all": [second, "note"]}

    back = decode_result(encode_result(value))

    pd.testing.assert_frame_equal(back["per_pod"]["alice/census"], first)
    pd.testing.assert_frame_equal(back["all"][0], second)
    assert back["all"][1] == "note"


def test_an_empty_frame_round_trips() -> None:
    """A frame with columns and no rows keeps its columns."""
    frame = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="float64")})

    pd.testing.assert_frame_equal(decode_result(encode_result(frame)), frame)


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        (np.int64(7), 7),
        (np.int32(-3), -3),
        (np.float32(1.5), 1.5),
        (np.float64(2.25), 2.25),
        (np.bool_(True), True),
    ],
)
def test_numpy_scalars_become_python_numbers(scalar: object, expected: object) -> None:
    """A numpy scalar travels as the Python number it holds."""
    back = decode_result(encode_result({"v": scalar}))

    assert back == {"v": expected}
    assert type(back["v"]) is type(expected)


class _Custom:
    """Something with no wire form."""


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ({1: "one"}, "non-string key"),
        ({"ok": {("a", "b"): 1}}, "non-string key"),
        ({"a", "b"}, "set"),
        ([1, {"deep": frozenset({1})}], "frozenset"),
        (_Custom(), "_Custom"),
        ({"when": 1j}, "complex"),
    ],
)
def test_values_without_a_wire_form_are_refused(value: object, what: str) -> None:
    """A non-string key or an unsupported object raises ResultFormatError naming it."""
    with pytest.raises(ResultFormatError, match=what):
        encode_result(value)


def test_a_numpy_array_is_refused_as_a_result_format_error() -> None:
    """A numpy array (not plain data) is refused with ResultFormatError."""
    with pytest.raises(ResultFormatError):
        encode_result({"weights": np.array([1.0, 2.0])})


def test_result_format_error_is_a_protocol_error() -> None:
    """Callers catching protocol errors also catch a bad result."""
    assert issubclass(ResultFormatError, ProtocolError)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xd9\x05ab", b"not msgpack at all"])
def test_garbage_bytes_are_refused(data: bytes) -> None:
    """Bytes that are not a result's msgpack raise ResultFormatError."""
    with pytest.raises(ResultFormatError, match="not valid"):
        decode_result(data)


def test_a_table_that_is_not_arrow_is_refused() -> None:
    """``{"$table": <not an Arrow stream>}`` raises ResultFormatError."""
    with pytest.raises(ResultFormatError, match="not an Arrow IPC stream"):
        decode_result(pack({"$table": b"not arrow"}))


def test_a_table_that_is_not_bytes_is_refused() -> None:
    """``{"$table": <a string>}`` raises ResultFormatError."""
    with pytest.raises(ResultFormatError, match="must be bytes"):
        decode_result(pack({"$table": "text"}))


def test_an_arrow_stream_with_an_extension_column_is_refused(tagged: pa.ExtensionType) -> None:
    """A table whose column has an extension type never reaches pandas."""
    column = pa.ExtensionArray.from_storage(tagged, pa.array([1, 2], type=pa.int64()))
    data = arrow_stream(pa.table({"ok": [1, 2], "tagged": column}))

    with pytest.raises(ResultFormatError, match="'tagged' has an extension type"):
        frame_from_arrow(data)
    with pytest.raises(ResultFormatError, match="extension type"):
        decode_result(pack({"$table": data}))


def test_an_extension_type_nested_in_a_list_column_is_refused(
    tagged: pa.ExtensionType,
) -> None:
    """An extension type inside a list column is refused like a top-level one."""
    values = pa.ExtensionArray.from_storage(tagged, pa.array([1, 2], type=pa.int64()))
    column = pa.ListArray.from_arrays(pa.array([0, 1, 2], type=pa.int32()), values)

    with pytest.raises(ResultFormatError, match="extension type"):
        frame_from_arrow(arrow_stream(pa.table({"nested": column})))


def test_schema_metadata_is_dropped_but_values_survive() -> None:
    """A stream carrying pandas metadata (here naming an index) still gives its values."""
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=pd.Index([10, 20], name="k"))
    table = pa.Table.from_pandas(frame, preserve_index=True)
    assert table.schema.metadata is not None
    assert b"pandas" in table.schema.metadata

    back = frame_from_arrow(arrow_stream(table))

    expected = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "k": [10, 20]})
    pd.testing.assert_frame_equal(back, expected)


def test_schema_metadata_cannot_set_column_types() -> None:
    """pandas metadata that claims another dtype is ignored: the Arrow types decide."""
    table = pa.table({"a": pa.array([1, 2], type=pa.int64())})
    forged = table.replace_schema_metadata(
        {
            b"pandas": b'{"index_columns": [], "column_indexes": [], "columns": '
            b'[{"name": "a", "field_name": "a", "pandas_type": "categorical", '
            b'"numpy_type": "category", "metadata": null}], "pandas_version": "2.2.0"}'
        }
    )

    back = frame_from_arrow(arrow_stream(forged))

    assert back["a"].dtype == np.dtype("int64")
    assert back["a"].tolist() == [1, 2]


def test_nesting_to_32_levels_round_trips() -> None:
    """A value 32 levels deep is within the limit."""
    value = nested_lists(32)

    assert decode_result(encode_result(value)) == value


def test_nesting_deeper_than_32_levels_is_refused_both_ways() -> None:
    """Encoding or decoding a value 33 levels deep raises ResultFormatError."""
    value = nested_lists(33)

    with pytest.raises(ResultFormatError, match="deeper than 32"):
        encode_result(value)
    with pytest.raises(ResultFormatError, match="deeper than 32"):
        decode_result(pack(value))


def test_map_nesting_deeper_than_32_levels_is_refused() -> None:
    """Maps count towards the depth limit as lists do."""
    value: object = "leaf"
    for _ in range(40):
        value = {"k": value}

    with pytest.raises(ResultFormatError, match="deeper than 32"):
        encode_result(value)
    with pytest.raises(ResultFormatError, match="deeper than 32"):
        decode_result(pack(value))


def test_a_user_map_with_the_reserved_table_key_is_refused_or_round_trips() -> None:
    """A plain ``{"$table": bytes}`` map is either refused at encoding or comes back as is."""
    value = {"$table": b"user bytes"}
    try:
        data = encode_result(value)
    except ResultFormatError:
        return
    assert decode_result(data) == value


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=10).filter(lambda key: key != "$table"), children, max_size=5
        )
    ),
    max_leaves=30,
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(value=json_like)
def test_plain_values_round_trip(value: object) -> None:
    """Any tree of plain values comes back equal from its wire form."""
    assert decode_result(encode_result(value)) == value
