"""The CLI's credentials file and how the hub is chosen."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from podium.cli.credentials import (
    Credentials,
    CredentialsFile,
    HubLogin,
    normalize_hub_url,
    resolve_hub,
)
from podium.core.errors import ConfigError

LOGIN = HubLogin(
    username="alice",
    access_token="access",
    refresh_token="refresh",
    expires_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_missing_file_means_no_logins(tmp_path: Path) -> None:
    """Before any login there are no saved hubs and no current hub."""
    assert CredentialsFile(tmp_path / "credentials.json").load() == Credentials()


def test_login_round_trips_with_mode_0600(tmp_path: Path) -> None:
    """A saved login reads back the same, in a file only its owner can read, even with a
    permissive umask."""
    path = tmp_path / "home" / "credentials.json"
    old = os.umask(0o000)
    try:
        CredentialsFile(path).store_login("http://hub:8700", LOGIN)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = CredentialsFile(path).load()
    assert loaded.current == "http://hub:8700"
    assert loaded.hubs["http://hub:8700"] == LOGIN


def test_several_hubs_and_current(tmp_path: Path) -> None:
    """Logins to two hubs are both kept; the last login is current; a token update does
    not change the current hub; removing the current one clears it."""
    file = CredentialsFile(tmp_path / "credentials.json")
    file.store_login("http://a", LOGIN)
    file.store_login("http://b", LOGIN.model_copy(update={"username": "bob"}))
    file.update_tokens("http://a", LOGIN.model_copy(update={"access_token": "new"}))
    saved = file.load()
    assert saved.current == "http://b"
    assert saved.hubs["http://a"].access_token == "new"
    assert file.remove("http://b") is not None
    assert file.remove("http://b") is None
    after = file.load()
    assert after.current is None
    assert list(after.hubs) == ["http://a"]


def test_no_temporary_files_left(tmp_path: Path) -> None:
    """The file is replaced atomically: nothing else is left in the folder."""
    file = CredentialsFile(tmp_path / "credentials.json")
    file.store_login("http://a", LOGIN)
    file.store_login("http://a", LOGIN)
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A file of another shape is reported with what to do."""
    path = tmp_path / "credentials.json"
    path.write_text('{"hubs": {"http://a": {"username": 3}}}')
    with pytest.raises(ConfigError, match="delete it"):
        CredentialsFile(path).load()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8700", "http://127.0.0.1:8700"),
        (" https://Hub.Example.org/ ", "https://hub.example.org"),
        ("https://example.org/podium//", "https://example.org/podium"),
    ],
)
def test_normalize_hub_url(given: str, expected: str) -> None:
    """URLs lose blanks and trailing slashes; the host is lower-cased."""
    assert normalize_hub_url(given) == expected


@pytest.mark.parametrize("bad", ["hub:8700", "ftp://hub", "http://", "127.0.0.1:8700"])
def test_malformed_hub_urls(bad: str) -> None:
    """Anything but an http(s) URL with a host is refused with an example."""
    with pytest.raises(ConfigError, match="is not a hub URL"):
        normalize_hub_url(bad)


def test_hub_resolution_order() -> None:
    """--hub, then PODIUM_HUB, then the hub of the last login."""
    saved = Credentials(current="http://last")
    assert resolve_hub("http://opt", "http://env", saved) == "http://opt"
    assert resolve_hub(None, "http://env", saved) == "http://env"
    assert resolve_hub(None, None, saved) == "http://last"
    with pytest.raises(ConfigError, match="PODIUM_HUB"):
        resolve_hub(None, None, Credentials())
