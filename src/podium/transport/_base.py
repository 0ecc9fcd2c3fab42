"""The seam: a :class:`Transport` opens :class:`Connection` objects to the relay.

Applications (pods, modellers, protocols) depend only on these two classes, so tests and
simulations swap the WebSocket transport for the in-process one.

Delivery contract of every connection:

- :meth:`Connection.send` returns once the hub has stored the message (its ``RECEIPT``),
  resending across reconnects until then; a ``REFUSED`` answer raises
  :class:`~podium.transport.RelayRefusedError`.
- :meth:`Connection.receive` (and ``async for``) hands each message to the application
  exactly once and in order per sender and mailbox, while the connection lives: the hub
  delivers at least once and the connection drops duplicates.
- Acknowledgement is explicit by default: call :meth:`Connection.ack` once the message is
  handled (stored, acted on). Until then the hub keeps it and delivers it again to the next
  connection of the same party, e.g. after a crash. ``auto_ack=True`` acknowledges as
  :meth:`~Connection.receive` returns (at-most-once across crashes, simpler).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from podium.core.messages import DEFAULT_MAX_FRAME_BYTES, Envelope
from podium.transport._backoff import Backoff
from podium.transport._errors import RelayClosedError

__all__ = ["Connection", "ConnectionOptions", "Transport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOptions:
    """Settings of one connection.

    Attributes:
        max_frame_bytes: Largest envelope frame sent or accepted (the hub's limit).
        inbox_size: Messages received but not yet taken by :meth:`Connection.receive`;
            when full, reading from the hub pauses (back-pressure). While it is full,
            receipts wait too, so keep receiving while you send.
        dedup_capacity: Streams (mailbox, task, sender) whose next seq is remembered.
        auto_ack: Acknowledge each message as :meth:`Connection.receive` returns it.
        backoff: Delays between reconnect attempts.
        ping_interval: Seconds between keep-alive pings (WebSocket only; None: off).
        ping_timeout: Seconds to wait for a pong before reconnecting (WebSocket only).
        open_timeout: Seconds one connection attempt may take (WebSocket only).
    """

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    inbox_size: int = 256
    dedup_capacity: int = 65536
    auto_ack: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float | None = 10.0

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1 or self.inbox_size < 1 or self.dedup_capacity < 1:
            raise ValueError("max_frame_bytes, inbox_size and dedup_capacity must be positive")


class Connection(ABC):
    """A live subscription to some mailboxes, and a way to send (see the module docs).

    Use it as an async context manager: entering connects (retrying with backoff until the
    hub answers: bound it with ``asyncio.timeout``), leaving closes it.
    """

    @abstractmethod
    async def __aenter__(self) -> Self:
        """Connect and subscribe."""

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close; pending sends and receives raise ``RelayClosedError``."""

    @abstractmethod
    async def send(self, envelope: Envelope) -> None:
        """Send ``envelope``; return once the hub has stored it.

        Raises:
            RelayRefusedError: The hub refused this message.
            RelayClosedError: The connection closed before the hub stored it.
        """

    @abstractmethod
    async def receive(self) -> Envelope:
        """The next message, each exactly once and in order per sender.

        Raises:
            RelayClosedError: The connection is closed and nothing is left to receive.
        """

    @abstractmethod
    async def ack(self, envelope: Envelope) -> None:
        """Tell the hub ``envelope`` is handled; it will not be delivered again."""

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Envelope]:
        # Ends quietly once the application closed the connection; a hub-side close raises.
        while True:
            try:
                envelope = await self.receive()
            except RelayClosedError as error:
                if error.code is None:
                    return
                raise
            yield envelope


class Transport(ABC):
    """Opens connections to the relay for one party's credential."""

    @abstractmethod
    def connect(
        self, mailboxes: Sequence[str], *, options: ConnectionOptions | None = None
    ) -> Connection:
        """A connection subscribed to ``mailboxes`` (each must be the caller's);
        nothing happens until it is entered with ``async with``."""
