"""Ed25519 signatures over bytes (use :func:`~podium.core.crypto.canonical_bytes` to sign
structured values)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from podium.core.crypto.errors import InvalidSignatureError
from podium.core.crypto.keys import SigningKeyPair

__all__ = ["SIGNATURE_SIZE", "sign", "verify"]

SIGNATURE_SIZE = 64


def sign(keys: SigningKeyPair, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data`` by ``keys``."""
    return keys.private_key.sign(data)


def verify(public: bytes, data: bytes, signature: bytes) -> None:
    """Check that ``signature`` is ``public``'s signature of ``data``.

    Raises:
        InvalidSignatureError: The signature does not verify, or ``public`` is not an
            Ed25519 public key.
    """
    if len(public) != 32:
        raise InvalidSignatureError(f"an Ed25519 public key has 32 bytes, not {len(public)}")
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidSignatureError(
            f"an Ed25519 signature has {SIGNATURE_SIZE} bytes, not {len(signature)}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise InvalidSignatureError(
            "the signature does not match the data and the signer's registered key"
        ) from None
