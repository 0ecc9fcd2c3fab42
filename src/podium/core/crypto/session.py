"""Per-task session keys and the ordered, authenticated message streams they protect.

Each accepted task has one random 32-byte :class:`SessionKey` per pod, chosen by the
modeller and carried inside the sealed, signed task request. Every later message between
the modeller and that pod is AES-256-GCM sealed with a fresh random 12-byte nonce
(prepended to the ciphertext) and associated data binding ``(version, task_id, sender,
seq, final)``.

Both directions use the same key. That is safe because the sender is in the associated
data: a message the pod sent cannot be reflected back to the pod as if the modeller had
sent it, since the pod's :class:`SessionOpener` for the modeller expects
``sender = modeller``. Random nonces keep the two directions from ever reusing a nonce in
practice (collisions become a concern only after about 2**32 messages under one key).

:class:`SessionOpener` accepts exactly the next sequence number, so a replayed, reordered
or skipped message is refused, and :meth:`SessionOpener.finish` refuses a stream whose
final message never came (truncation). The relay's at-least-once delivery means a receiver
drops duplicates by ``seq`` before opening; a message that fails to open does not advance
the stream, so its genuine retransmission is still accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from podium.core.crypto.encoding import b64url_decode, b64url_encode, canonical_bytes
from podium.core.crypto.errors import DecryptionError, InvalidKeyError, SequenceError

__all__ = ["SESSION_VERSION", "SessionKey", "SessionOpener", "SessionSealer"]

SESSION_VERSION = 1
_KEY = 32
_NONCE = 12
_TAG = 16


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A 32-byte AES-256-GCM key for one (task, pod); its repr never shows the key."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != _KEY:
            raise InvalidKeyError(f"a session key has {_KEY} bytes, not {len(self.secret)}")

    @classmethod
    def generate(cls) -> Self:
        """A fresh random key."""
        return cls(os.urandom(_KEY))

    @property
    def b64(self) -> str:
        """The key as base64url, to carry inside a sealed task request's payload."""
        return b64url_encode(self.secret)

    @classmethod
    def from_b64(cls, text: str) -> Self:
        """The key :attr:`b64` encoded.

        Raises:
            InvalidKeyError: ``text`` is not base64url of 32 bytes.
        """
        try:
            return cls(b64url_decode(text))
        except ValueError as exc:
            raise InvalidKeyError("a session key that is not base64url") from exc


def _associated_data(task_id: str, sender: str, seq: int, final: bool) -> bytes:
    return canonical_bytes(
        {"v": SESSION_VERSION, "task_id": task_id, "sender": sender, "seq": seq, "final": final}
    )


class SessionSealer:
    """Seals one sender's messages of one task, numbering them from 0."""

    __slots__ = ("_aead", "_closed", "_next", "sender", "task_id")

    def __init__(self, key: SessionKey, task_id: str, sender: str) -> None:
        self._aead = AESGCM(key.secret)
        self.task_id = task_id
        self.sender = sender
        self._next = 0
        self._closed = False

    def seal(self, plaintext: bytes, *, final: bool = False) -> tuple[int, bytes]:
        """The sequence number and ciphertext of the next message; ``final`` marks the
        last one, after which this sealer refuses to seal more.

        Raises:
            SequenceError: The final message was already sealed.
        """
        if self._closed:
            raise SequenceError(
                f"task {self.task_id}: {self.sender} already sealed its final message"
            )
        seq = self._next
        nonce = os.urandom(_NONCE)
        aad = _associated_data(self.task_id, self.sender, seq, final)
        ciphertext = nonce + self._aead.encrypt(nonce, plaintext, aad)
        self._next += 1
        self._closed = final
        return seq, ciphertext


class SessionOpener:
    """Opens one sender's messages of one task, strictly in order."""

    __slots__ = ("_aead", "_finished", "_next", "sender", "task_id")

    def __init__(self, key: SessionKey, task_id: str, sender: str) -> None:
        self._aead = AESGCM(key.secret)
        self.task_id = task_id
        self.sender = sender
        self._next = 0
        self._finished = False

    @property
    def next_seq(self) -> int:
        """The sequence number the next message must carry."""
        return self._next

    @property
    def finished(self) -> bool:
        """Whether the final message was opened."""
        return self._finished

    def open(self, seq: int, ciphertext: bytes, *, final: bool) -> bytes:
        """The plaintext of message ``seq``, which must be the next one expected.

        Raises:
            SequenceError: ``seq`` is not the next one (a replay, a reordering or a gap),
                or the final message was already opened.
            DecryptionError: The wrong key, task, sender, sequence number or final flag,
                or the ciphertext was changed.
        """
        where = f"task {self.task_id}, from {self.sender}"
        if self._finished:
            raise SequenceError(f"{where}: message {seq} after the final message")
        if seq != self._next:
            kind = "a replayed or reordered" if seq < self._next else "a gap before"
            raise SequenceError(f"{where}: {kind} message {seq}; expected {self._next}")
        if len(ciphertext) < _NONCE + _TAG:
            raise DecryptionError(f"{where}: message {seq} is too short to be sealed")
        aad = _associated_data(self.task_id, self.sender, seq, final)
        try:
            sealed = memoryview(ciphertext)  # no copy of a large body
            plaintext = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag:
            raise DecryptionError(
                f"{where}: message {seq} does not open: another key, task, sender or "
                "position in the stream, or changed on the way"
            ) from None
        self._next += 1
        self._finished = final
        return plaintext

    def finish(self) -> None:
        """Check that the stream ended with its final message.

        Raises:
            SequenceError: The final message never came: the stream was truncated.
        """
        if not self._finished:
            raise SequenceError(
                f"task {self.task_id}, from {self.sender}: the stream ended after "
                f"{self._next} messages without its final message (truncated)"
            )
