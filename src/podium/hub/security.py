"""Secrets: password hashing, signed tokens, API keys and one-time codes.

- Passwords: argon2id (argon2-cffi), with parameters from :class:`PasswordCost`.
- Access tokens: JWT signed with the hub's Ed25519 key (``EdDSA``), short-lived. The key
  is a PEM file with mode 0600 in the data folder, created on first start; replicas share it.
- API keys, refresh tokens and device codes are 256-bit random strings; only their SHA-256
  is stored (they are high-entropy, so a slow hash adds nothing), and they are compared in
  constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import argon2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.hub.config import PasswordCost
from podium.hub.errors import ErrorCode, HubError

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyParts",
    "Claims",
    "PasswordHasher",
    "TokenSigner",
    "load_or_create_signing_key",
    "new_api_key",
    "new_opaque_token",
    "new_user_code",
    "parse_api_key",
    "sha256_hex",
]

API_KEY_PREFIX = "pdm"
_ISSUER = "podium-hub"
#: Tolerated clock difference between hub replicas, in seconds.
_LEEWAY_S = 30
#: RFC 8628 section 6.1: consonants only, no look-alikes, 8 characters is ~34 bits.
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def sha256_hex(value: str) -> str:
    """The SHA-256 of a UTF-8 string, as hex."""
    return hashlib.sha256(value.encode()).hexdigest()


class PasswordHasher:
    """argon2id hashing and checking."""

    def __init__(self, cost: PasswordCost | None = None) -> None:
        cost = cost or PasswordCost()
        self._hasher = argon2.PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_cost_kib,
            parallelism=cost.parallelism,
            type=argon2.Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """The PHC string of a new argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches. With no hash (no such user) it still spends the
        time of one check, so the answer time does not tell which user names exist."""
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and (
                password_hash is not None
            )
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash used weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The hub's token-signing key: read from ``path``, or created there with mode 0600."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise HubError(ErrorCode.INTERNAL_ERROR, f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who, whether an admin, which kind, its id."""

    subject: str
    is_admin: bool
    token_type: str
    token_id: str
    expires_at: int


class TokenSigner:
    """Issues and verifies the hub's EdDSA JWTs."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._mac_key = hashlib.sha256(b"podium-hub-web-csrf\0" + raw).digest()

    def issue(
        self, subject: str, *, is_admin: bool, token_type: str, now: datetime, ttl_s: int
    ) -> tuple[str, Claims]:
        """A signed token for ``subject``, valid ``ttl_s`` seconds from ``now``."""
        claims = Claims(
            subject=subject,
            is_admin=is_admin,
            token_type=token_type,
            token_id=secrets.token_hex(16),
            expires_at=int((now + timedelta(seconds=ttl_s)).timestamp()),
        )
        payload = {
            "iss": _ISSUER,
            "sub": subject,
            "adm": is_admin,
            "typ": token_type,
            "jti": claims.token_id,
            "iat": int(now.timestamp()),
            "exp": claims.expires_at,
        }
        return jwt.encode(payload, self._key, algorithm="EdDSA"), claims

    def verify(self, token: str, *, token_type: str, now: datetime) -> Claims:
        """The claims of a valid token of ``token_type`` unexpired at ``now`` (the hub's
        clock, not the library's); :class:`HubError` (``token-expired`` or
        ``invalid-token``) otherwise."""
        try:
            payload = jwt.decode(
                token,
                self._public,
                algorithms=["EdDSA"],
                issuer=_ISSUER,
                options={
                    "require": ["exp", "iat", "sub", "jti", "typ"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise HubError(ErrorCode.INVALID_TOKEN) from exc
        if payload.get("typ") != token_type or not isinstance(payload.get("sub"), str):
            raise HubError(ErrorCode.INVALID_TOKEN)
        if not isinstance(payload.get("exp"), int) or not isinstance(payload.get("iat"), int):
            raise HubError(ErrorCode.INVALID_TOKEN)
        if now.timestamp() >= payload["exp"]:
            raise HubError(ErrorCode.TOKEN_EXPIRED)
        if payload["iat"] > now.timestamp() + _LEEWAY_S:
            raise HubError(ErrorCode.INVALID_TOKEN)
        return Claims(
            subject=payload["sub"],
            is_admin=bool(payload.get("adm")),
            token_type=payload["typ"],
            token_id=str(payload["jti"]),
            expires_at=int(payload["exp"]),
        )

    def csrf_token(self, session_id: str) -> str:
        """The anti-forgery token bound to one web session."""
        return hmac.new(self._mac_key, session_id.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session_id: str, token: str) -> bool:
        """Whether ``token`` is this session's anti-forgery token (constant time)."""
        # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        return hmac.compare_digest(self.csrf_token(session_id).encode(), token.encode())


@dataclass(frozen=True, slots=True)
class ApiKeyParts:
    """An API key split into its public id and its secret."""

    key_id: str
    secret: str

    @property
    def full(self) -> str:
        """The key as the user holds it: ``pdm_<id>_<secret>``."""
        return f"{API_KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_api_key() -> ApiKeyParts:
    """A fresh API key: 12 hex id characters, 256 random bits of secret."""
    return ApiKeyParts(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def parse_api_key(value: str) -> ApiKeyParts | None:
    """Split ``pdm_<id>_<secret>``; None if it does not have that shape."""
    prefix, _, rest = value.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != API_KEY_PREFIX or len(key_id) != 12 or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return ApiKeyParts(key_id=key_id, secret=secret)


def new_opaque_token() -> str:
    """A 256-bit random token for refresh tokens and device codes."""
    return secrets.token_urlsafe(32)


def new_user_code() -> str:
    """An RFC 8628 user code, ``XXXX-XXXX`` from an unambiguous alphabet."""
    chars = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"
