"""The base class of every payload record (apart so that record modules need not import
one another)."""

from __future__ import annotations

__all__ = ["Payload"]


class Payload:
    """Base of every payload record."""

    __slots__ = ()
