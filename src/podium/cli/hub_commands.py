"""``podium hub serve`` and ``podium hub create-user``: running a hub and seeding it.

Both work on the same data: ``--data-dir`` (default ``$PODIUM_HOME/hub``) holds the SQLite
database, the blob folder and the token-signing key; ``--db`` puts the database elsewhere
(``postgresql://...``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from podium.cli._hub_session import read_password
from podium.core.settings import podium_home

if TYPE_CHECKING:
    from podium.hub.config import HubConfig

__all__ = ["hub_app"]

hub_app = typer.Typer(
    help="Run a hub (users, pods, access), and administer it offline.",
    no_args_is_help=True,
)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the hub's SQLite database, blobs and signing key "
        "[default: $PODIUM_HOME/hub].",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Keep the hub's records in this database (sqlite:///FILE or "
        "postgresql://USER@HOST/DB) instead of DATA_DIR/hub.db.",
    ),
]


def _config(
    data_dir: Path | None,
    db: str | None,
    *,
    public_url: str | None = None,
    heartbeat_interval: float | None = None,
    relay_frame_dir: Path | None = None,
) -> HubConfig:
    from podium.cli.credentials import normalize_hub_url
    from podium.hub.config import HubConfig

    folder = data_dir if data_dir is not None else podium_home(os.environ) / "hub"
    config = HubConfig(
        data_dir=folder.expanduser(),
        db_url=db,
        public_url=None if public_url is None else normalize_hub_url(public_url),
    )
    if heartbeat_interval is not None:
        config = replace(config, heartbeat_interval_s=heartbeat_interval)
    if relay_frame_dir is not None:
        relay = replace(config.relay, frame_dir=relay_frame_dir.expanduser())
        config = replace(config, relay=relay)
    return config


@hub_app.command("serve")
def serve_command(
    *,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The port (0: any free port).")
    ] = 8700,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The address users reach the hub at, for device-login links "
            "[default: taken from each request].",
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float | None,
        typer.Option(
            "--heartbeat-interval",
            min=0.1,
            metavar="SECONDS",
            help="How often pods send heartbeats; three missed ones mark a pod offline "
            "[default: 10].",
        ),
    ] = None,
    relay_frame_dir: Annotated[
        Path | None,
        typer.Option(
            "--relay-frame-dir",
            metavar="DIR",
            help="Keep large relay messages (64 KiB and more) in files here; with several "
            "hubs on one PostgreSQL, a folder they all share "
            "[default: DATA_DIR/relay-frames on SQLite, in the database on PostgreSQL].",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request on stderr.")
    ] = False,
) -> None:
    """Run the hub: REST API, web UI, device login and the relay on one port, until Ctrl-C."""
    from podium.hub.server import serve

    config = _config(
        data_dir,
        db,
        public_url=public_url,
        heartbeat_interval=heartbeat_interval,
        relay_frame_dir=relay_frame_dir,
    )
    serve(config, host, port, access_log=access_log)


@hub_app.command("create-user")
def create_user_command(
    name: Annotated[str, typer.Argument(help="The user name (lower case, digits, - and _).")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a hub admin.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Create an account in the hub's database directly (the hub need not be running)."""
    from podium.hub.server import create_user_offline

    password = read_password(password_stdin, confirm=True)
    user = create_user_offline(_config(data_dir, db), name, password, admin)
    role = "admin" if user.is_admin else "user"
    typer.echo(f"Created {role} {user.name}.")
