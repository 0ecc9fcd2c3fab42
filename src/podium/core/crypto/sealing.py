"""Sealing a message to a party's X25519 public key (ECIES-style), used for task requests.

Layout: ``0x01 || ephemeral public (32) || nonce (12) || AES-256-GCM ciphertext and tag``.
The key is HKDF-SHA256 of the X25519 shared secret with salt ``ephemeral || recipient``
and info ``b"podium/seal/v1"``, so it is bound to both public keys; the caller's
associated data (for example the pod id and task id) is authenticated but not sent.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from podium.core.crypto.errors import DecryptionError, InvalidKeyError
from podium.core.crypto.keys import EncryptionKeyPair

__all__ = ["SEAL_OVERHEAD", "SEAL_VERSION", "open_sealed", "seal"]

SEAL_VERSION = 0x01
_INFO = b"podium/seal/v1"
_KEY = 32
_NONCE = 12
_TAG = 16
_HEADER = 1 + _KEY + _NONCE
#: Bytes a sealed message adds to its plaintext.
SEAL_OVERHEAD = _HEADER + _TAG


def seal(recipient_public: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """``plaintext`` sealed so that only the holder of ``recipient_public``'s private key
    can open it, and only with the same ``aad``.

    Raises:
        InvalidKeyError: ``recipient_public`` is not a usable X25519 public key.
    """
    recipient = _public_key(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    key = _derive(ephemeral, recipient, ephemeral_public, recipient_public, InvalidKeyError)
    nonce = os.urandom(_NONCE)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    return bytes([SEAL_VERSION]) + ephemeral_public + nonce + ciphertext


def open_sealed(private: EncryptionKeyPair, sealed: bytes, *, aad: bytes) -> bytes:
    """The plaintext of a message :func:`seal` sealed to ``private``'s public key.

    Raises:
        DecryptionError: An unknown version, too short, a low-order ephemeral key, the wrong
            key or associated data, or any byte changed.
    """
    if len(sealed) < SEAL_OVERHEAD:
        raise DecryptionError(
            f"a sealed message of {len(sealed)} bytes; it has at least {SEAL_OVERHEAD}"
        )
    if sealed[0] != SEAL_VERSION:
        raise DecryptionError(
            f"sealed with version {sealed[0]}; this Podium opens version {SEAL_VERSION} only"
        )
    ephemeral_public = sealed[1 : 1 + _KEY]
    nonce = sealed[1 + _KEY : _HEADER]
    ephemeral = _public_key(ephemeral_public, error=DecryptionError)
    key = _derive(
        private.private_key, ephemeral, ephemeral_public, private.public_bytes, DecryptionError
    )
    try:
        return AESGCM(key).decrypt(nonce, sealed[_HEADER:], aad)
    except InvalidTag:
        raise DecryptionError(
            "a sealed message that does not open: sealed to another key, with other "
            "associated data, or changed on the way"
        ) from None


def _public_key(
    raw: bytes, *, error: type[InvalidKeyError | DecryptionError] = InvalidKeyError
) -> X25519PublicKey:
    if len(raw) != _KEY:
        raise error(f"an X25519 public key has 32 bytes, not {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def _derive(
    private: X25519PrivateKey,
    public: X25519PublicKey,
    ephemeral_public: bytes,
    recipient_public: bytes,
    error: type[InvalidKeyError | DecryptionError],
) -> bytes:
    """The AES key for one sealed message; refuses low-order points (all-zero secrets)."""
    try:
        shared = private.exchange(public)
    except ValueError:  # OpenSSL refuses a low-order point itself
        shared = bytes(_KEY)
    if hmac.compare_digest(shared, bytes(_KEY)):
        raise error("a low-order X25519 public key (no shared secret); refused")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY,
        salt=ephemeral_public + recipient_public,
        info=_INFO,
    )
    return hkdf.derive(shared)
