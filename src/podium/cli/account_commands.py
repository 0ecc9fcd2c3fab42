"""``podium login``, ``logout``, ``whoami`` and ``podium api-key``: your identity on a hub."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from podium.cli._hub_render import api_keys_table, print_json
from podium.cli._hub_session import (
    SEAM,
    HubOpt,
    JsonOpt,
    call,
    hub_target,
    login_of,
    read_password,
)
from podium.core.errors import ConfigError

if TYPE_CHECKING:
    from podium.hub.client import HubClient
    from podium.hub.schemas import TokenOut

__all__ = ["api_key_app", "login", "logout", "whoami"]

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


async def _device_login(client: HubClient) -> TokenOut:
    authorization = await client.start_device_login()
    typer.echo(f"To log in, open {authorization.verification_uri_complete}")
    typer.echo(
        f"and check that the page shows the code {authorization.user_code} "
        f"(or enter it at {authorization.verification_uri})."
    )
    with _err.status("Waiting for you to approve the login in the browser ..."):
        return await client.poll_device_login(authorization, sleep=SEAM.sleep)


def login(
    hub: HubOpt = None,
    username: Annotated[
        str | None,
        typer.Option(
            "--username",
            metavar="NAME",
            help="Log in with a password instead of approving in a browser.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="With --username: read the password from stdin."),
    ] = False,
) -> None:
    """Log in to a hub: approve this device in the browser, or give a user name and password."""
    if password_stdin and not username:
        raise ConfigError("--password-stdin needs --username NAME")
    target = hub_target(hub)
    if username:
        password = read_password(password_stdin, confirm=False)
        tokens = call(target, lambda c: c.login_password(username, password), auth=False)
    else:
        tokens = call(target, _device_login, auth=False)
    target.credentials.store_login(target.url, login_of(tokens))
    typer.echo(f"Logged in to {target.url} as {tokens.username}.")


def logout(hub: HubOpt = None) -> None:
    """Log out of a hub: revoke the refresh token and forget the saved login."""
    from podium.hub.client import HubClientError

    target = hub_target(hub)
    if target.login is None:
        typer.echo(f"Not logged in to {target.url}.")
        return
    refresh_token = target.login.refresh_token
    try:
        call(target, lambda c: c.revoke(refresh_token), auth=False)
    except HubClientError as exc:
        typer.echo(f"warning: could not revoke the login on the hub: {exc}", err=True)
    target.credentials.remove(target.url)
    typer.echo(f"Logged out of {target.url}.")


def whoami(hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """Show who you are logged in as on a hub."""
    target = hub_target(hub)
    user = call(target, lambda c: c.me())
    if as_json:
        payload = {
            "hub": target.url,
            "name": user.name,
            "is_admin": user.is_admin,
            "via": target.via,
        }
        print_json(_out, payload)
        return
    admin = " (hub admin)" if user.is_admin else ""
    via = " with PODIUM_API_KEY" if target.via == "api-key" else ""
    typer.echo(f"{user.name}{admin} on {target.url}{via}")


api_key_app = typer.Typer(
    help="API keys for pods and automation (use one by setting PODIUM_API_KEY).",
    no_args_is_help=True,
)


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    hub: HubOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it: it is shown this once only."""
    target = hub_target(hub)
    created = call(target, lambda c: c.create_api_key(name))
    if as_json:
        print_json(_out, created)
        return
    typer.echo(
        f"Created API key {created.key_id} ({created.name}). Store it now: it is not shown again.",
        err=True,
    )
    typer.echo(created.key)


@api_key_app.command("list")
def api_key_list(hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """List your API keys (without the keys themselves)."""
    target = hub_target(hub)
    keys = call(target, lambda c: c.list_api_keys())
    if as_json:
        print_json(_out, keys)
    elif not keys:
        typer.echo("No API keys. Create one with `podium api-key create NAME`.")
    else:
        _out.print(api_keys_table(keys))


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (see list).")],
    hub: HubOpt = None,
) -> None:
    """Revoke an API key: it stops working at once."""
    target = hub_target(hub)
    call(target, lambda c: c.revoke_api_key(key_id))
    typer.echo(f"Revoked API key {key_id}.")
