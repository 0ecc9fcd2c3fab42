"""What the transport contract suite runs against: the :class:`RelayHarness` interface
and the bounded-wait helpers shared by the harnesses and the tests."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Callable

from podium.transport import Backoff, ConnectionOptions, Transport

#: Every wait in these tests is bounded by this many seconds.
WAIT_S = 5.0


def fast_options(*, seed: int = 7, **overrides: object) -> ConnectionOptions:
    """Connection options with quick, seeded reconnects."""
    backoff = Backoff(initial=0.001, maximum=0.02, rng=random.Random(seed))
    return ConnectionOptions(backoff=backoff, **overrides)  # type: ignore[arg-type]


async def eventually(check: Callable[[], bool], *, timeout: float = WAIT_S) -> None:
    """Wait until ``check()`` holds (fails the test after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.002)


class RelayHarness(ABC):
    """A relay to test against, with users and fault injection."""

    #: Whether :meth:`lose_receipts` works here (a real hub always sends receipts).
    can_lose_receipts = True

    @abstractmethod
    def transport(self, user: str) -> Transport:
        """A transport with a valid credential for ``user`` (created on first use)."""

    @abstractmethod
    def bad_transport(self) -> Transport:
        """A transport whose credential the hub does not know."""

    @abstractmethod
    def drop(self, user: str) -> None:
        """Cut ``user``'s live connections as a lost network would."""

    @abstractmethod
    def connections(self, user: str) -> int:
        """How many connections of ``user`` the hub holds."""

    @abstractmethod
    def stored(self, mailbox: str) -> int:
        """How many messages the hub ever stored in ``mailbox``."""

    @abstractmethod
    def pending(self, mailbox: str) -> int:
        """How many messages of ``mailbox`` are not acknowledged."""

    @abstractmethod
    def lose_receipts(self, lose: bool) -> None:
        """Store messages but send no receipts while ``lose`` is true."""

    @abstractmethod
    def renewing_transport(self, user: str) -> Transport:
        """A transport whose credential is a function giving ``user``'s current one
        (made by :meth:`provider`)."""

    def provider(self, user: str, current: Callable[[], str]) -> Callable[[], str]:
        """A credential function for ``user`` that counts its calls in :attr:`dials`."""
        self.dials = getattr(self, "dials", {})

        def credential() -> str:
            self.dials[user] = self.dials.get(user, 0) + 1
            return current()

        return credential

    @abstractmethod
    def revoke(self, user: str) -> None:
        """Revoke ``user``'s current credential (the hub closes its live connections with
        4440 when it next checks) and issue a fresh one."""
