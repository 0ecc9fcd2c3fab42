"""The CLI's saved logins: ``$PODIUM_HOME/credentials.json``, mode 0600.

One entry per hub, keyed by its normalised URL, and the hub of the last login as
``current``::

    {"version": 1, "current": "http://127.0.0.1:8700",
     "hubs": {"http://127.0.0.1:8700": {"username": "alice", "access_token": "...",
                                        "refresh_token": "...", "expires_at": "..."}}}

The file is replaced atomically on every change, so a crash never leaves half of it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

from podium.core.errors import ConfigError
from podium.core.files import atomic_write

__all__ = [
    "CREDENTIALS_FILE",
    "Credentials",
    "CredentialsFile",
    "HubLogin",
    "normalize_hub_url",
    "resolve_hub",
]

CREDENTIALS_FILE = "credentials.json"


class HubLogin(BaseModel):
    """The tokens of one login to one hub."""

    username: str
    access_token: str
    refresh_token: str
    expires_at: datetime | None = None


class Credentials(BaseModel):
    """Every saved login, and which hub was logged in to last."""

    version: int = 1
    current: str | None = None
    hubs: dict[str, HubLogin] = Field(default_factory=dict)


def normalize_hub_url(url: str) -> str:
    """``url`` without surrounding blanks or trailing slashes; ConfigError unless it is
    an ``http://`` or ``https://`` URL with a host."""
    cleaned = url.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{url!r} is not a hub URL: write it like http://127.0.0.1:8700 or "
            "https://hub.example.org"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}"


class CredentialsFile:
    """Reads and writes the credentials file at ``path`` (no I/O until asked)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Credentials:
        """The saved logins (none if the file does not exist).

        Raises:
            ConfigError: The file cannot be read or is not a credentials file.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Credentials()
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return Credentials.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(
                f"{self.path} is not a valid Podium credentials file: delete it and run "
                "`podium login` again"
            ) from exc

    def save(self, credentials: Credentials) -> None:
        """Replace the file atomically, readable by its owner only (mode 0600)."""
        payload = credentials.model_dump(mode="json")

        def write(handle: IO[str]) -> None:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(payload, handle, indent=2)
            handle.write("\n")

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self.path, write)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc.strerror}") from exc

    def store_login(self, hub: str, login: HubLogin) -> None:
        """Save ``login`` for ``hub`` and make it the current hub."""
        credentials = self.load()
        credentials.hubs[hub] = login
        credentials.current = hub
        self.save(credentials)

    def update_tokens(self, hub: str, login: HubLogin) -> None:
        """Save refreshed tokens for ``hub`` without changing the current hub."""
        credentials = self.load()
        credentials.hubs[hub] = login
        self.save(credentials)

    def remove(self, hub: str) -> HubLogin | None:
        """Forget the login to ``hub``; the removed login, if there was one."""
        credentials = self.load()
        removed = credentials.hubs.pop(hub, None)
        if credentials.current == hub:
            credentials.current = None
        if removed is not None:
            self.save(credentials)
        return removed


def resolve_hub(option: str | None, env_hub: str | None, credentials: Credentials) -> str:
    """The hub to talk to: ``--hub``, else ``$PODIUM_HUB``, else the last login's hub.

    Raises:
        ConfigError: None of the three is set, or the URL is malformed.
    """
    for candidate in (option, env_hub, credentials.current):
        if candidate:
            return normalize_hub_url(candidate)
    raise ConfigError(
        "no hub given: pass --hub URL, set PODIUM_HUB, or log in once with `podium login --hub URL`"
    )
