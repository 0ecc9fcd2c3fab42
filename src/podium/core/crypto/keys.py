"""Key pairs and their files: Ed25519 for signing, X25519 for encryption.

A private key file is PKCS8 PEM, unencrypted, with mode 0600. :meth:`save` writes it
atomically and never replaces an existing key unless asked; :meth:`load` refuses a file that
the group or others may read, since a key that others could copy is no longer private.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import ClassVar, Generic, Self, TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from podium.core.crypto.encoding import b64url_encode, key_id_for
from podium.core.crypto.errors import KeyFileError

__all__ = [
    "ENCRYPTION",
    "SIGNING",
    "EncryptionKeyPair",
    "SigningKeyPair",
    "load_private_key",
    "save_private_key",
]

#: Key purposes, as the hub registry names them (``podium.hub.models.KeyPurpose``).
SIGNING = "signing"
ENCRYPTION = "encryption"

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


_K = TypeVar("_K", Ed25519PrivateKey, X25519PrivateKey)


class _KeyPair(Generic[_K]):
    """What both kinds of key pair share: the file, the public half and the key id."""

    __slots__ = ("private_key",)
    purpose: ClassVar[str]
    private_key: _K

    def __init__(self, private_key: _K) -> None:
        self.private_key = private_key

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the private key to ``path`` (see :func:`save_private_key`)."""
        save_private_key(self.private_key, path, overwrite=overwrite)

    @property
    def public_bytes(self) -> bytes:
        """The raw 32 bytes of the public key."""
        return self.private_key.public_key().public_bytes(*_RAW)

    @property
    def public_b64(self) -> str:
        """The public key as the hub registers it: base64url of the raw bytes, no padding."""
        return b64url_encode(self.public_bytes)

    @property
    def key_id(self) -> str:
        """The id the hub gives the public key."""
        return key_id_for(self.purpose, self.public_bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_id={self.key_id!r})"


class SigningKeyPair(_KeyPair[Ed25519PrivateKey]):
    """An Ed25519 key pair: the private half signs, the public half is registered."""

    __slots__ = ()
    purpose = SIGNING

    @classmethod
    def generate(cls) -> Self:
        """A fresh random key pair."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """The key pair in the file at ``path`` (see :func:`load_private_key`)."""
        key = load_private_key(path)
        if not isinstance(key, Ed25519PrivateKey):
            raise _wrong_kind(path, key, "an Ed25519 signing")
        return cls(key)


class EncryptionKeyPair(_KeyPair[X25519PrivateKey]):
    """An X25519 key pair: others seal to the public half, the private half opens."""

    __slots__ = ()
    purpose = ENCRYPTION

    @classmethod
    def generate(cls) -> Self:
        """A fresh random key pair."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """The key pair in the file at ``path`` (see :func:`load_private_key`)."""
        key = load_private_key(path)
        if not isinstance(key, X25519PrivateKey):
            raise _wrong_kind(path, key, "an X25519 encryption")
        return cls(key)


def save_private_key(
    key: Ed25519PrivateKey | X25519PrivateKey,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> None:
    """Write ``key`` as PKCS8 PEM to ``path`` with mode 0600, atomically: a temporary file
    beside it is created 0600 (never wider, whatever the umask), synced, then moved into
    place. Without ``overwrite`` an existing file is left alone, even one that appears
    while writing.

    Raises:
        KeyFileError: ``path`` exists and ``overwrite`` is false, or it cannot be written.
    """
    target = Path(path)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_new(temp, pem)
        try:
            _move_into_place(temp, target, overwrite=overwrite)
        finally:
            temp.unlink(missing_ok=True)
        _sync_folder(target.parent)
    except FileExistsError as exc:
        raise KeyFileError(
            f"a key file already exists at {target}; move it away or pass overwrite=True "
            "to replace it (the old key is lost)"
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write the key file {target}: {exc.strerror}") from exc


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _move_into_place(temp: Path, target: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # atomic, and fails if target exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(temp, target)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_private_key(path: str | os.PathLike[str]) -> PrivateKeyTypes:
    """The private key in the PEM file at ``path``, of whatever kind it is.

    Raises:
        KeyFileError: The file is missing or unreadable, readable by group or others
            (fix: ``chmod 600 PATH``), or not an unencrypted PEM private key.
    """
    target = Path(path)
    data = _read_private_file(target)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{target} is not an unencrypted PEM private key") from exc


def _wrong_kind(path: str | os.PathLike[str], key: PrivateKeyTypes, label: str) -> KeyFileError:
    kind = type(key).__name__.removeprefix("_")
    return KeyFileError(f"{Path(path)} holds a {kind}, not {label} private key")


def _read_private_file(target: Path) -> bytes:
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyFileError(f"no key file at {target}; generate a key pair first") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {target}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{target} is not a regular file")
        if os.name == "posix" and info.st_mode & 0o077:
            raise KeyFileError(
                f"{target} may be read by other users (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); a private key must be private: "
                f"run `chmod 600 {target}`"
            )
        return handle.read()
