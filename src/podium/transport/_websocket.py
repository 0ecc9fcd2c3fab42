"""The relay over a WebSocket to the hub's ``/relay`` endpoint (``websockets`` library).

The credential (an access token or an API key) travels as ``Authorization: Bearer ...``
on the upgrade request. Keep-alive is websockets' ping/pong: a hub that stops answering
for ``ping_timeout`` seconds counts as a lost link, and the session reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from podium.core.messages import DELIVER_OVERHEAD, CloseCode
from podium.transport._base import Connection, ConnectionOptions, Transport
from podium.transport._link import (
    ABNORMAL_CLOSURE,
    Credential,
    Link,
    LinkClosed,
    check_credential,
    current_credential,
)
from podium.transport._session import RelaySession

__all__ = ["WebSocketTransport", "relay_url"]

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_REFUSALS = {401: CloseCode.UNAUTHENTICATED, 403: CloseCode.FORBIDDEN_MAILBOX}


def relay_url(hub_url: str) -> str:
    """The relay endpoint of the hub at ``hub_url`` (``http(s)://`` or ``ws(s)://``):
    ``ws(s)://<host>[/<prefix>]/relay``.

    Raises:
        ValueError: ``hub_url`` is not an absolute http, https, ws or wss URL.
    """
    parts = urlsplit(hub_url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"hub URL {hub_url!r} must be absolute: http(s)://host[:port]")
    path = parts.path.rstrip("/")
    if not path.endswith("/relay"):
        path += "/relay"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _lost(error: ConnectionClosed) -> LinkClosed:
    received = error.rcvd
    if received is None:
        return LinkClosed(ABNORMAL_CLOSURE, "connection lost")
    return LinkClosed(received.code, received.reason)


class _WebSocketLink(Link):
    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._write_lock = asyncio.Lock()  # FIFO: frames go out in the order sent

    async def send(self, frame: bytes) -> None:
        try:
            async with self._write_lock:
                await self._socket.send(frame)
        except ConnectionClosed as error:
            raise _lost(error) from None

    async def recv(self) -> bytes:
        try:
            data = await self._socket.recv(decode=False)
        except ConnectionClosed as error:
            raise _lost(error) from None
        return data if isinstance(data, bytes) else data.encode()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._socket.close(code, reason)


class WebSocketTransport(Transport):
    """Connects to the hub at ``hub_url`` with ``credential``: a token or API key, or a
    function (sync or async) returning the current one, called on every dial (the hub
    closes a connection whose credential expired or was revoked with ``4440``; with a
    function, the connection reconnects with a fresh credential and resumes).

    Nothing is opened until a connection is entered.
    """

    def __init__(self, hub_url: str, credential: Credential) -> None:
        self._url = relay_url(hub_url)
        if isinstance(credential, str):
            check_credential(credential)
        self._credential = credential

    @property
    def url(self) -> str:
        """The relay endpoint this transport connects to."""
        return self._url

    def connect(
        self, mailboxes: Sequence[str], *, options: ConnectionOptions | None = None
    ) -> Connection:
        settings = options or ConnectionOptions()

        async def dial() -> Link:
            credential = await current_credential(self._credential)
            try:
                socket = await connect(
                    self._url,
                    additional_headers={"Authorization": f"Bearer {credential}"},
                    max_size=settings.max_frame_bytes + DELIVER_OVERHEAD,
                    compression=None,  # sealed bodies do not compress
                    ping_interval=settings.ping_interval,
                    ping_timeout=settings.ping_timeout,
                    open_timeout=settings.open_timeout,
                )
            except InvalidStatus as error:
                status = error.response.status_code
                raise LinkClosed(_HTTP_REFUSALS.get(status), f"HTTP {status}") from None
            except (OSError, TimeoutError, InvalidHandshake) as error:
                raise LinkClosed(None, f"cannot reach {self._url}: {error}") from None
            return _WebSocketLink(socket)

        renews = not isinstance(self._credential, str)
        return RelaySession(dial, mailboxes, settings, renews_credential=renews)
