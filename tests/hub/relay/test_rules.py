"""Who may read and write which relay mailbox."""

from __future__ import annotations

import pytest

from podium.core.messages import PodMailbox
from podium.hub.relay.rules import may_read, may_send_in_task, owns_party, pod_party

TASK = "b" * 32


@pytest.mark.parametrize(
    ("user", "party", "owned"),
    [
        ("alice", "alice", True),
        ("alice", "alice.census", True),
        ("alice", "bob", False),
        ("alice", "bob.census", False),
        ("alice", "alicex", False),
        ("alice", "alicex.census", False),
    ],
)
def test_owns_party(user: str, party: str, owned: bool) -> None:
    """A user acts as itself and as each of its pods, never as anyone else."""
    assert owns_party(user, party) is owned


@pytest.mark.parametrize(
    ("mailbox", "readable"),
    [
        ("pod/alice/census", True),
        ("pod/bob/census", False),
        (f"task/{TASK}/alice", True),
        (f"task/{TASK}/alice.census", True),
        (f"task/{TASK}/bob", False),
        (f"task/{TASK}/bob.census", False),
        ("task/nothex/alice", False),
        ("pod/alice", False),
    ],
)
def test_may_read(mailbox: str, readable: bool) -> None:
    """alice reads her pods' mailboxes and her parties' task mailboxes only."""
    assert may_read("alice", mailbox) is readable


@pytest.mark.parametrize(
    ("sender", "recipient", "allowed"),
    [
        ("bob", "alice.census", True),
        ("alice.census", "bob", True),
        ("eve", "bob", False),
        ("bob", "eve", False),
    ],
)
def test_task_messages_only_between_participants(
    sender: str, recipient: str, allowed: bool
) -> None:
    """Within a task only its requester and its pod write to each other."""
    participants = frozenset({"bob", pod_party(PodMailbox("alice", "census"))})
    assert may_send_in_task(sender, recipient, participants) is allowed


def test_nobody_sends_in_an_unknown_task() -> None:
    """A task the store does not know takes no messages."""
    assert not may_send_in_task("bob", "alice.census", None)
