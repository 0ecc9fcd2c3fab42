"""One physical connection to the relay, as the reconnecting session sees it.

A :class:`Link` carries whole frames (bytes) both ways; a :data:`Dialer` opens a fresh
one. The WebSocket transport and the in-process relay each provide both, and
:class:`~podium.transport._session.RelaySession` does everything else (subscribe, resend,
receipts, deduplication, reconnect) over them, so the two transports behave the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from podium.core.messages import CloseCode

__all__ = [
    "FATAL_CLOSE_CODES",
    "Credential",
    "Dialer",
    "Link",
    "LinkClosed",
    "check_credential",
    "current_credential",
]

#: A token or API key, or a function (sync or async) that gives the current one: called
#: on every dial, so a connection whose credential expired (close code 4440) reconnects
#: with a fresh one instead of failing.
Credential = str | Callable[[], str | Awaitable[str]]


def check_credential(credential: str) -> str:
    """``credential`` if it can go into an ``Authorization`` header, else ValueError."""
    if not credential or any(c in credential for c in "\r\n"):
        raise ValueError("the credential must be a non-empty token or API key")
    return credential


async def current_credential(credential: Credential) -> str:
    """The credential to dial with now."""
    if isinstance(credential, str):
        return credential
    value = credential()
    if not isinstance(value, str):
        value = await value
    return check_credential(value)


#: Close codes after which reconnecting cannot help: the credential or a mailbox is
#: wrong, or the client itself sent a frame the hub cannot take (resending it after a
#: reconnect would loop for ever). ``4440`` (the credential expired while connected) is
#: fatal only for a fixed credential: a credential function gives a fresh one on the next
#: dial. Every other code (going away, abnormal closure, idle
#: timeout, too many requests, server error) is answered by reconnecting with backoff.
FATAL_CLOSE_CODES = frozenset(
    {
        CloseCode.UNAUTHENTICATED,
        CloseCode.FORBIDDEN_MAILBOX,
        CloseCode.MALFORMED_FRAME,
        CloseCode.FRAME_TOO_LARGE,
        CloseCode.UNKNOWN_MESSAGE_TYPE,
        CloseCode.UNSUPPORTED_VERSION,
    }
)

#: The close code of a connection lost without a close frame (RFC 6455).
ABNORMAL_CLOSURE = 1006


class LinkClosed(Exception):  # a signal between layers, not an error
    """The link is gone (or could not be opened); ``code`` is the close code, if any."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"link closed ({code}): {reason}")
        self.code = code
        self.reason = reason

    @property
    def fatal(self) -> bool:
        """Whether reconnecting cannot help."""
        return self.code in FATAL_CLOSE_CODES


class Link(ABC):
    """A frame pipe to the relay."""

    @abstractmethod
    async def send(self, frame: bytes) -> None:
        """Write one frame. Raises :class:`LinkClosed` once the link is gone."""

    @abstractmethod
    async def recv(self) -> bytes:
        """The next frame from the hub. Raises :class:`LinkClosed` once the link is gone."""

    @abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the link (idempotent, never raises :class:`LinkClosed`)."""


#: Opens a new link; raises :class:`LinkClosed` when it cannot (``code`` set when the
#: hub said why, e.g. 4401 for a refused credential).
Dialer = Callable[[], Awaitable[Link]]
