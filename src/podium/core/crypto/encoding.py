"""Byte encodings shared by the hub and the parties: base64url without padding, key ids, and
the canonical JSON that signatures and associated data are computed over."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from podium.core.crypto.errors import CanonicalEncodingError

__all__ = [
    "b64url_decode",
    "b64url_encode",
    "canonical_bytes",
    "key_id_for",
    "parse_canonical",
]

#: Base64url, padding allowed; the decoder alone would skip characters outside it.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
#: Nesting deeper than this is refused rather than risking a RecursionError.
MAX_DEPTH = 32


def b64url_encode(raw: bytes) -> str:
    """``raw`` as base64url without padding (the hub registry's format for public keys)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of base64url ``text``, padding optional.

    Raises:
        ValueError: ``text`` has characters outside base64url or a length no encoding has.
    """
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    body = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def key_id_for(purpose: str, raw: bytes) -> str:
    """A key's id: derived from its purpose (``"signing"`` or ``"encryption"``) and its raw
    public bytes, so it is the same on the hub and on every party."""
    return hashlib.sha256(purpose.encode() + b"\0" + raw).hexdigest()[:24]


def canonical_bytes(obj: object) -> bytes:
    """The one encoding of a JSON-like value that signatures are computed over: UTF-8 JSON
    with keys sorted by code point and no whitespace.

    Allowed: ``dict`` with ``str`` keys, ``list``/``tuple``, ``str``, ``int``, finite
    ``float``, ``bool`` and ``None``. A float is written as Python's shortest repr that
    reads back to the same IEEE 754 double (``0.1`` stays ``0.1``, ``1.0`` stays ``1.0``
    and differs from ``1``), which is the same on every platform Podium runs on. NaN and
    infinities are refused, and so are bytes (encode them with :func:`b64url_encode`),
    non-string keys and strings that are not valid Unicode.

    Raises:
        CanonicalEncodingError: ``obj`` holds a value with no canonical encoding.
    """
    _check(obj, "$", 0)
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalEncodingError(f"a string is not valid Unicode: {exc.reason}") from exc
    except ValueError as exc:  # an int past Python's limit on digits
        raise CanonicalEncodingError(f"no canonical encoding: {exc}") from exc


def _check(obj: object, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalEncodingError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if obj is None or isinstance(obj, str | bool | int):
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise CanonicalEncodingError(f"{path}: {obj!r} has no canonical encoding")
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise CanonicalEncodingError(
                    f"{path}: key {key!r} is a {type(key).__name__}; only str keys are allowed"
                )
            _check(value, f"{path}.{key}", depth + 1)
        return
    if isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        for index, item in enumerate(obj):
            _check(item, f"{path}[{index}]", depth + 1)
        return
    raise CanonicalEncodingError(
        f"{path}: a {type(obj).__name__} has no canonical encoding; {_hint(obj)}"
    )


def _hint(obj: object) -> str:
    if isinstance(obj, bytes | bytearray):
        return "encode bytes with b64url_encode"
    return "use str, int, bool, None, a list or a dict"


def parse_canonical(data: bytes) -> Any:
    """The value whose canonical encoding is exactly ``data``.

    Raises:
        CanonicalEncodingError: ``data`` is not JSON, holds NaN, infinities or duplicate
            keys, or is JSON but not in canonical form (whitespace, key order, escapes,
            a float not in its shortest form).
    """
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CanonicalEncodingError(f"not canonical JSON: {exc}") from exc
    if canonical_bytes(value) != data:
        raise CanonicalEncodingError("JSON that is not in canonical form")
    return value


def _refuse_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} has no canonical encoding")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object with a duplicate key")
    return result
