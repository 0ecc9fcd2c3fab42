"""Duplicate detection: a next-expected seq per stream, bounded."""

from __future__ import annotations

import logging

import pytest

from podium.transport import Deduplicator

STREAM = ("task/x/bob", "t1", "alice")
OTHER = ("pod/bob/census", "t1", "alice")


def test_a_seq_below_the_mark_is_a_duplicate() -> None:
    """Once seq n is accepted, n and anything lower are duplicates; n + 1 is new."""
    dedup = Deduplicator()
    assert [dedup.accept(STREAM, s) for s in (0, 1, 1, 0, 2)] == [True, True, False, False, True]


def test_streams_are_independent() -> None:
    """The same seq on another mailbox of the same sender and task is a new message."""
    dedup = Deduplicator()
    assert dedup.accept(STREAM, 5)
    assert dedup.accept(OTHER, 0)
    assert dedup.accept(("task/x/bob", "t2", "alice"), 0)


def test_a_gap_is_delivered_and_a_late_lower_seq_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A jump ahead is accepted with a warning; a skipped seq arriving later is dropped."""
    dedup = Deduplicator()
    dedup.accept(STREAM, 0)
    with caplog.at_level(logging.WARNING, logger="podium.transport"):
        assert dedup.accept(STREAM, 3)
    assert "gap" in caplog.text
    assert not dedup.accept(STREAM, 2)
    assert dedup.accept(STREAM, 4)


def test_the_table_is_bounded_least_recently_used_first() -> None:
    """Beyond ``capacity`` streams, the least recently used one is forgotten."""
    dedup = Deduplicator(capacity=2)
    dedup.accept(("a", "t", "s"), 0)
    dedup.accept(("b", "t", "s"), 0)
    dedup.accept(("a", "t", "s"), 1)  # a is now the most recent
    dedup.accept(("c", "t", "s"), 0)  # evicts b
    assert len(dedup) == 2
    assert dedup.accept(("b", "t", "s"), 0)  # forgotten: taken as new
    assert not dedup.accept(("c", "t", "s"), 0)
