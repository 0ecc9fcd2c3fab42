"""Signed task requests: what a modeller signs and a pod checks before running anything.

The wire form is ``signature (64) || body``, where the body is the canonical JSON of
``{"v", "modeller", "pod_id", "task_hash", "timestamp", "nonce", "payload"}``; the whole is
then sealed to the pod (:func:`~podium.core.crypto.seal`). A pod opens it, parses it with
:meth:`SignedRequest.from_bytes`, looks up ``request.modeller``'s registered signing key,
then calls :func:`check_request`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self, TypeVar

from podium.core.crypto.encoding import (
    b64url_decode,
    b64url_encode,
    canonical_bytes,
    parse_canonical,
)
from podium.core.crypto.errors import (
    CanonicalEncodingError,
    InvalidSignatureError,
    ReplayedNonceError,
    StaleRequestError,
)
from podium.core.crypto.keys import SigningKeyPair
from podium.core.crypto.nonces import NonceRegistry
from podium.core.crypto.signing import SIGNATURE_SIZE, sign, verify

__all__ = ["MAX_AGE", "MAX_FUTURE", "NONCE_SIZE", "SignedRequest", "check_request"]

REQUEST_VERSION = 1
NONCE_SIZE = 16
#: A request older than this is stale.
MAX_AGE = timedelta(minutes=5)
#: A request dated further ahead than this is refused (clocks differ, but not by much).
MAX_FUTURE = timedelta(seconds=30)
_T = TypeVar("_T")
_FIELDS = {"v", "modeller", "pod_id", "task_hash", "timestamp", "nonce", "payload"}


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A task request signed by its modeller. ``timestamp`` is in whole Unix seconds;
    ``payload`` is any canonical-encodable mapping (the task, the session key...)."""

    modeller: str
    pod_id: str
    task_hash: str
    timestamp: int
    nonce: bytes
    payload: Mapping[str, Any]
    signature: bytes

    @classmethod
    def build(
        cls,
        keys: SigningKeyPair,
        *,
        modeller: str,
        pod_id: str,
        task_hash: str,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> Self:
        """A request dated ``now`` with a fresh random nonce, signed with ``keys``.

        Raises:
            CanonicalEncodingError: ``payload`` has no canonical encoding (floats, bytes).
        """
        timestamp = int(_aware(now).timestamp())
        nonce = os.urandom(NONCE_SIZE)
        body = _body(
            modeller=modeller,
            pod_id=pod_id,
            task_hash=task_hash,
            timestamp=timestamp,
            nonce=nonce,
            payload=payload,
        )
        return cls(modeller, pod_id, task_hash, timestamp, nonce, payload, sign(keys, body))

    @property
    def body(self) -> bytes:
        """The canonical bytes the signature covers."""
        return _body(
            modeller=self.modeller,
            pod_id=self.pod_id,
            task_hash=self.task_hash,
            timestamp=self.timestamp,
            nonce=self.nonce,
            payload=self.payload,
        )

    def to_bytes(self) -> bytes:
        """The wire form: signature, then body."""
        return self.signature + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse a request's wire form. Nothing is verified yet: see :func:`check_request`.

        Raises:
            InvalidSignatureError: ``data`` is not a well-formed signed request.
        """
        signature, body = data[:SIGNATURE_SIZE], data[SIGNATURE_SIZE:]
        try:
            fields = parse_canonical(body)
        except CanonicalEncodingError as exc:
            raise InvalidSignatureError(f"a malformed signed request: {exc}") from exc
        if not isinstance(fields, dict) or set(fields) != _FIELDS:
            raise InvalidSignatureError(
                f"a signed request has exactly the fields {', '.join(sorted(_FIELDS))}"
            )
        if fields["v"] != REQUEST_VERSION:
            raise InvalidSignatureError(f"a signed request of unknown version {fields['v']!r}")
        return cls(
            modeller=_typed(fields, "modeller", str),
            pod_id=_typed(fields, "pod_id", str),
            task_hash=_typed(fields, "task_hash", str),
            timestamp=_typed(fields, "timestamp", int),
            nonce=_nonce(_typed(fields, "nonce", str)),
            payload=_typed(fields, "payload", dict),
            signature=signature,
        )


def check_request(
    request: SignedRequest,
    *,
    public: bytes,
    pod_id: str,
    now: datetime,
    nonces: NonceRegistry,
    max_age: timedelta = MAX_AGE,
    max_future: timedelta = MAX_FUTURE,
) -> None:
    """Check a request before acting on it, in this order: signed by ``public`` (the
    modeller's registered signing key), addressed to ``pod_id``, dated within
    ``max_age`` before ``now`` and ``max_future`` after, and a nonce never seen before.
    The nonce is recorded only once everything else passed, so forged or stale requests
    cannot fill the registry.

    Raises:
        InvalidSignatureError: A bad signature, or a request addressed to another pod.
        StaleRequestError: Too old, or dated in the future.
        ReplayedNonceError: The nonce was seen before: a replay.
    """
    verify(public, request.body, request.signature)
    if request.pod_id != pod_id:
        raise InvalidSignatureError(
            f"a request signed for pod {request.pod_id!r} reached pod {pod_id!r}"
        )
    age = _aware(now).timestamp() - request.timestamp
    if age > max_age.total_seconds():
        raise StaleRequestError(
            f"a request sent {age:.0f} s ago, more than the {max_age.total_seconds():.0f} s "
            "allowed; send it again, and check the modeller's clock if this repeats"
        )
    if -age > max_future.total_seconds():
        raise StaleRequestError(
            f"a request dated {-age:.0f} s in the future, more than the "
            f"{max_future.total_seconds():.0f} s allowed; check the clocks of the modeller "
            "and the pod"
        )
    if nonces.seen_before(request.nonce, now):
        raise ReplayedNonceError("a request whose nonce was seen before: a replay, refused")


def _body(
    *,
    modeller: str,
    pod_id: str,
    task_hash: str,
    timestamp: int,
    nonce: bytes,
    payload: Mapping[str, Any],
) -> bytes:
    return canonical_bytes(
        {
            "v": REQUEST_VERSION,
            "modeller": modeller,
            "pod_id": pod_id,
            "task_hash": task_hash,
            "timestamp": timestamp,
            "nonce": b64url_encode(nonce),
            "payload": payload,
        }
    )


def _typed(fields: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = fields[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidSignatureError(f"a signed request whose {name} is not a {kind.__name__}")
    return value


def _nonce(text: str) -> bytes:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raw = b""
    if len(raw) != NONCE_SIZE or b64url_encode(raw) != text:
        raise InvalidSignatureError(f"a signed request's nonce has {NONCE_SIZE} bytes")
    return raw


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, for example datetime.now(UTC)")
    return now
