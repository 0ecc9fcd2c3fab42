"""Podium's end-to-end cryptography (DESIGN.md section 3): keys, sealed task requests,
signatures and per-task session streams. The hub only ever relays what this seals.

- **Keys**: :class:`SigningKeyPair` (Ed25519) and :class:`EncryptionKeyPair` (X25519),
  saved as PKCS8 PEM files with mode 0600; public halves travel as base64url without
  padding, and :func:`key_id_for` gives the hub's id for them.
- **Sealing** (:func:`seal`, :func:`open_sealed`): a task request sealed to a pod's X25519
  key with an ephemeral key, HKDF-SHA256 and AES-256-GCM.
- **Signatures** (:func:`sign`, :func:`verify`) over :func:`canonical_bytes`, and signed
  task requests (:class:`SignedRequest`, :func:`check_request`) with a time stamp and a
  nonce kept in a :class:`NonceRegistry` to refuse replays.
- **Sessions** (:class:`SessionKey`, :class:`SessionSealer`, :class:`SessionOpener`): every
  later message of a task, AES-256-GCM with the task id, sender, sequence number and final
  flag in the associated data, opened strictly in order.

Only the ``cryptography`` library is used; nothing here does I/O except the key files.

The errors::

    CryptoError (PodiumError)
    ├── KeyFileError            exit 2: key file missing, readable by others, exists, wrong kind
    ├── InvalidKeyError         public or session key bytes of the wrong size or unusable
    ├── DecryptionError         a sealed or session message that does not open
    ├── SequenceError           replayed, reordered, gap, after final, truncated stream
    ├── CanonicalEncodingError  a value with no canonical encoding (floats, bytes, ...)
    ├── InvalidSignatureError   TASK_ABORT reason INVALID_SIGNATURE (also malformed request
    │                           or one addressed to another pod)
    ├── StaleRequestError       TASK_ABORT reason STALE_REQUEST (too old, or in the future)
    └── ReplayedNonceError      TASK_ABORT reason STALE_REQUEST (nonce seen before)
"""

from __future__ import annotations

from podium.core.crypto.encoding import (
    b64url_decode,
    b64url_encode,
    canonical_bytes,
    key_id_for,
    parse_canonical,
)
from podium.core.crypto.errors import (
    CanonicalEncodingError,
    CryptoError,
    DecryptionError,
    InvalidKeyError,
    InvalidSignatureError,
    KeyFileError,
    ReplayedNonceError,
    SequenceError,
    StaleRequestError,
)
from podium.core.crypto.keys import ENCRYPTION, SIGNING, EncryptionKeyPair, SigningKeyPair
from podium.core.crypto.nonces import InMemoryNonceRegistry, NonceRegistry
from podium.core.crypto.requests import MAX_AGE, MAX_FUTURE, SignedRequest, check_request
from podium.core.crypto.sealing import SEAL_OVERHEAD, open_sealed, seal
from podium.core.crypto.session import SessionKey, SessionOpener, SessionSealer
from podium.core.crypto.signing import sign, verify

__all__ = [
    "ENCRYPTION",
    "MAX_AGE",
    "MAX_FUTURE",
    "SEAL_OVERHEAD",
    "SIGNING",
    "CanonicalEncodingError",
    "CryptoError",
    "DecryptionError",
    "EncryptionKeyPair",
    "InMemoryNonceRegistry",
    "InvalidKeyError",
    "InvalidSignatureError",
    "KeyFileError",
    "NonceRegistry",
    "ReplayedNonceError",
    "SequenceError",
    "SessionKey",
    "SessionOpener",
    "SessionSealer",
    "SignedRequest",
    "SigningKeyPair",
    "StaleRequestError",
    "b64url_decode",
    "b64url_encode",
    "canonical_bytes",
    "check_request",
    "key_id_for",
    "open_sealed",
    "parse_canonical",
    "seal",
    "sign",
    "verify",
]
