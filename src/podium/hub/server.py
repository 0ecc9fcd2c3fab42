"""Running the hub: ``podium hub serve`` and the offline ``podium hub create-user``.

:func:`serve` opens the hub's services (database, migrations, signing key), binds the
port itself (so a busy port is a one-line error, and port 0 picks a free one), runs the app
under uvicorn and prints ``Hub listening on http://HOST:PORT`` once it accepts
connections. Ctrl-C stops it cleanly; the services are closed on the way out.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import uvicorn

from podium.core.errors import ConfigError
from podium.hub.app import create_app
from podium.hub.client import HubClientError
from podium.hub.config import HubConfig
from podium.hub.errors import CATALOGUE, HubError
from podium.hub.models import User
from podium.hub.services import HubServices
from podium.hub.store import StoreError

__all__ = ["bind_socket", "create_user_offline", "listening_url", "serve"]

_log = logging.getLogger("podium.hub.server")


def listening_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, with an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        ConfigError: The address is in use, not local, or cannot be resolved.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}. Check --host.") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {listening_url(host, port)}: {exc.strerror}. "
            "Is another hub running there? Pick another --port or --host."
        ) from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_started`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_started()


@contextmanager
def open_services(config: HubConfig) -> Iterator[HubServices]:
    """The hub's services over its configured database, closed on exit.

    Raises:
        ConfigError: The database cannot be opened or is not a supported kind.
    """
    shown = sa.make_url(config.database_url).render_as_string(hide_password=True)
    try:
        services = HubServices.open(config)
    except sa.exc.OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # psycopg's messages span lines
        raise ConfigError(f"cannot open the hub's database {shown}: {reason}") from exc
    except (StoreError, sa.exc.ArgumentError) as exc:
        raise ConfigError(f"cannot use the hub's database {shown}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot use the hub's data folder {config.data_dir}: {exc.strerror}"
        ) from exc
    try:
        yield services
    finally:
        services.close()


def ws_max_size(config: HubConfig) -> int:
    """uvicorn's WebSocket message limit: above the relay's own frame limit, so an
    oversized frame is refused by the relay with its close code 4413, not by uvicorn."""
    return max(16 * 1024 * 1024, 2 * config.relay.max_frame_bytes)


def serve(
    config: HubConfig,
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    access_log: bool = False,
    announce: Callable[[str], None] = _announce,
) -> None:
    """Run the hub until Ctrl-C (or SIGTERM); ``announce`` gets the one ready line.

    Raises:
        ConfigError: The port is taken or the database cannot be opened.
    """
    sock = bind_socket(host, port)
    try:
        bound_port = int(sock.getsockname()[1])
        with open_services(config) as services:
            app = create_app(services)
            settings = uvicorn.Config(
                app,
                log_level="warning",
                access_log=access_log,
                server_header=False,
                ws_max_size=ws_max_size(config),
            )
            server = _Server(
                settings, lambda: announce(f"Hub listening on {listening_url(host, bound_port)}")
            )
            try:
                server.run(sockets=[sock])
            except KeyboardInterrupt:
                _log.info("hub stopped by Ctrl-C")
    finally:
        sock.close()


def create_user_offline(config: HubConfig, name: str, password: str, is_admin: bool) -> User:
    """Create an account directly in the hub's database (no server needed).

    Raises:
        HubClientError: The name is taken or not valid, or the password too short.
        ConfigError: The database cannot be opened.
    """
    with open_services(config) as services:
        try:
            return services.accounts.create_user(
                name, password, is_admin=is_admin, now=services.now()
            )
        except HubError as exc:
            entry = CATALOGUE[exc.code]
            raise HubClientError(entry.status, exc.code.value, entry.title, exc.detail) from exc
