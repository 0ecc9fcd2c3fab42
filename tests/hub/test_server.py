"""The pieces of ``podium hub serve`` that run in-process: the listening socket, the
database opening, and the offline ``create-user`` (the whole server runs as a real process
in tests/integration/test_hub_serve.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from podium.core.errors import ConfigError, ExitCode
from podium.hub.client import HubClientError
from podium.hub.server import bind_socket, create_user_offline, listening_url, open_services
from tests.hub.conftest import PASSWORD, make_config


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8700"),
        ("::1", "http://[::1]:8700"),
        ("hub.example.org", "http://hub.example.org:8700"),
    ],
)
def test_listening_url(host: str, url: str) -> None:
    """The ready line's URL puts an IPv6 host in brackets."""
    assert listening_url(host, 8700) == url


def test_port_zero_picks_a_free_port() -> None:
    """Port 0 binds a free port, which the socket reports."""
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_busy_port_is_a_config_error() -> None:
    """A port in use is a ConfigError that names the address and the fix."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}.*--port"):
            bind_socket("127.0.0.1", port)


def test_unknown_host_is_a_config_error() -> None:
    """A host name that does not resolve is a ConfigError pointing at --host."""
    with pytest.raises(ConfigError, match="--host"):
        bind_socket("no-such-host.invalid", 0)


def test_unsupported_database_is_a_config_error(tmp_path: Path) -> None:
    """A database URL of another kind is refused before anything starts, password hidden."""
    config = make_config(tmp_path, db_url="mysql://root:hunter2@db/hub")
    with pytest.raises(ConfigError) as caught, open_services(config):
        pass
    assert "mysql" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_create_user_offline_then_log_in(tmp_path: Path) -> None:
    """An account created offline can log in once the hub opens the same data."""
    config = make_config(tmp_path)
    user = create_user_offline(config, "alice", PASSWORD, True)
    assert (user.name, user.is_admin) == ("alice", True)
    with open_services(config) as services:
        tokens = services.accounts.login("alice", PASSWORD, services.now())
    assert tokens.user.name == "alice"


def test_create_user_offline_refusals(tmp_path: Path) -> None:
    """A taken name or a bad password raises HubClientError with the hub's code (exit 5)."""
    config = make_config(tmp_path)
    create_user_offline(config, "alice", PASSWORD, False)
    with pytest.raises(HubClientError) as taken:
        create_user_offline(config, "alice", PASSWORD, False)
    assert (taken.value.status, taken.value.code) == (409, "already-exists")
    assert taken.value.exit_code == ExitCode.HUB
    with pytest.raises(HubClientError) as short:
        create_user_offline(config, "bob", "short", False)
    assert short.value.code == "validation-failed"
