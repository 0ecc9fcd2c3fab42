"""Errors of the wire layer and the WebSocket close codes the relay answers them with.

The tree (beside the one drawn in :mod:`podium.core.errors`)::

    PodiumError
    └── MessageError            a message, record or mailbox name breaks the wire rules
        ├── FrameError          a relay frame was refused; carries the close code to send
        └── PayloadError        an opened body does not decode to its message's record

``MessageError`` is also a ``ValueError``: constructors raise it for a bad value, as a
``ValueError`` would be raised anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType

from podium.core.errors import PodiumError

__all__ = [
    "CLOSE_REASONS",
    "CloseCode",
    "FrameError",
    "MessageError",
    "PayloadError",
]


class CloseCode(IntEnum):
    """WebSocket close codes of the relay, in the application range (4000-4999).

    The last three digits echo the HTTP status of the same meaning. The relay also uses
    them, without closing, in a ``REFUSED`` control frame for a single message.
    """

    MALFORMED_FRAME = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN_MAILBOX = 4403
    UNKNOWN_MAILBOX = 4404
    IDLE_TIMEOUT = 4408
    FRAME_TOO_LARGE = 4413
    UNKNOWN_MESSAGE_TYPE = 4415
    UNSUPPORTED_VERSION = 4426
    TOO_MANY_REQUESTS = 4429
    CREDENTIAL_EXPIRED = 4440


#: The public reason sent with each close code (a WebSocket close reason is at most 123
#: bytes of UTF-8). Internal detail never goes here.
CLOSE_REASONS: Mapping[CloseCode, str] = MappingProxyType(
    {
        CloseCode.MALFORMED_FRAME: "malformed frame",
        CloseCode.UNAUTHENTICATED: "not authenticated: send a valid token or API key",
        CloseCode.FORBIDDEN_MAILBOX: "that mailbox is not yours",
        CloseCode.UNKNOWN_MAILBOX: "no such mailbox",
        CloseCode.IDLE_TIMEOUT: "idle for too long",
        CloseCode.FRAME_TOO_LARGE: "frame too large",
        CloseCode.UNKNOWN_MESSAGE_TYPE: "unknown or unexpected message type",
        CloseCode.UNSUPPORTED_VERSION: "unsupported frame format version",
        CloseCode.TOO_MANY_REQUESTS: "too many messages: slow down",
        CloseCode.CREDENTIAL_EXPIRED: "credential expired or revoked: reconnect with a fresh one",
    }
)


class MessageError(PodiumError, ValueError):
    """A message, payload record or mailbox name that breaks the wire rules."""


class FrameError(MessageError):
    """A relay frame was refused.

    ``code`` is the close code to answer with and ``reason`` its short public reason (safe
    to send to the peer: it never quotes the frame). ``str(error)`` adds the detail, for logs.
    """

    def __init__(self, code: CloseCode, detail: str = "") -> None:
        self.code = code
        self.reason = CLOSE_REASONS[code]
        self.detail = detail
        text = f"{self.reason}: {detail}" if detail else self.reason
        super().__init__(f"{text} (close code {int(code)})")


class PayloadError(MessageError):
    """The plaintext of an opened body does not decode to its message type's record."""
