"""Strict msgpack unpacking shared by frames and payloads.

Never ``raw=True`` (strings are decoded as UTF-8, strictly), only ``str`` map keys,
no duplicate keys, no extension types (timestamps included), and length limits on every
container so a small input cannot unpack into a huge one. Every failure is a
:class:`Malformed` with a short reason; callers translate it to their public error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

import msgpack

__all__ = ["Limits", "Malformed", "pack", "require_keys", "unpack"]


class Malformed(Exception):
    """Input that is not acceptable msgpack; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """Largest string (bytes of UTF-8), binary, array and map accepted while unpacking."""

    max_str_len: int
    max_bin_len: int
    max_array_len: int
    max_map_len: int


def _pairs(pairs: list[tuple[object, object]]) -> dict[object, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise Malformed("a map repeats a key")
    return out


def _no_ext(code: int, data: bytes) -> NoReturn:
    raise Malformed("extension types are not allowed")


def unpack(data: bytes, limits: Limits) -> object:
    """Unpack exactly one msgpack object from ``data``."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            object_pairs_hook=_pairs,
            ext_hook=_no_ext,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise Malformed("trailing bytes after the object") from None
    except Malformed:
        raise
    except (ValueError, TypeError, msgpack.UnpackException):
        # FormatError, StackError, truncated input, limits, invalid UTF-8, bad map keys
        raise Malformed("not valid msgpack within the limits") from None


def pack(value: object) -> bytes:
    """Pack ``value`` (built from checked values only) with bin types for bytes."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def require_keys(value: object, keys: frozenset[str], what: str) -> Mapping[str, object]:
    """``value`` as a map with exactly ``keys``."""
    if type(value) is not dict:
        raise Malformed(f"{what} is not a map")
    if value.keys() != keys:
        unknown = value.keys() - keys
        raise Malformed(f"{what} has unknown keys" if unknown else f"{what} lacks keys")
    return value
