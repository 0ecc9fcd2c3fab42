"""The relay harnesses the transport contract suite runs over.

A harness gives transports for named users and the fault knobs the suite needs. Each
entry of :data:`HARNESSES` becomes one parameter of the ``harness`` fixture; a real hub
harness (uvicorn over ``create_app``, users and API keys from ``services.accounts``, a
cutting proxy for :meth:`RelayHarness.drop`) slots in as one more entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from podium.transport import (
    Backoff,
    ConnectionOptions,
    InProcessRelay,
    Transport,
    WebSocketTransport,
)
from podium.transport._link import LinkClosed

#: Every wait in these tests is bounded by this many seconds.
WAIT_S = 5.0


def fast_options(*, seed: int = 7, **overrides: object) -> ConnectionOptions:
    """Connection options with quick, seeded reconnects."""
    backoff = Backoff(initial=0.001, maximum=0.02, rng=random.Random(seed))
    return ConnectionOptions(backoff=backoff, **overrides)  # type: ignore[arg-type]


async def eventually(check: Callable[[], bool], *, timeout: float = WAIT_S) -> None:
    """Wait until ``check()`` holds (fails the test after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.002)


class RelayHarness(ABC):
    """A relay to test against, with users and fault injection."""

    @abstractmethod
    def transport(self, user: str) -> Transport:
        """A transport with a valid credential for ``user`` (created on first use)."""

    @abstractmethod
    def bad_transport(self) -> Transport:
        """A transport whose credential the hub does not know."""

    @abstractmethod
    def drop(self, user: str) -> None:
        """Cut ``user``'s live connections as a lost network would."""

    @abstractmethod
    def connections(self, user: str) -> int:
        """How many connections of ``user`` the hub holds."""

    @abstractmethod
    def stored(self, mailbox: str) -> int:
        """How many messages the hub ever stored in ``mailbox``."""

    @abstractmethod
    def pending(self, mailbox: str) -> int:
        """How many messages of ``mailbox`` are not acknowledged."""

    @abstractmethod
    def lose_receipts(self, lose: bool) -> None:
        """Store messages but send no receipts while ``lose`` is true."""


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


@asynccontextmanager
async def in_process() -> AsyncIterator[RelayHarness]:
    yield InProcessHarness()


@asynccontextmanager
async def websocket_bridge() -> AsyncIterator[RelayHarness]:
    holder: list[WebSocketBridgeHarness] = []

    async def handler(socket: ServerConnection) -> None:
        await _bridge(holder[0].relay, socket)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        holder.append(WebSocketBridgeHarness(server))
        yield holder[0]


#: name -> a context manager that builds the harness (and tears it down).
HARNESSES: dict[str, Callable[[], AbstractAsyncContextManager[RelayHarness]]] = {
    "in-process": in_process,
    "websocket-bridge": websocket_bridge,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[RelayHarness]:
    """Each relay the contract suite runs against."""
    async with HARNESSES[request.param]() as built:
        yield built
