"""What every command that talks to a hub shares: which hub, which credential, a client.

The hub is ``--hub``, else ``$PODIUM_HUB``, else the hub of the last ``podium login``.
The credential is ``$PODIUM_API_KEY`` when set, else the saved login to that hub, whose
tokens are refreshed (and saved again) when the access token has expired.

:data:`SEAM` is the one place tests reach into: set ``SEAM.transport`` to an
``httpx.ASGITransport`` to run commands against a hub app in-process, and ``SEAM.sleep``
to skip the device login's waits.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from podium.core.errors import ConfigError
from podium.core.settings import env_api_key, env_hub, podium_home

if TYPE_CHECKING:
    import httpx

    from podium.cli.credentials import CredentialsFile, HubLogin
    from podium.hub.client import HubClient
    from podium.hub.schemas import TokenOut

__all__ = [
    "SEAM",
    "HubOpt",
    "HubTarget",
    "JsonOpt",
    "Seam",
    "call",
    "checked_pod_id",
    "hub_client",
    "hub_target",
    "login_of",
    "read_password",
]

_T = TypeVar("_T")

HubOpt = Annotated[
    str | None,
    typer.Option(
        "--hub",
        metavar="URL",
        help="The hub's URL [default: $PODIUM_HUB, then the hub of the last login].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@dataclass
class Seam:
    """How hub commands reach the network; tests replace the fields."""

    transport: httpx.AsyncBaseTransport | None = None
    sleep: Callable[[float], Awaitable[object]] = field(default=asyncio.sleep)


SEAM = Seam()


@dataclass(frozen=True)
class HubTarget:
    """The hub a command talks to and the credential it has for it."""

    url: str
    credentials: CredentialsFile
    login: HubLogin | None
    api_key: str | None

    @property
    def via(self) -> str:
        """``api-key`` (from ``PODIUM_API_KEY``), ``login`` or ``none``."""
        if self.api_key:
            return "api-key"
        return "login" if self.login is not None else "none"


def credentials_file() -> CredentialsFile:
    """The credentials file under ``$PODIUM_HOME``."""
    from podium.cli.credentials import CREDENTIALS_FILE, CredentialsFile

    return CredentialsFile(podium_home(os.environ) / CREDENTIALS_FILE)


def hub_target(hub_option: str | None) -> HubTarget:
    """Resolve the hub and its credential from the options and the environment."""
    from podium.cli.credentials import resolve_hub

    file = credentials_file()
    saved = file.load()
    url = resolve_hub(hub_option, env_hub(os.environ), saved)
    return HubTarget(url, file, saved.hubs.get(url), env_api_key(os.environ))


def login_of(tokens: TokenOut) -> HubLogin:
    """A saved login from a token answer."""
    from podium.cli.credentials import HubLogin

    return HubLogin(
        username=tokens.username,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=datetime.now(UTC) + timedelta(seconds=tokens.expires_in),
    )


def hub_client(target: HubTarget, *, auth: bool = True) -> HubClient:
    """A client of ``target``'s hub with its credential: the API key, else the saved login
    (whose tokens are refreshed and saved again)."""
    from podium.hub.client import HubClient, HubClientError

    if not auth:
        return HubClient(target.url, transport=SEAM.transport)
    if target.api_key:
        return HubClient(target.url, token=target.api_key, transport=SEAM.transport)
    if target.login is None:
        raise HubClientError(
            401,
            "not-logged-in",
            f"Not logged in to {target.url}",
            f"run `podium login --hub {target.url}`, or set PODIUM_API_KEY",
        )

    def save(tokens: TokenOut) -> None:
        target.credentials.update_tokens(target.url, login_of(tokens))

    return HubClient(
        target.url,
        token=target.login.access_token,
        refresh_token=target.login.refresh_token,
        on_tokens=save,
        transport=SEAM.transport,
    )


def call(
    target: HubTarget, action: Callable[[HubClient], Awaitable[_T]], *, auth: bool = True
) -> _T:
    """Run ``action`` with a client of ``target``'s hub: the CLI's one asyncio edge.

    A refusal for lack of valid credentials gets a hint on how to log in again.
    """
    from podium.hub.client import HubClientError, HubUnreachableError

    async def run() -> _T:
        async with hub_client(target, auth=auth) as client:
            return await action(client)

    try:
        return asyncio.run(run())
    except HubUnreachableError:
        raise
    except HubClientError as exc:
        if exc.status != 401 or exc.code == "not-logged-in" or not auth:
            raise
        hint = (
            "check PODIUM_API_KEY (unset it to use your `podium login`)"
            if target.api_key
            else f"log in again with `podium login --hub {target.url}`"
        )
        detail = f"{exc.detail}; {hint}" if exc.detail else hint
        raise HubClientError(exc.status, exc.code, exc.title, detail) from exc


def read_password(from_stdin: bool, *, confirm: bool) -> str:
    """The password: one line of stdin with ``--password-stdin``, else asked for on the
    terminal without echo.

    Raises:
        ConfigError: stdin was empty, or there is no terminal to ask on.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConfigError("--password-stdin: stdin held no password (give it on one line)")
        return password
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password on: use --password-stdin")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return str(password)


def checked_pod_id(value: str) -> str:
    """A pod identifier given on the command line, as ``owner/name``.

    Raises:
        ConfigError: It is not of the form OWNER/NAME.
    """
    from podium.hub.client import split_pod_id

    try:
        owner, name = split_pod_id(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return f"{owner}/{name}"
