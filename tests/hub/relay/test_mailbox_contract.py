"""The mailbox store's contract: every test runs on the in-memory store, SQLite and
PostgreSQL. The in-memory store is the reference; the SQL store must behave the same."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import pytest
import sqlalchemy as sa

from podium.hub.relay import MailboxStore, SqlMailboxStore, StoredMessage
from podium.hub.store import _tables as t
from tests.hub.store.conftest import T0, at

POD = "pod/alice/census"
TASK = "task/t1/modeller"
OTHER_TASK = "task/t1/alice-census"

_T = TypeVar("_T")


def put(
    store: MailboxStore,
    mailbox: str,
    seq: int,
    *,
    frame: bytes | None = None,
    sender: str = "bob",
    task_id: str = "t1",
    now: datetime = T0,
) -> StoredMessage:
    """Append one message; its frame names its sequence number unless given."""
    body = f"frame {seq}".encode() if frame is None else frame
    return store.append(mailbox, sender=sender, task_id=task_id, seq=seq, frame=body, now=now)


def ids(messages: list[StoredMessage]) -> list[int]:
    """The ids of ``messages``, in order."""
    return [m.message_id for m in messages]


def race(call: Callable[[int], _T], times: int = 8) -> list[_T]:
    """Run ``call(i)`` from ``times`` threads at once; the results."""
    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(call, range(times)))


# -- append and pending ----------------------------------------------------------------


def test_appended_message_reads_back_field_for_field(mailboxes: MailboxStore) -> None:
    """append returns the stored message and pending gives exactly the same record."""
    stored = put(mailboxes, TASK, 7, frame=b"\x00sealed\xff", sender="carol", task_id="t9")
    assert (stored.mailbox, stored.sender, stored.task_id, stored.seq) == (TASK, "carol", "t9", 7)
    assert stored.frame == b"\x00sealed\xff"
    assert stored.created_at == T0
    assert stored.acked_at is None
    assert mailboxes.pending(TASK) == [stored]


def test_pending_lists_messages_in_append_order_with_increasing_ids(
    mailboxes: MailboxStore,
) -> None:
    """Messages from several senders come back in the order they were appended."""
    sent = [
        put(mailboxes, TASK, seq, sender=sender) for seq, sender in [(5, "b"), (1, "a"), (2, "b")]
    ]
    got = mailboxes.pending(TASK)
    assert got == sent
    assert ids(got) == sorted(ids(got))
    assert len(set(ids(got))) == 3


def test_mailboxes_are_separate(mailboxes: MailboxStore) -> None:
    """A message appended to one mailbox is pending only there."""
    put(mailboxes, TASK, 1)
    assert mailboxes.pending(OTHER_TASK) == []
    assert mailboxes.pending("task/never/used") == []
    assert mailboxes.count(TASK) == 1
    assert mailboxes.count(OTHER_TASK) == 0


def test_times_come_back_aware_in_utc(mailboxes: MailboxStore) -> None:
    """A time given in another zone is stored as the same instant and read back in UTC."""
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    put(mailboxes, TASK, 1, now=plus_two)
    (message,) = mailboxes.pending(TASK)
    assert message.created_at == T0
    assert message.created_at.tzinfo is not None
    assert message.created_at.utcoffset() == timedelta(0)
    box = mailboxes.get_mailbox(TASK)
    assert box is not None
    assert box.last_active_at.utcoffset() == timedelta(0)
    assert box.created_at == T0


@pytest.mark.parametrize("size", [0, 4 * 1024 * 1024])
def test_frames_round_trip_byte_exact(mailboxes: MailboxStore, size: int) -> None:
    """Empty and 4 MiB frames of random bytes come back byte for byte."""
    frame = random.Random(size).randbytes(size)
    put(mailboxes, TASK, 1, frame=frame)
    (message,) = mailboxes.pending(TASK)
    assert message.frame == frame
    assert type(message.frame) is bytes


def test_naive_times_are_refused(mailboxes: MailboxStore) -> None:
    """Every method that takes a time refuses one without a time zone, storing nothing."""
    naive = datetime(2026, 3, 4, 5, 6, 7)
    with pytest.raises(ValueError, match="naive"):
        put(mailboxes, TASK, 1, now=naive)
    with pytest.raises(ValueError, match="naive"):
        mailboxes.touch(TASK, naive)
    with pytest.raises(ValueError, match="naive"):
        mailboxes.ack(TASK, [1], naive)
    with pytest.raises(ValueError, match="naive"):
        mailboxes.expire(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="naive"):
        mailboxes.purge_acked(naive)
    assert mailboxes.get_mailbox(TASK) is None


# -- idempotent append -----------------------------------------------------------------


def test_appending_the_same_identity_again_returns_the_first_message(
    mailboxes: MailboxStore,
) -> None:
    """A retried append (same mailbox, sender, task, seq) stores nothing new and returns
    the first message, its frame and time unchanged."""
    first = put(mailboxes, TASK, 1, frame=b"first")
    again = put(mailboxes, TASK, 1, frame=b"retry", now=at(5))
    assert again == first
    assert mailboxes.pending(TASK) == [first]
    assert mailboxes.count(TASK) == 1


def test_identity_includes_mailbox_sender_task_and_seq(mailboxes: MailboxStore) -> None:
    """Changing any one part of the identity makes a new message."""
    first = put(mailboxes, TASK, 1)
    variants = [
        put(mailboxes, OTHER_TASK, 1),
        put(mailboxes, TASK, 1, sender="carol"),
        put(mailboxes, TASK, 1, task_id="t2"),
        put(mailboxes, TASK, 2),
    ]
    assert len({first.message_id, *ids(variants)}) == 5
    assert mailboxes.count(TASK) == 4


def test_racing_identical_appends_store_one_message(mailboxes: MailboxStore) -> None:
    """Eight threads appending the same message at once all get the one stored message."""
    results = race(lambda _: put(mailboxes, TASK, 1, frame=b"same"))
    assert len({m.message_id for m in results}) == 1
    assert mailboxes.count(TASK) == 1
    assert mailboxes.pending(TASK) == [results[0]]


def test_racing_distinct_appends_get_distinct_ordered_ids(mailboxes: MailboxStore) -> None:
    """Eight threads appending different messages to one mailbox all store, with distinct
    ids, and pending lists them by id."""
    results = race(lambda i: put(mailboxes, TASK, i))
    assert len(set(ids(results))) == 8
    pending = mailboxes.pending(TASK)
    assert ids(pending) == sorted(ids(results))
    assert {m.seq for m in pending} == set(range(8))


# -- paging ----------------------------------------------------------------------------


def test_pending_pages_with_after_id(mailboxes: MailboxStore) -> None:
    """limit caps a page and after_id continues after the last id seen."""
    sent = [put(mailboxes, TASK, seq) for seq in range(5)]
    put(mailboxes, OTHER_TASK, 99)
    first = mailboxes.pending(TASK, limit=2)
    second = mailboxes.pending(TASK, after_id=first[-1].message_id, limit=2)
    third = mailboxes.pending(TASK, after_id=second[-1].message_id, limit=2)
    assert first + second + third == sent
    assert len(third) == 1
    assert mailboxes.pending(TASK, after_id=third[-1].message_id) == []


def test_pending_refuses_an_empty_page(mailboxes: MailboxStore) -> None:
    """A limit below one is a mistake, not an empty answer."""
    with pytest.raises(ValueError, match="limit"):
        mailboxes.pending(TASK, limit=0)


# -- acknowledgement -------------------------------------------------------------------


def test_acknowledged_messages_are_never_pending_again(mailboxes: MailboxStore) -> None:
    """ack removes messages from pending (with or without after_id) and from count."""
    a, b, c = (put(mailboxes, TASK, seq) for seq in range(3))
    assert mailboxes.ack(TASK, [a.message_id, c.message_id], at(1)) == 2
    assert mailboxes.pending(TASK) == [b]
    assert mailboxes.pending(TASK, after_id=b.message_id) == []
    assert mailboxes.count(TASK) == 1


def test_ack_is_idempotent(mailboxes: MailboxStore) -> None:
    """Acknowledging again, or with repeated ids, changes nothing more."""
    a = put(mailboxes, TASK, 1)
    b = put(mailboxes, TASK, 2)
    assert mailboxes.ack(TASK, [a.message_id, a.message_id], at(1)) == 1
    assert mailboxes.ack(TASK, [a.message_id], at(2)) == 0
    assert mailboxes.ack(TASK, [a.message_id, b.message_id], at(3)) == 1
    assert mailboxes.ack(TASK, [], at(4)) == 0
    assert mailboxes.pending(TASK) == []


def test_ack_only_touches_its_own_mailbox(mailboxes: MailboxStore) -> None:
    """Acknowledging another mailbox's message id through this mailbox changes nothing."""
    mine = put(mailboxes, TASK, 1)
    theirs = put(mailboxes, OTHER_TASK, 1)
    assert mailboxes.ack(TASK, [theirs.message_id, 10**12], at(1)) == 0
    assert mailboxes.ack("task/unknown/x", [mine.message_id], at(1)) == 0
    assert mailboxes.pending(OTHER_TASK) == [theirs]
    assert mailboxes.pending(TASK) == [mine]


def test_ack_of_many_ids_at_once(mailboxes: MailboxStore) -> None:
    """One ack can take more ids than a database allows in one statement's parameters."""
    sent = [put(mailboxes, TASK, seq, frame=b"") for seq in range(1200)]
    wanted = ids(sent)[:1100] + list(range(10**9, 10**9 + 40000))
    assert mailboxes.ack(TASK, wanted, at(1)) == 1100
    assert mailboxes.pending(TASK, limit=1000) == sent[1100:]


def test_retry_after_ack_returns_the_acknowledged_tombstone(mailboxes: MailboxStore) -> None:
    """A sender retrying a delivered message gets the acknowledged record back (frame
    dropped) and nothing is pending again."""
    first = put(mailboxes, TASK, 1, frame=b"payload")
    mailboxes.ack(TASK, [first.message_id], at(1))
    again = put(mailboxes, TASK, 1, frame=b"payload", now=at(2))
    assert again.message_id == first.message_id
    assert again.acked_at == at(1)
    assert again.frame == b""
    assert mailboxes.pending(TASK) == []


def test_purge_acked_removes_old_tombstones_only(mailboxes: MailboxStore) -> None:
    """purge_acked deletes messages acknowledged before the cutoff, keeps later ones and
    every pending one; a purged identity can then be stored as a new message."""
    old, recent, waiting = (put(mailboxes, TASK, seq) for seq in range(3))
    mailboxes.ack(TASK, [old.message_id], at(10))
    mailboxes.ack(TASK, [recent.message_id], at(20))
    assert mailboxes.purge_acked(at(15)) == 1
    assert mailboxes.pending(TASK) == [waiting]
    kept = put(mailboxes, TASK, 1, now=at(30))
    assert (kept.message_id, kept.acked_at) == (recent.message_id, at(20))
    reborn = put(mailboxes, TASK, 0, now=at(30))
    assert reborn.message_id > waiting.message_id
    assert mailboxes.pending(TASK) == [waiting, reborn]


def test_ids_are_never_reused_after_the_newest_message_goes(mailboxes: MailboxStore) -> None:
    """Deleting the newest message (ack and purge) does not hand its id out again, so an
    after_id cursor stays valid."""
    newest = put(mailboxes, TASK, 1)
    mailboxes.ack(TASK, [newest.message_id], at(1))
    mailboxes.purge_acked(at(2))
    later = put(mailboxes, TASK, 2, now=at(3))
    assert later.message_id > newest.message_id
    assert mailboxes.pending(TASK, after_id=newest.message_id) == [later]


# -- activity and expiry ---------------------------------------------------------------


def test_touch_creates_a_mailbox_and_activity_never_goes_back(mailboxes: MailboxStore) -> None:
    """touch creates the mailbox; later activity moves it on, earlier activity does not."""
    assert mailboxes.get_mailbox(TASK) is None
    mailboxes.touch(TASK, at(10))
    mailboxes.touch(TASK, at(30))
    mailboxes.touch(TASK, at(20))
    box = mailboxes.get_mailbox(TASK)
    assert box is not None
    assert (box.name, box.created_at, box.last_active_at) == (TASK, at(10), at(30))


def test_append_and_ack_count_as_activity(mailboxes: MailboxStore) -> None:
    """Appending to a mailbox and acknowledging in it move its activity time on."""
    message = put(mailboxes, TASK, 1, now=at(0))
    put(mailboxes, TASK, 1, now=at(5))
    box = mailboxes.get_mailbox(TASK)
    assert box is not None
    assert box.last_active_at == at(5)
    mailboxes.ack(TASK, [message.message_id], at(9))
    box = mailboxes.get_mailbox(TASK)
    assert box is not None
    assert box.last_active_at == at(9)


def test_expire_removes_only_idle_task_mailboxes(mailboxes: MailboxStore) -> None:
    """Task mailboxes idle longer than idle_for go with their messages; active task
    mailboxes, task mailboxes idle exactly idle_for and idle pod mailboxes stay."""
    put(mailboxes, TASK, 1, now=at(0))
    put(mailboxes, POD, 1, now=at(0))
    put(mailboxes, "TASK/upper/case", 1, now=at(0))
    put(mailboxes, OTHER_TASK, 1, now=at(0))
    mailboxes.touch(OTHER_TASK, at(50))
    mailboxes.touch("task/edge/x", at(40))

    assert mailboxes.expire(at(100), timedelta(seconds=60)) == 1

    assert mailboxes.get_mailbox(TASK) is None
    assert mailboxes.pending(TASK) == []
    assert mailboxes.count(TASK) == 0
    for kept in (POD, "TASK/upper/case", OTHER_TASK, "task/edge/x"):
        assert mailboxes.get_mailbox(kept) is not None, kept
    assert [m.seq for m in mailboxes.pending(POD)] == [1]
    assert [m.seq for m in mailboxes.pending(OTHER_TASK)] == [1]
    if isinstance(mailboxes, SqlMailboxStore):
        rows = sa.select(sa.func.count()).where(t.relay_messages.c.mailbox == TASK)
        with mailboxes.engine.connect() as conn:
            assert conn.execute(rows).scalar_one() == 0


def test_an_expired_mailbox_starts_afresh(mailboxes: MailboxStore) -> None:
    """After expiry the same name is a new, empty mailbox and old identities store anew."""
    old = put(mailboxes, TASK, 1, now=at(0))
    assert mailboxes.expire(at(1000), timedelta(seconds=1)) == 1
    new = put(mailboxes, TASK, 1, now=at(2000))
    assert new.message_id > old.message_id
    assert new.created_at == at(2000)
    box = mailboxes.get_mailbox(TASK)
    assert box is not None
    assert box.created_at == at(2000)
    assert mailboxes.expire(at(2000), timedelta(seconds=1)) == 0


def test_pod_mailboxes_never_expire(mailboxes: MailboxStore) -> None:
    """However long a pod mailbox is idle, expire leaves it and its messages alone."""
    put(mailboxes, POD, 1, now=datetime(2000, 1, 1, tzinfo=UTC))
    assert mailboxes.expire(at(0), timedelta(0)) == 0
    assert mailboxes.count(POD) == 1


# -- tasks -----------------------------------------------------------------------------

TASK_ID = "t1"
POD_PARTY = "alice.census"


def test_registered_task_knows_its_participants(mailboxes: MailboxStore) -> None:
    """register_task records the requester and the pod; an unknown task has None."""
    assert mailboxes.task_participants(TASK_ID) is None
    assert mailboxes.register_task(TASK_ID, "bob", POD_PARTY, at(0))
    assert mailboxes.task_participants(TASK_ID) == frozenset({"bob", POD_PARTY})
    assert mailboxes.task_participants("t2") is None


def test_first_requester_owns_the_task(mailboxes: MailboxStore) -> None:
    """The same requester may register again for the same pod; anyone else, or the same
    requester for another pod, is refused and changes nothing."""
    assert mailboxes.register_task(TASK_ID, "bob", POD_PARTY, at(0))
    assert mailboxes.register_task(TASK_ID, "bob", POD_PARTY, at(1))
    assert not mailboxes.register_task(TASK_ID, "eve", POD_PARTY, at(2))
    assert not mailboxes.register_task(TASK_ID, "bob", "eve.pod", at(3))
    assert mailboxes.task_participants(TASK_ID) == frozenset({"bob", POD_PARTY})


def test_racing_first_registrations_have_one_winner(mailboxes: MailboxStore) -> None:
    """Eight requesters registering one task at once: exactly one wins and owns it."""
    won = race(lambda i: mailboxes.register_task(TASK_ID, f"user{i}", POD_PARTY, at(0)))
    assert won.count(True) == 1
    winner = f"user{won.index(True)}"
    assert mailboxes.task_participants(TASK_ID) == frozenset({winner, POD_PARTY})


def test_registering_refuses_naive_times(mailboxes: MailboxStore) -> None:
    """register_task and expire_tasks take timezone-aware times only."""
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        mailboxes.register_task(TASK_ID, "bob", POD_PARTY, naive)
    with pytest.raises(ValueError, match="naive"):
        mailboxes.expire_tasks(naive, timedelta(hours=1))
    assert mailboxes.task_participants(TASK_ID) is None


def test_idle_tasks_expire_with_their_mailboxes(mailboxes: MailboxStore) -> None:
    """An idle task stays while one of its task mailboxes is left and goes after them;
    a registration marks a task active, and other tasks' mailboxes do not keep it."""
    assert mailboxes.register_task("t1", "bob", POD_PARTY, at(0))
    assert mailboxes.register_task("t2", "bob", POD_PARTY, at(0))
    assert mailboxes.register_task("t3", "bob", POD_PARTY, at(0))
    assert mailboxes.register_task("t3", "bob", POD_PARTY, at(90))
    mailboxes.touch("task/t1/bob", at(0))
    mailboxes.touch("task/t10/bob", at(95))  # t1 is only a prefix of t10
    mailboxes.touch(POD, at(0))

    assert mailboxes.expire_tasks(at(100), timedelta(seconds=60)) == 1  # t2
    assert mailboxes.task_participants("t2") is None
    assert mailboxes.task_participants("t1") is not None

    assert mailboxes.expire(at(100), timedelta(seconds=60)) == 1  # task/t1/bob
    assert mailboxes.expire_tasks(at(100), timedelta(seconds=60)) == 1  # t1
    assert mailboxes.task_participants("t1") is None
    assert mailboxes.task_participants("t3") == frozenset({"bob", POD_PARTY})
    assert mailboxes.expire_tasks(at(200), timedelta(seconds=60)) == 1  # t3
