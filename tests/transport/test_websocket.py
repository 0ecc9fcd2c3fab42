"""The WebSocket transport's own behaviour: URLs, no I/O before entering, handshake
refusals, reconnecting after the hub goes away."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from podium.core.messages import CloseCode, Subscribe, decode_client_frame
from podium.transport import RelayClosedError, WebSocketTransport, relay_url
from tests.transport.conftest import WAIT_S, fast_options

MAILBOX = "pod/alice/census"


@pytest.mark.parametrize(
    ("hub", "expected"),
    [
        ("http://hub.example:8000", "ws://hub.example:8000/relay"),
        ("https://hub.example/", "wss://hub.example/relay"),
        ("https://hub.example/podium", "wss://hub.example/podium/relay"),
        ("wss://hub.example/relay", "wss://hub.example/relay"),
    ],
)
def test_relay_url_points_at_the_relay_endpoint(hub: str, expected: str) -> None:
    """The hub's base URL maps to its ``/relay`` WebSocket endpoint."""
    assert relay_url(hub) == expected


@pytest.mark.parametrize("hub", ["hub.example", "ftp://hub.example", "http://"])
def test_relay_url_refuses_what_is_not_a_hub_url(hub: str) -> None:
    """A relative or non-HTTP URL is refused up front."""
    with pytest.raises(ValueError, match="absolute"):
        relay_url(hub)


def test_constructing_and_connecting_do_no_io() -> None:
    """Building a transport and a connection opens nothing (the port is closed)."""
    transport = WebSocketTransport("http://127.0.0.1:9", "token")
    connection = transport.connect([MAILBOX])
    assert transport.url == "ws://127.0.0.1:9/relay"
    assert connection is not None


def test_a_credential_with_a_line_break_is_refused() -> None:
    """A credential that could inject headers is refused."""
    with pytest.raises(ValueError, match="credential"):
        WebSocketTransport("http://127.0.0.1:9", "token\r\nX-Evil: 1")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_hub_is_retried_until_the_caller_gives_up() -> None:
    """With no hub listening, entering keeps retrying (no error) until the timeout."""
    transport = WebSocketTransport(f"http://127.0.0.1:{_closed_port()}", "token")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3), transport.connect([MAILBOX], options=fast_options()):
            pass


def _refuse_with_401(connection: ServerConnection, request: Request) -> Response:
    return connection.respond(401, "no\n")


@pytest.fixture
async def refusing_hub() -> AsyncIterator[Server]:
    """A WebSocket server that refuses every upgrade with HTTP 401."""
    async with serve(
        lambda _: asyncio.sleep(0), "127.0.0.1", 0, process_request=_refuse_with_401
    ) as server:
        yield server


def _url(server: Server) -> str:
    host, port = next(iter(server.sockets)).getsockname()[:2]
    return f"http://{host}:{port}"


async def test_http_401_on_the_upgrade_is_fatal(refusing_hub: Server) -> None:
    """A hub refusing the upgrade with 401 fails the connection at once with 4401."""
    transport = WebSocketTransport(_url(refusing_hub), "token")
    with pytest.raises(RelayClosedError) as caught:
        async with asyncio.timeout(WAIT_S), transport.connect([MAILBOX], options=fast_options()):
            pass
    assert caught.value.code == CloseCode.UNAUTHENTICATED


async def test_going_away_reconnects_and_resubscribes_with_the_credential() -> None:
    """A hub closing with 1001 (going away) is dialled again, with the bearer credential
    and the same subscription."""
    seen: list[tuple[str | None, tuple[str, ...]]] = []

    async def handler(connection: ServerConnection) -> None:
        frame = decode_client_frame(await connection.recv(decode=False), max_frame_bytes=1024)
        assert isinstance(frame, Subscribe)
        headers = connection.request.headers if connection.request else Headers()
        seen.append((headers.get("Authorization"), frame.mailboxes))
        await connection.close(1001, "restarting")

    async with serve(handler, "127.0.0.1", 0) as server:
        transport = WebSocketTransport(_url(server), "sekrit")
        async with asyncio.timeout(WAIT_S), transport.connect([MAILBOX], options=fast_options()):
            while len(seen) < 3:
                await asyncio.sleep(0.005)
    assert seen[:3] == [("Bearer sekrit", (MAILBOX,))] * 3
