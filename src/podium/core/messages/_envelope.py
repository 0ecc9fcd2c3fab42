"""The envelope: the routing part of a relayed message, around an opaque sealed body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from podium.core.messages._errors import MessageError
from podium.core.messages._names import (
    TaskMailbox,
    is_valid_party,
    is_valid_task_id,
    parse_mailbox,
)
from podium.core.messages._types import MessageType
from podium.core.messages._values import MetaValue, check_bytes, check_float, check_int, check_meta

__all__ = ["Envelope"]


def _no_meta() -> Mapping[str, MetaValue]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One relayed message. The hub reads everything here except ``body``.

    Attributes:
        type: What the message is.
        task_id: The task it belongs to (32 lowercase hex digits); a job request carries
            the id of the task it proposes.
        sender: The sending party (``<user>`` or ``<owner>.<pod>``); the relay checks it
            against the connection's identity.
        recipient: A mailbox name; a ``task/...`` mailbox must name this ``task_id``.
        seq: The sender's sequence number, ``0 <= seq < 2**63``; receivers drop
            duplicates by ``(task_id, sender, seq)``.
        sent_at: When it was sent, in Unix seconds (finite, not negative).
        meta: Up to 32 small routing hints (keys up to 64 characters of
            ``A-Z a-z 0-9 _ . -``, scalar values, strings up to 256 characters); stored
            read-only. Never put task contents here: the hub sees it.
        body: The sealed body; the relay never looks inside.

    Raises:
        MessageError: A field breaks the rules above.
    """

    type: MessageType
    task_id: str
    sender: str
    recipient: str
    seq: int
    sent_at: float
    meta: Mapping[str, MetaValue] = field(default_factory=_no_meta, hash=False)
    body: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        try:
            kind = MessageType(self.type)
        except ValueError:
            raise MessageError(f"type {self.type!r} is not a message type") from None
        object.__setattr__(self, "type", kind)
        if not is_valid_task_id(self.task_id):
            raise MessageError("task_id must be 32 lowercase hex digits")
        if not is_valid_party(self.sender):
            raise MessageError("sender must be a party name: '<user>' or '<owner>.<pod>'")
        mailbox = parse_mailbox(self.recipient)
        if isinstance(mailbox, TaskMailbox) and mailbox.task_id != self.task_id:
            raise MessageError("recipient is the mailbox of another task than task_id")
        check_int(self.seq, "seq", low=0)
        object.__setattr__(self, "sent_at", check_float(self.sent_at, "sent_at", low=0.0))
        object.__setattr__(self, "meta", check_meta(self.meta))
        check_bytes(self.body, "body")
