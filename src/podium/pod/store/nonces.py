"""Replay protection that survives a restart: request nonces kept in the pod DB."""

from __future__ import annotations

from datetime import datetime, timedelta

from podium.core.crypto.nonces import NonceRegistry
from podium.pod.store.base import PodStore, utc

__all__ = ["DEFAULT_NONCE_RETENTION", "StoreNonceRegistry"]

#: How long a nonce is kept: longer than a request's maximum age plus the clock skew.
DEFAULT_NONCE_RETENTION = timedelta(minutes=10)


class StoreNonceRegistry(NonceRegistry):
    """A :class:`~podium.core.crypto.NonceRegistry` on a :class:`PodStore`: each nonce is
    kept ``retention`` after it was first seen, then forgotten. With the SQLite store it
    outlives the pod process, so a request replayed across a restart is still refused."""

    def __init__(self, store: PodStore, retention: timedelta = DEFAULT_NONCE_RETENTION) -> None:
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        self._store = store
        self._retention = retention

    @property
    def retention(self) -> timedelta:
        """How long each nonce is kept."""
        return self._retention

    def seen_before(self, nonce: bytes, now: datetime) -> bool:
        at = utc(now)
        return self._store.remember_nonce(nonce, at, at + self._retention)
