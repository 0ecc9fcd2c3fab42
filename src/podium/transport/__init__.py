"""The client side of the relay: connect, send, receive, acknowledge.

A :class:`Transport` opens a :class:`Connection` subscribed to the caller's mailboxes.
:class:`WebSocketTransport` talks to a hub's ``/relay`` endpoint and reconnects by itself
(exponential backoff with jitter, resubscribe, resend of unreceipted messages, keep-alive);
:class:`InProcessTransport` talks to an :class:`InProcessRelay`, an in-memory hub with the
same rules, for unit tests and simulation. Delivery: :meth:`Connection.send` returns once
the hub stored the message; :meth:`Connection.receive` gives each message exactly once and
in order per sender; :meth:`Connection.ack` lets the hub forget it (see
:mod:`podium.transport._base`).
"""

from __future__ import annotations

from podium.transport._backoff import Backoff
from podium.transport._base import Connection, ConnectionOptions, Transport
from podium.transport._dedup import Deduplicator
from podium.transport._errors import RelayClosedError, RelayRefusedError, TransportError
from podium.transport._inprocess import InProcessRelay, InProcessTransport
from podium.transport._link import FATAL_CLOSE_CODES
from podium.transport._websocket import WebSocketTransport, relay_url

__all__ = [
    "FATAL_CLOSE_CODES",
    "Backoff",
    "Connection",
    "ConnectionOptions",
    "Deduplicator",
    "InProcessRelay",
    "InProcessTransport",
    "RelayClosedError",
    "RelayRefusedError",
    "Transport",
    "TransportError",
    "WebSocketTransport",
    "relay_url",
]
