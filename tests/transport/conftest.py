"""The relay harnesses the transport contract suite runs over.

A harness (:class:`~tests.transport.harness.RelayHarness`) gives transports for named
users and the fault knobs the suite needs. Each entry of :data:`HARNESSES` becomes one
parameter of the ``harness`` fixture: the in-memory relay, real WebSockets in front of it,
and the real hub (:mod:`tests.transport.real_hub`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from podium.transport import InProcessRelay, Transport, WebSocketTransport
from podium.transport._link import LinkClosed
from tests.transport.harness import WAIT_S, RelayHarness, eventually, fast_options
from tests.transport.real_hub import real_hub

__all__ = ["HARNESSES", "WAIT_S", "RelayHarness", "eventually", "fast_options"]


class InProcessHarness(RelayHarness):
    """The in-memory relay, reached through :class:`InProcessTransport`."""

    def __init__(self) -> None:
        self.relay = InProcessRelay()
        self._credentials: dict[str, str] = {}

    def credential(self, user: str) -> str:
        if user not in self._credentials:
            self._credentials[user] = self.relay.add_user(user)
        return self._credentials[user]

    def transport(self, user: str) -> Transport:
        return self.relay.transport(self.credential(user))

    def bad_transport(self) -> Transport:
        return self.relay.transport("not-a-credential")

    def drop(self, user: str) -> None:
        assert self.relay.drop(user) > 0

    def connections(self, user: str) -> int:
        return self.relay.connections(user)

    def stored(self, mailbox: str) -> int:
        return self.relay.stored(mailbox)

    def pending(self, mailbox: str) -> int:
        return len(self.relay.pending(mailbox))

    def lose_receipts(self, lose: bool) -> None:
        self.relay.lose_receipts = lose

    def renewing_transport(self, user: str) -> Transport:
        return self.relay.transport(self.provider(user, lambda: self.credential(user)))

    def revoke(self, user: str) -> None:
        self.relay.revoke(self.credential(user))
        self._credentials[user] = self.relay.add_user(user)


async def _bridge(relay: InProcessRelay, socket: ServerConnection) -> None:
    """Serve one WebSocket client from the in-memory relay's rules."""
    header = socket.request.headers.get("Authorization", "") if socket.request else ""
    try:
        link = relay.open_link(header.removeprefix("Bearer "))
    except LinkClosed as refused:
        await socket.close(refused.code or 1011, refused.reason)
        return

    async def upstream() -> None:
        with contextlib.suppress(LinkClosed):
            async for message in socket:
                await link.send(message if isinstance(message, bytes) else message.encode())
        await link.close()

    pump = asyncio.create_task(upstream())
    try:
        while True:
            await socket.send(await link.recv())
    except LinkClosed as closed:
        if closed.code == 1006:
            socket.transport.abort()  # a lost network sends no close frame
        else:
            await socket.close(closed.code or 1011, closed.reason)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


class WebSocketBridgeHarness(InProcessHarness):
    """Real WebSockets (client transport and a websockets server) in front of the
    in-memory relay's rules; exercises :class:`WebSocketTransport` end to end."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        host, port = next(iter(server.sockets)).getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def transport(self, user: str) -> Transport:
        return WebSocketTransport(self.url, self.credential(user))

    def bad_transport(self) -> Transport:
        return WebSocketTransport(self.url, "not-a-credential")

    def renewing_transport(self, user: str) -> Transport:
        return WebSocketTransport(self.url, self.provider(user, lambda: self.credential(user)))


@asynccontextmanager
async def in_process(_: Path) -> AsyncIterator[RelayHarness]:
    yield InProcessHarness()


@asynccontextmanager
async def websocket_bridge(_: Path) -> AsyncIterator[RelayHarness]:
    holder: list[WebSocketBridgeHarness] = []

    async def handler(socket: ServerConnection) -> None:
        await _bridge(holder[0].relay, socket)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        holder.append(WebSocketBridgeHarness(server))
        yield holder[0]


#: name -> a context manager that builds the harness in a scratch folder (and tears it
#: down).
HARNESSES: dict[str, Callable[[Path], AbstractAsyncContextManager[RelayHarness]]] = {
    "in-process": in_process,
    "websocket-bridge": websocket_bridge,
    "real-hub": real_hub,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RelayHarness]:
    """Each relay the contract suite runs against."""
    async with HARNESSES[request.param](tmp_path) as built:
        yield built
