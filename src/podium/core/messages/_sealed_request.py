"""A ``JOB_REQUEST`` envelope's body: the :class:`JobRequest` record sealed to one pod.

The modeller seals the encoded record to the pod's registered X25519 key
(:func:`~podium.core.crypto.seal`) with the task id and the pod id in the associated data,
so a body lifted into another task's request, or relayed to another pod, does not open.
Only the pod reads the task and its session key; the hub relays ciphertext.
"""

from __future__ import annotations

from podium.core.crypto import EncryptionKeyPair, open_sealed, seal
from podium.core.messages._errors import PayloadError
from podium.core.messages._job_request import JobRequest
from podium.core.messages._payloads import decode_payload, encode_payload
from podium.core.messages._types import MessageType

__all__ = ["job_request_aad", "open_job_request", "seal_job_request"]


def job_request_aad(task_id: str, pod_id: str) -> bytes:
    """The associated data that binds a sealed request to its task and pod."""
    return f"podium job request\x00{task_id}\x00{pod_id}".encode()


def seal_job_request(request: JobRequest, pod_public: bytes, *, pod_id: str) -> bytes:
    """The body of the ``JOB_REQUEST`` envelope carrying ``request`` to the pod ``pod_id``
    (``<owner>/<name>``) whose X25519 public key is ``pod_public``.

    Raises:
        InvalidKeyError: ``pod_public`` is not a usable X25519 public key.
    """
    return seal(pod_public, encode_payload(request), aad=job_request_aad(request.task_id, pod_id))


def open_job_request(
    keys: EncryptionKeyPair, body: bytes, *, task_id: str, pod_id: str
) -> JobRequest:
    """The request in a ``JOB_REQUEST`` body for task ``task_id``, as the pod ``pod_id``
    opens it with its encryption key. Not yet verified: see :meth:`JobRequest.verify`.

    Raises:
        DecryptionError: The body was sealed to another pod or task, or changed.
        PayloadError: It opened but holds no valid job request, or one of another task.
    """
    plain = open_sealed(keys, body, aad=job_request_aad(task_id, pod_id))
    record = decode_payload(MessageType.JOB_REQUEST, plain)
    if not isinstance(record, JobRequest) or record.task_id != task_id:
        raise PayloadError(f"the sealed job request is not one for task {task_id}")
    return record
