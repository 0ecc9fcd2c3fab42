"""Who may read and write which mailbox.

A connection is authenticated as a hub user (a pod runs with its owner's credentials), so
its *parties* are the user itself and every ``<user>.<pod>``:

- **Read** ``pod/<owner>/<pod>`` only as ``owner``; ``task/<task_id>/<party>`` only if
  ``party`` is one of the connection's parties. Administrators get nothing more: the
  relay never hands anyone another party's mail.
- **Send** only as one of the connection's parties (the envelope's ``sender``).
  Anyone may send to a pod mailbox (the pod decides, with the access manager, whether to
  take a job). A ``JOB_REQUEST`` to ``pod/<o>/<p>`` for task *T* from *S* makes *S* and
  ``<o>.<p>`` participants of *T*; the first requester of *T* owns it, and a request
  for *T* from anyone else is refused. A task mailbox takes messages only from a
  participant of its task, addressed to a participant.

The participants live in the mailbox store (:meth:`MailboxStore.register_task`), so a
task outlives a hub restart and every replica on one database knows it.
"""

from __future__ import annotations

from podium.core.messages import PodMailbox, parse_mailbox

__all__ = ["may_read", "may_send_in_task", "owns_party", "pod_party"]


def owns_party(user: str, party: str) -> bool:
    """Whether a connection authenticated as ``user`` may act as ``party``."""
    owner, dot, _ = party.partition(".")
    return party == user or (dot == "." and owner == user)


def may_read(user: str, mailbox: str) -> bool:
    """Whether ``user`` may read ``mailbox`` (False for a malformed name)."""
    try:
        parsed = parse_mailbox(mailbox)
    except ValueError:
        return False
    if isinstance(parsed, PodMailbox):
        return parsed.owner == user
    return owns_party(user, parsed.party)


def pod_party(pod: PodMailbox) -> str:
    """The party a pod acts as: ``<owner>.<pod>``."""
    return f"{pod.owner}.{pod.name}"


def may_send_in_task(sender: str, recipient: str, participants: frozenset[str] | None) -> bool:
    """Whether ``sender`` may write to ``recipient``'s mailbox of a task whose participants
    are ``participants`` (None: an unknown task): both must take part."""
    return participants is not None and {sender, recipient} <= participants
