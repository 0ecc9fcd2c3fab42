"""Dropping duplicate deliveries: a bounded high-water mark per message stream.

The relay delivers at least once, so a message can arrive again after a reconnect. A
*stream* is ``(recipient mailbox, task_id, sender)``: the hub's append identity without the
``seq``. (Keying by ``(task_id, sender)`` alone, as DESIGN.md puts it, would be wrong when
one sender writes to two of our mailboxes, say a job request to ``pod/...`` and the rest to
``task/...``: the hub orders each mailbox, not the pair, so a lower seq could arrive second
and be taken for a duplicate.)

Per stream we keep the next expected ``seq``: a message below it is a duplicate. A message
*above* it (a gap) is accepted and the mark jumps past it, with a warning in the log: the hub
delivers each mailbox in append order, so a gap means the sender skipped numbers, and
waiting for them could wait for ever. A late arrival of a skipped number is then dropped as
a duplicate. The session layer (:mod:`podium.core.crypto`) rejects gaps in sealed streams.

The table is bounded (least recently used streams are forgotten): a duplicate of a stream
forgotten long ago would be delivered again, so keep ``capacity`` above the number of
streams a client follows at once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

__all__ = ["Deduplicator", "StreamKey"]

logger = logging.getLogger("podium.transport")

#: ``(recipient, task_id, sender)``
StreamKey = tuple[str, str, str]


class Deduplicator:
    """Next expected seq per stream, for at most ``capacity`` streams."""

    def __init__(self, capacity: int = 65536) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._next: OrderedDict[StreamKey, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._next)

    def accept(self, stream: StreamKey, seq: int) -> bool:
        """Whether ``seq`` is new on ``stream`` (and record it); False for a duplicate."""
        expected = self._next.get(stream)
        if expected is not None:
            self._next.move_to_end(stream)
            if seq < expected:
                return False
            if seq > expected:
                logger.warning(
                    "gap in %s: expected seq %s, got %s; delivering and moving on",
                    stream,
                    expected,
                    seq,
                )
        self._next[stream] = seq + 1
        if len(self._next) > self._capacity:
            self._next.popitem(last=False)
        return True
