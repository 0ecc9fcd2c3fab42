"""Remembering request nonces long enough to refuse a replay."""

from __future__ import annotations

import heapq
import threading
from abc import ABC, abstractmethod
from datetime import datetime, timedelta

__all__ = ["InMemoryNonceRegistry", "NonceRegistry"]


class NonceRegistry(ABC):
    """The nonces of accepted requests. A nonce must be kept at least until a request
    carrying it would be refused as stale anyway (its maximum age plus the allowed clock
    skew); after that it may be forgotten."""

    @abstractmethod
    def seen_before(self, nonce: bytes, now: datetime) -> bool:
        """Whether ``nonce`` was recorded before; records it if not. Atomic: of two
        concurrent calls with one nonce, exactly one returns ``False``."""


class InMemoryNonceRegistry(NonceRegistry):
    """A :class:`NonceRegistry` in memory that forgets each nonce ``retention`` after it
    was recorded; thread-safe. A pod that restarts forgets its nonces: it must also refuse
    requests older than its start (or keep nonces in its database)."""

    def __init__(self, retention: timedelta = timedelta(seconds=330)) -> None:
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        self._retention = retention
        self._expiry: dict[bytes, datetime] = {}
        self._queue: list[tuple[datetime, bytes]] = []
        self._lock = threading.Lock()

    def seen_before(self, nonce: bytes, now: datetime) -> bool:
        with self._lock:
            self._forget_expired(now)
            if nonce in self._expiry:
                return True
            expires = now + self._retention
            self._expiry[nonce] = expires
            heapq.heappush(self._queue, (expires, nonce))
            return False

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _forget_expired(self, now: datetime) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, nonce = heapq.heappop(self._queue)
            del self._expiry[nonce]
