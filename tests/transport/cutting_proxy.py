"""A loopback TCP proxy that can cut connections through it, as a lost network would.

Tests put it in front of a real hub: clients dial the proxy, the proxy dials the hub and
copies bytes both ways. Each connection is labelled from its HTTP request head (the
WebSocket upgrade, say by the user its ``Authorization`` header names).
:meth:`CuttingProxy.cut` aborts both sides of the live connections (of one label, or all)
at once (no close frame, no FIN: an RST), so the client sees a lost link and the hub a
vanished peer. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

#: Seconds the proxy waits to reach the upstream or to shut down.
PROXY_TIMEOUT_S = 5.0
_CHUNK = 1 << 16
_HEAD_END = b"\r\n\r\n"

#: Names a connection from its request head (everything up to the blank line).
Labeller = Callable[[bytes], str]


def bearer_of(head: bytes) -> str:
    """The bearer credential of an HTTP request head ("" if it has none)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return credential.strip().decode("latin-1")
    return ""


@dataclass(eq=False, slots=True)
class _Pair:
    label: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter

    def abort(self) -> None:
        self.client.transport.abort()
        self.upstream.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either side ends; then half-close."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class CuttingProxy:
    """Forwards connections on its own loopback port to ``upstream_host:upstream_port``,
    labelling each with ``labeller`` (by default its bearer credential)."""

    def __init__(
        self, upstream_host: str, upstream_port: int, labeller: Labeller = bearer_of
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._labeller = labeller
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        return int(self._server.sockets[0].getsockname()[1])

    def _live(self, label: str | None) -> list[_Pair]:
        return [p for p in self._pairs if label is None or p.label == label]

    def connections(self, label: str | None = None) -> int:
        """How many connections (labelled ``label``, if given) pass through the proxy."""
        return len(self._live(label))

    def cut(self, label: str | None = None) -> int:
        """Abort every live connection (labelled ``label``, if given); how many went."""
        pairs = self._live(label)
        for pair in pairs:
            self._pairs.discard(pair)
            pair.abort()
        return len(pairs)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        """Stop accepting, cut what is left and wait (bounded) for the server to close."""
        if self._server is None:
            return
        self._server.close()
        self.cut()
        async with asyncio.timeout(PROXY_TIMEOUT_S):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PROXY_TIMEOUT_S):
                head = await reader.readuntil(_HEAD_END)
                up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()
            return
        up_writer.write(head)
        pair = _Pair(self._labeller(head), writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            pair.abort()


@asynccontextmanager
async def cutting_proxy(
    upstream_host: str, upstream_port: int, labeller: Labeller = bearer_of
) -> AsyncIterator[CuttingProxy]:
    """A started :class:`CuttingProxy`, stopped on exit."""
    proxy = CuttingProxy(upstream_host, upstream_port, labeller)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
