"""The client side of the relay: connect, send, receive, acknowledge.

A :class:`Transport` opens a :class:`Connection` subscribed to the caller's mailboxes.
:class:`WebSocketTransport` talks to a hub's ``/relay`` endpoint and reconnects by itself
(exponential backoff with jitter, resubscribe, resend of unreceipted messages, keep-alive);
:class:`InProcessTransport` talks to an :class:`InProcessRelay`, an in-memory hub with the
same rules, for unit tests and simulation. Delivery: :meth:`Connection.send` returns once
the hub stored the message; :meth:`Connection.receive` gives each message exactly once and
in order per sender; :meth:`Connection.ack` lets the hub forget it (see
:mod:`podium.transport._base`).

:func:`send_body` and :func:`receive_body` move a body of any size as a stream of sealed
chunks with bounded memory (see :mod:`podium.transport._body`).
"""

from __future__ import annotations

from podium.transport._backoff import Backoff
from podium.transport._base import Connection, ConnectionOptions, Transport
from podium.transport._body import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_WINDOW,
    BodyError,
    BodySummary,
    file_chunks,
    receive_body,
    send_body,
)
from podium.transport._dedup import Deduplicator
from podium.transport._errors import RelayClosedError, RelayRefusedError, TransportError
from podium.transport._inprocess import InProcessRelay, InProcessTransport
from podium.transport._link import FATAL_CLOSE_CODES, Credential
from podium.transport._websocket import WebSocketTransport, relay_url

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_WINDOW",
    "FATAL_CLOSE_CODES",
    "Backoff",
    "BodyError",
    "BodySummary",
    "Connection",
    "ConnectionOptions",
    "Credential",
    "Deduplicator",
    "InProcessRelay",
    "InProcessTransport",
    "RelayClosedError",
    "RelayRefusedError",
    "Transport",
    "TransportError",
    "WebSocketTransport",
    "file_chunks",
    "receive_body",
    "relay_url",
    "send_body",
]
