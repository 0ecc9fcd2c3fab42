"""Errors of the relay client.

The tree (beside the one drawn in :mod:`podium.core.errors`)::

    PodiumError
    └── TransportError              the relay client failed
        ├── RelayRefusedError       the hub refused one sent message (a REFUSED frame)
        └── RelayClosedError        the connection is closed for good: by the application,
                                    or by the hub with a close code that a reconnect
                                    cannot fix (bad credentials, a mailbox not yours, ...)
"""

from __future__ import annotations

from podium.core.errors import ExitCode, PodiumError
from podium.core.messages import CLOSE_REASONS, CloseCode

__all__ = ["RelayClosedError", "RelayRefusedError", "TransportError"]


def _describe(code: int | None, reason: str) -> str:
    known = CLOSE_REASONS.get(CloseCode(code)) if code in set(CloseCode) else None
    return reason or known or "no reason given"


class TransportError(PodiumError):
    """The relay client failed."""

    exit_code = ExitCode.HUB


class RelayRefusedError(TransportError):
    """The hub refused one sent message; the connection stays usable.

    ``code`` is the relay's :class:`~podium.core.messages.CloseCode` for the refusal and
    ``reason`` the hub's public reason.
    """

    def __init__(self, code: int, reason: str, *, task_id: str, recipient: str, seq: int) -> None:
        self.code = code
        self.reason = _describe(code, reason)
        self.task_id = task_id
        self.recipient = recipient
        self.seq = seq
        super().__init__(
            f"the hub refused message seq {seq} of task {task_id} to {recipient}: "
            f"{self.reason} (code {code})"
        )


class RelayClosedError(TransportError):
    """The connection is closed and will not reconnect.

    ``code`` is the WebSocket close code that ended it (``None`` when the application
    closed it). 4401 means the credential is wrong or expired (log in again or use a valid
    API key); 4403 means a subscribed mailbox or a sender name is not yours.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = _describe(code, reason) if code is not None else reason or "closed"
        where = "the connection was closed" if code is None else "the hub closed the connection"
        suffix = "" if code is None else f" (close code {code})"
        super().__init__(f"{where}: {self.reason}{suffix}")
