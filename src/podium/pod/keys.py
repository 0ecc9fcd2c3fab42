"""The pod's own key pairs: created on first start, loaded on every later one.

A pod signs with an Ed25519 key and is sealed to with an X25519 key; the public halves go
to the hub, the private halves never leave the pod's machine. They live as PEM files of
mode 0600 (see :mod:`podium.core.crypto.keys`) in a folder of mode 0700, by default
``$PODIUM_HOME/pods/<owner>/<pod>/keys``. Keeping them across restarts is what makes a
restarted pod the same pod to the hub and to modellers who sealed requests to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from podium.core.crypto import EncryptionKeyPair, KeyFileError, SigningKeyPair
from podium.core.names import is_valid_name
from podium.core.settings import podium_home

__all__ = [
    "ENCRYPTION_KEY_FILE",
    "SIGNING_KEY_FILE",
    "PodKeys",
    "default_keys_folder",
    "load_or_create_pod_keys",
]

SIGNING_KEY_FILE = "signing-key.pem"
ENCRYPTION_KEY_FILE = "encryption-key.pem"


@dataclass(frozen=True, slots=True)
class PodKeys:
    """A pod's two key pairs and the folder their private halves are in."""

    signing: SigningKeyPair
    encryption: EncryptionKeyPair
    folder: Path


def default_keys_folder(owner: str, pod: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$PODIUM_HOME/pods/<owner>/<pod>/keys``.

    Raises:
        ValueError: ``owner`` or ``pod`` is not a valid name (it would escape the folder).
    """
    for what, name in (("owner", owner), ("pod", pod)):
        if not is_valid_name(name):
            raise ValueError(f"{name!r} is not a valid {what} name")
    return podium_home(os.environ if environ is None else environ) / "pods" / owner / pod / "keys"


def load_or_create_pod_keys(folder: Path) -> PodKeys:
    """The key pairs in ``folder``, creating the folder (0700) and any missing key file
    (0600) first.

    Raises:
        KeyFileError: A key file cannot be read, is of the wrong kind, or can be read by
            others than its owner (fix its mode with ``chmod 600``).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(f"cannot create the pod's key folder {folder}: {exc.strerror}") from exc
    signing_path = folder / SIGNING_KEY_FILE
    encryption_path = folder / ENCRYPTION_KEY_FILE
    if not signing_path.exists():
        SigningKeyPair.generate().save(signing_path)
    if not encryption_path.exists():
        EncryptionKeyPair.generate().save(encryption_path)
    return PodKeys(
        signing=SigningKeyPair.load(signing_path),
        encryption=EncryptionKeyPair.load(encryption_path),
        folder=folder,
    )
