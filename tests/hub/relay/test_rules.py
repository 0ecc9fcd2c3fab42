"""Who may read and write which relay mailbox, and the task participants registry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from podium.core.messages import PodMailbox, TaskMailbox
from podium.hub.relay.rules import TaskParticipants, may_read, owns_party
from tests.hub.store.conftest import T0

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


def test_job_request_makes_requester_and_pod_participants() -> None:
    """The requester and the pod may write to each other; others may not join the task."""
    tasks = TaskParticipants()
    assert tasks.register_request(TASK, "bob", PodMailbox("alice", "census"), T0)
    assert tasks.parties(TASK) == {"bob", "alice.census"}
    assert tasks.may_send("alice.census", TaskMailbox(TASK, "bob"), T0)
    assert tasks.may_send("bob", TaskMailbox(TASK, "alice.census"), T0)
    assert not tasks.may_send("eve", TaskMailbox(TASK, "bob"), T0)
    assert not tasks.may_send("bob", TaskMailbox(TASK, "eve"), T0)
    assert not tasks.register_request(TASK, "eve", PodMailbox("eve", "pod"), T0)
    assert tasks.parties(TASK) == {"bob", "alice.census"}


def test_idle_tasks_are_forgotten() -> None:
    """expire forgets tasks idle since before the cutoff; activity keeps one alive."""
    tasks = TaskParticipants()
    tasks.register_request(TASK, "bob", PodMailbox("alice", "census"), T0)
    tasks.register_request("c" * 32, "bob", PodMailbox("alice", "census"), T0)
    tasks.may_send("bob", TaskMailbox(TASK, "alice.census"), T0 + timedelta(hours=2))
    assert tasks.expire(T0 + timedelta(hours=1)) == 1
    assert tasks.parties("c" * 32) == frozenset()
    assert tasks.parties(TASK) == {"bob", "alice.census"}
