"""The errors of :mod:`podium.core.crypto` (the tree is drawn in the package docstring)."""

from __future__ import annotations

from podium.core.errors import ExitCode, PodiumError

__all__ = [
    "CanonicalEncodingError",
    "CryptoError",
    "DecryptionError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "KeyFileError",
    "ReplayedNonceError",
    "SequenceError",
    "StaleRequestError",
]


class CryptoError(PodiumError):
    """A key, a signature or a sealed message that Podium refuses."""


class KeyFileError(CryptoError):
    """A private key file that is missing, unsafe, already there or not a key of its kind."""

    exit_code = ExitCode.CONFIG


class InvalidKeyError(CryptoError):
    """Public or secret key bytes of the wrong length or not usable for their algorithm."""


class DecryptionError(CryptoError):
    """A sealed or session message that cannot be opened: wrong key, wrong associated data
    (task id, sender, sequence number), an unknown version, too short, or tampered with."""


class SequenceError(CryptoError):
    """A session message out of order: replayed, reordered, after a gap, after the final
    message, or a stream that ended before its final message (truncated)."""


class CanonicalEncodingError(CryptoError):
    """A value with no canonical encoding (floats, non-string keys, bytes), or bytes that are
    not the canonical encoding of anything."""


class InvalidSignatureError(CryptoError):
    """A signature that does not verify, or a signed request that is malformed or addressed
    to another pod. The relay answers it with ``TASK_ABORT`` reason ``INVALID_SIGNATURE``."""


class StaleRequestError(CryptoError):
    """A signed request older than the allowed age or dated in the future. The relay answers
    it with ``TASK_ABORT`` reason ``STALE_REQUEST``."""


class ReplayedNonceError(CryptoError):
    """A signed request whose nonce was seen before: a replay. The relay answers it with
    ``TASK_ABORT`` reason ``STALE_REQUEST``."""
