"""The ``JOB_REQUEST`` payload: a :class:`~podium.core.crypto.SignedRequest` and its task id.

There is one way to sign a task request, :mod:`podium.core.crypto.requests`; this record
only carries its wire form. The signed request's ``payload`` is::

    {"task_id": <the task id>, "task": <the task definition>,
     "session_key": <this pod's session key, base64url>}

and its ``task_hash`` is :func:`task_hash_of` the task. The whole record travels sealed to
the pod (:func:`~podium.core.crypto.seal`), so the session key stays secret from the hub.

**Pod ids.** The signed request names its pod as ``<owner>/<name>``, the hub registry's
pod id (the form a pod knows itself by), not the party name ``<owner>.<name>`` used in
mailboxes: :func:`pod_id_of` turns one into the other.

The modeller calls :meth:`JobRequest.build`; the pod decodes the record, looks up the
signing key of :attr:`JobRequest.modeller` in the hub registry, then calls
:meth:`JobRequest.verify`, which returns a :class:`VerifiedJobRequest` or raises the
crypto error whose ``TASK_ABORT`` reason to answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from podium.core.crypto import (
    MAX_AGE,
    MAX_FUTURE,
    InvalidKeyError,
    InvalidSignatureError,
    NonceRegistry,
    SessionKey,
    SignedRequest,
    SigningKeyPair,
    canonical_bytes,
    check_request,
)
from podium.core.messages._base import Payload
from podium.core.messages._errors import MessageError
from podium.core.messages._names import is_valid_task_id
from podium.core.messages._values import check_bytes
from podium.core.names import NAME_CHARS, is_valid_name

__all__ = ["MAX_REQUEST_BYTES", "JobRequest", "VerifiedJobRequest", "pod_id_of", "task_hash_of"]

#: The largest signed request a pod accepts (signature and canonical JSON body).
MAX_REQUEST_BYTES = 8 << 20
_POD_ID_RE = re.compile(rf"{NAME_CHARS}/{NAME_CHARS}")
_PARTY_RE = re.compile(rf"(?P<owner>{NAME_CHARS})\.(?P<name>{NAME_CHARS})")
_PAYLOAD_KEYS = frozenset({"task_id", "task", "session_key"})


def task_hash_of(task: Mapping[str, Any]) -> str:
    """SHA-256 of the task's canonical JSON, as 64 lowercase hex digits.

    Raises:
        CanonicalEncodingError: ``task`` holds floats, bytes or other values with no
            canonical encoding (write a float as a string, or as an int of smaller units).
    """
    return hashlib.sha256(canonical_bytes(task)).hexdigest()


def pod_id_of(party: str) -> str:
    """The pod id ``<owner>/<name>`` of the pod party ``<owner>.<name>``.

    Raises:
        MessageError: ``party`` is not a pod's party name.
    """
    match = _PARTY_RE.fullmatch(party) if type(party) is str else None
    if match is None:
        raise MessageError(f"{party!r} is not a pod's party name '<owner>.<name>'")
    return f"{match['owner']}/{match['name']}"


@dataclass(frozen=True, slots=True)
class VerifiedJobRequest:
    """What a pod learns from a job request that passed :meth:`JobRequest.verify`."""

    task_id: str
    modeller: str
    pod_id: str
    task: dict[str, Any]
    task_hash: str
    session_key: SessionKey
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class JobRequest(Payload):
    """A modeller's signed request to run a task on a pod.

    Attributes:
        task_id: The new task's id (the envelope's ``task_id``), which the signed payload
            must repeat.
        request: :meth:`SignedRequest.to_bytes` of the request; parsed when the record is
            built (a malformed one is refused) but verified only by :meth:`verify`.
    """

    task_id: str
    request: bytes
    _signed: SignedRequest = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_task_id(self.task_id):
            raise MessageError("task_id must be 32 lowercase hex digits")
        check_bytes(self.request, "request", max_len=MAX_REQUEST_BYTES)
        try:
            signed = SignedRequest.from_bytes(self.request)
        except InvalidSignatureError as error:
            raise MessageError(f"request: {error}") from None
        object.__setattr__(self, "_signed", signed)

    @classmethod
    def build(
        cls,
        keys: SigningKeyPair,
        *,
        modeller: str,
        pod_id: str,
        task: Mapping[str, Any],
        session_key: SessionKey,
        task_id: str,
        now: datetime,
    ) -> Self:
        """The request of ``modeller`` (a user name) to run ``task`` as ``task_id`` on the
        pod ``pod_id`` (``<owner>/<name>``), signed with ``keys`` and dated ``now``.

        Raises:
            MessageError: A malformed task id, modeller name or pod id.
            CanonicalEncodingError: ``task`` has no canonical encoding (floats, bytes).
        """
        if not is_valid_task_id(task_id):
            raise MessageError(f"task id {task_id!r} is not 32 lowercase hex digits")
        if not is_valid_name(modeller):
            raise MessageError(f"modeller {modeller!r} is not a user name")
        if type(pod_id) is not str or _POD_ID_RE.fullmatch(pod_id) is None:
            raise MessageError(f"pod id {pod_id!r} is not '<owner>/<name>'")
        payload = {"task_id": task_id, "task": task, "session_key": session_key.b64}
        signed = SignedRequest.build(
            keys,
            modeller=modeller,
            pod_id=pod_id,
            task_hash=task_hash_of(task),
            payload=payload,
            now=now,
        )
        return cls(task_id, signed.to_bytes())

    @property
    def modeller(self) -> str:
        """The user the request claims to come from (not verified yet: look up this
        user's signing key, then call :meth:`verify` with it)."""
        return self._signed.modeller

    def verify(
        self,
        *,
        public: bytes,
        pod_id: str,
        now: datetime,
        nonces: NonceRegistry,
        max_age: timedelta = MAX_AGE,
        max_future: timedelta = MAX_FUTURE,
    ) -> VerifiedJobRequest:
        """Check the request with :func:`~podium.core.crypto.check_request` (signed by
        ``public``, addressed to ``pod_id``, fresh, nonce unseen), then its payload: the
        task id of this record, a task whose hash is the signed one, a session key.

        Raises:
            InvalidSignatureError: A bad signature, another pod's request, or a signed
                payload that does not match (task id, task hash, fields, session key).
            StaleRequestError: Too old, or dated in the future.
            ReplayedNonceError: A replay.
        """
        signed = self._signed
        check_request(
            signed,
            public=public,
            pod_id=pod_id,
            now=now,
            nonces=nonces,
            max_age=max_age,
            max_future=max_future,
        )
        task, session_key = _open_payload(signed, self.task_id)
        return VerifiedJobRequest(
            task_id=self.task_id,
            modeller=signed.modeller,
            pod_id=signed.pod_id,
            task=task,
            task_hash=signed.task_hash,
            session_key=session_key,
            issued_at=datetime.fromtimestamp(signed.timestamp, UTC),
        )


def _open_payload(signed: SignedRequest, task_id: str) -> tuple[dict[str, Any], SessionKey]:
    payload = signed.payload
    if set(payload) != _PAYLOAD_KEYS:
        raise InvalidSignatureError(
            f"a job request's payload has exactly the fields {', '.join(sorted(_PAYLOAD_KEYS))}"
        )
    if payload["task_id"] != task_id:
        raise InvalidSignatureError(
            f"a job request signed for task {payload['task_id']!r} arrived as task {task_id!r}"
        )
    task = payload["task"]
    if not isinstance(task, dict):
        raise InvalidSignatureError("a job request whose task is not a mapping")
    if task_hash_of(task) != signed.task_hash:
        raise InvalidSignatureError(
            "a job request whose signed task hash is not the hash of its task; the modeller "
            "must sign task_hash_of(task)"
        )
    key = payload["session_key"]
    try:
        session_key = SessionKey.from_b64(key if isinstance(key, str) else "")
    except InvalidKeyError as error:
        raise InvalidSignatureError(f"a job request's session key is unusable: {error}") from None
    return task, session_key
