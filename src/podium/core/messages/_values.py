"""Checks of single values against the wire rules, shared by envelopes and payloads.

Each check returns the value (normalised where noted) or raises :class:`MessageError`
naming the field. ``bool`` is never accepted where an ``int`` is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias

from podium.core.messages._errors import MessageError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_META_KEYS",
    "MAX_META_STR",
    "Json",
    "MetaValue",
    "check_bytes",
    "check_float",
    "check_int",
    "check_json",
    "check_meta",
    "check_str",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_META_KEYS = 32
MAX_META_STR = 256
MAX_JSON_DEPTH = 32

MetaValue: TypeAlias = str | int | float | bool | None
Json: TypeAlias = "bool | int | float | str | bytes | list[Json] | dict[str, Json] | None"

_META_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_int(value: object, what: str, *, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An ``int`` (not a ``bool``) with ``low <= value <= high``."""
    if type(value) is not int:
        raise MessageError(f"{what} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise MessageError(f"{what} must be between {low} and {high}, not {value}")
    return value


def check_float(value: object, what: str, *, low: float = -math.inf) -> float:
    """A finite ``float`` no smaller than ``low``; an ``int`` is converted."""
    if type(value) is int:
        value = float(value)
    if type(value) is not float:
        raise MessageError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < low:
        raise MessageError(f"{what} must be a finite number no smaller than {low}")
    return value


def check_str(value: object, what: str, *, max_chars: int) -> str:
    """A ``str`` of at most ``max_chars`` characters that encodes as UTF-8."""
    if type(value) is not str:
        raise MessageError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > max_chars:
        raise MessageError(f"{what} is longer than {max_chars} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MessageError(f"{what} is not valid Unicode (a lone surrogate)") from None
    return value


def check_bytes(value: object, what: str, *, min_len: int = 0, max_len: int | None = None) -> bytes:
    """A ``bytes`` object with a length in ``[min_len, max_len]``."""
    if type(value) is not bytes:
        raise MessageError(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        raise MessageError(f"{what} must be {min_len} to {max_len} bytes, not {len(value)}")
    return value


def _check_meta_value(value: object, what: str) -> MetaValue:
    if value is None or type(value) is bool:
        return value
    if type(value) is int:
        return check_int(value, what)
    if type(value) is float:
        return check_float(value, what)
    if type(value) is str:
        return check_str(value, what, max_chars=MAX_META_STR)
    raise MessageError(f"{what} must be a string, number, boolean or None")


def check_meta(meta: object) -> Mapping[str, MetaValue]:
    """Envelope metadata: at most 32 short keys (``A-Z a-z 0-9 _ . -``, up to 64) with
    scalar values (strings up to 256 characters). Returns a read-only copy."""
    if not isinstance(meta, Mapping):
        raise MessageError(f"meta must be a mapping, not {type(meta).__name__}")
    if len(meta) > MAX_META_KEYS:
        raise MessageError(f"meta has more than {MAX_META_KEYS} keys")
    checked: dict[str, MetaValue] = {}
    for key, value in meta.items():
        if type(key) is not str or _META_KEY_RE.fullmatch(key) is None:
            raise MessageError("meta keys must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
        checked[key] = _check_meta_value(value, f"meta[{key!r}]")
    return MappingProxyType(checked)


def check_json(value: object, what: str, *, depth: int = 0) -> Json:
    """A JSON-like value (plus bytes) nested at most 32 deep: ``None``, ``bool``, ``int``
    (64-bit), finite ``float``, ``str``, ``bytes``, lists (tuples become lists) and dicts
    with ``str`` keys. Returns a normalised copy."""
    if value is None or type(value) is bool or type(value) is bytes:
        return value
    if type(value) is int:
        return check_int(value, what)
    if type(value) is float:
        return check_float(value, what)
    if type(value) is str:
        return check_str(value, what, max_chars=1 << 20)
    if depth >= MAX_JSON_DEPTH:
        raise MessageError(f"{what} is nested more than {MAX_JSON_DEPTH} deep")
    if type(value) is list or type(value) is tuple:
        return [check_json(item, what, depth=depth + 1) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Json] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise MessageError(f"{what} has a key that is not a string")
            out[check_str(key, what, max_chars=1024)] = check_json(item, what, depth=depth + 1)
        return out
    raise MessageError(f"{what} holds a {type(value).__name__}, which has no wire form")
