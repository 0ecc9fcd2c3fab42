"""The pod's key pairs: made once, the same ones on every later start, private files only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from podium.core.crypto import KeyFileError, SigningKeyPair
from podium.pod.keys import (
    ENCRYPTION_KEY_FILE,
    SIGNING_KEY_FILE,
    default_keys_folder,
    load_or_create_pod_keys,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_private_key_files(tmp_path: Path) -> None:
    folder = tmp_path / "pods" / "alice" / "census" / "keys"
    keys = load_or_create_pod_keys(folder)
    assert keys.folder == folder
    assert mode(folder) == 0o700
    assert mode(folder / SIGNING_KEY_FILE) == 0o600
    assert mode(folder / ENCRYPTION_KEY_FILE) == 0o600
    assert keys.signing.public_b64 != keys.encryption.public_b64


def test_a_restarted_pod_has_the_same_keys(tmp_path: Path) -> None:
    first = load_or_create_pod_keys(tmp_path / "keys")
    again = load_or_create_pod_keys(tmp_path / "keys")
    assert again.signing.key_id == first.signing.key_id
    assert again.encryption.key_id == first.encryption.key_id


def test_a_missing_key_is_made_and_the_other_kept(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    first = load_or_create_pod_keys(folder)
    (folder / ENCRYPTION_KEY_FILE).unlink()
    again = load_or_create_pod_keys(folder)
    assert again.signing.key_id == first.signing.key_id
    assert again.encryption.key_id != first.encryption.key_id


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    load_or_create_pod_keys(folder)
    (folder / SIGNING_KEY_FILE).chmod(0o644)
    with pytest.raises(KeyFileError, match="600"):
        load_or_create_pod_keys(folder)


def test_a_key_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    SigningKeyPair.generate().save(folder / ENCRYPTION_KEY_FILE)
    with pytest.raises(KeyFileError, match="X25519"):
        load_or_create_pod_keys(folder)


def test_default_folder_is_under_podium_home(tmp_path: Path) -> None:
    folder = default_keys_folder("alice", "census", {"PODIUM_HOME": str(tmp_path)})
    assert folder == tmp_path / "pods" / "alice" / "census" / "keys"
    for owner, pod in (("..", "census"), ("alice", "../../etc"), ("alice", "")):
        with pytest.raises(ValueError, match="not a valid"):
            default_keys_folder(owner, pod, {"PODIUM_HOME": str(tmp_path)})
