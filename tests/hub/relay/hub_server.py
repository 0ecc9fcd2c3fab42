"""A real hub on a loopback port for relay tests: uvicorn in a background thread over
``create_app``, and a small WebSocket client that bounds every wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from podium.core.messages import (
    DEFAULT_MAX_FRAME_BYTES,
    Deliver,
    Envelope,
    MessageType,
    Receipt,
    Refused,
    decode_hub_frame,
    encode_control,
    encode_frame,
)
from podium.core.messages import Ack as AckFrame
from podium.core.messages import Subscribe as SubscribeFrame
from podium.hub.app import create_app
from podium.hub.server import bind_socket
from podium.hub.services import HubServices

#: Seconds any single wait in a relay test may take.
TIMEOUT = 10.0
TASK = "a" * 32


@contextmanager
def running_hub(services: HubServices) -> Iterator[str]:
    """Serve the hub app over ``services`` on a free loopback port; the relay's URL."""
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(services, web=False),
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive(), "the hub stopped while starting"
            assert time.monotonic() < deadline, "the hub did not start in time"
            time.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/relay"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "the hub did not stop"


def envelope(
    *,
    sender: str = "bob",
    recipient: str = "pod/alice/census",
    seq: int = 0,
    kind: MessageType = MessageType.JOB_REQUEST,
    task_id: str = TASK,
    body: bytes = b"sealed request",
) -> Envelope:
    """A message to relay (a job request from bob to alice's census pod by default)."""
    return Envelope(
        type=kind,
        task_id=task_id,
        sender=sender,
        recipient=recipient,
        seq=seq,
        sent_at=1.5,
        body=body,
    )


class Peer:
    """A relay client connection with bounded waits."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_raw = b""

    async def send(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def send_envelope(self, message: Envelope) -> bytes:
        """Send ``message``; its frame."""
        frame = encode_frame(message)
        await self.ws.send(frame)
        return frame

    async def subscribe(self, *mailboxes: str) -> None:
        await self.ws.send(encode_control(SubscribeFrame(tuple(mailboxes))))

    async def ack(self, *ids: int) -> None:
        await self.ws.send(encode_control(AckFrame(tuple(ids))))

    async def recv(self, timeout: float = TIMEOUT) -> Deliver | Receipt | Refused:
        """The next frame from the hub (its bytes in ``last_raw``)."""
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, bytes)
        self.last_raw = data
        return decode_hub_frame(data, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)

    async def deliver(self) -> Deliver:
        frame = await self.recv()
        assert isinstance(frame, Deliver), frame
        return frame

    async def receipt(self) -> Receipt:
        frame = await self.recv()
        assert isinstance(frame, Receipt), frame
        return frame

    async def refused(self) -> Refused:
        frame = await self.recv()
        assert isinstance(frame, Refused), frame
        return frame

    async def close_code(self) -> int | None:
        """Wait for the hub to close the connection; its close code."""
        await asyncio.wait_for(self.ws.wait_closed(), TIMEOUT)
        return self.ws.close_code


@asynccontextmanager
async def peer(url: str, credential: str | None) -> AsyncIterator[Peer]:
    """A connection to the relay at ``url``, authenticated with ``credential``."""
    headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
    async with connect(
        url, additional_headers=headers, max_size=None, open_timeout=TIMEOUT, close_timeout=2
    ) as ws:
        yield Peer(ws)
