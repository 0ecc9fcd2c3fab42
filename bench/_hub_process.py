"""A hub in its own process for ``bench.heartbeats``: the API app served by uvicorn.

``python -m bench._hub_process --data-dir DIR --fd N`` opens the hub's services over
``DIR`` and the database named by ``PODIUM_BENCH_HUB_DB_URL`` (else SQLite under ``DIR``;
an environment variable keeps a password out of the process list), which must already be
seeded, and serves ``create_app(services, web=False)`` on the listening socket
it inherits as file descriptor ``N`` until SIGINT or SIGTERM. The parent made the socket,
so the port is known before the child starts and no port can be taken in between.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import uvicorn

from podium.hub.app import create_app
from podium.hub.config import HubConfig
from podium.hub.services import HubServices

#: The environment variable naming the hub's database URL.
DB_URL_ENV = "PODIUM_BENCH_HUB_DB_URL"


def serve(data_dir: Path, db_url: str | None, fd: int) -> None:
    """Serve the hub's API on the inherited socket ``fd`` until told to stop."""
    services = HubServices.open(HubConfig(data_dir=data_dir, db_url=db_url))
    try:
        app = create_app(services, web=False)
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])
    finally:
        services.close()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench._hub_process", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    args = parser.parse_args(argv)
    serve(args.data_dir, os.environ.get(DB_URL_ENV) or None, args.fd)


if __name__ == "__main__":
    main()
