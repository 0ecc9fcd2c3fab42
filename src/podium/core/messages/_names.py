"""Task ids, party names and mailbox names.

* A **name** (user, owner, pod) follows the one name rule of :mod:`podium.core.names`
  (the hub's too): 1 to 63 characters of ``a-z 0-9 _ -``, starting with a letter or digit.
* A **task id** is 32 lowercase hex digits (a UUID4 without dashes; :func:`new_task_id`).
* A **party** is who sends or receives within a task: a user by name (``alice``) or a pod as
  ``<owner>.<pod>`` (``acme.census``). Names have no dots, so the two never collide.
* A **mailbox** is ``pod/<owner>/<pod>`` (job requests to a pod) or
  ``task/<task_id>/<party>`` (one per participant of a task).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from podium.core.messages._errors import MessageError
from podium.core.names import NAME_CHARS, is_valid_name

__all__ = [
    "PodMailbox",
    "TaskMailbox",
    "is_valid_party",
    "is_valid_task_id",
    "new_task_id",
    "parse_mailbox",
    "pod_mailbox",
    "pod_party",
    "task_mailbox",
    "user_party",
]

_NAME = NAME_CHARS
_TASK_ID_RE = re.compile(r"[0-9a-f]{32}")
_PARTY_RE = re.compile(rf"{_NAME}(?:\.{_NAME})?")
_MAILBOX_RE = re.compile(
    rf"pod/(?P<owner>{_NAME})/(?P<pod>{_NAME})"
    rf"|task/(?P<task>[0-9a-f]{{32}})/(?P<party>{_NAME}(?:\.{_NAME})?)"
)


@dataclass(frozen=True, slots=True)
class PodMailbox:
    """A pod's mailbox for job requests: ``pod/<owner>/<name>``."""

    owner: str
    name: str

    def __str__(self) -> str:
        return f"pod/{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class TaskMailbox:
    """A task participant's mailbox: ``task/<task_id>/<party>``."""

    task_id: str
    party: str

    def __str__(self) -> str:
        return f"task/{self.task_id}/{self.party}"


def new_task_id() -> str:
    """A fresh random task id: 32 lowercase hex digits."""
    return uuid.uuid4().hex


def is_valid_task_id(value: object) -> bool:
    """Whether ``value`` is a task id (32 lowercase hex digits)."""
    return type(value) is str and _TASK_ID_RE.fullmatch(value) is not None


def is_valid_party(value: object) -> bool:
    """Whether ``value`` is a party name: ``<user>`` or ``<owner>.<pod>``."""
    return type(value) is str and _PARTY_RE.fullmatch(value) is not None


def _check_name(value: object, what: str) -> str:
    if not is_valid_name(value):
        raise MessageError(
            f"{what} {value!r} is not a valid name: use 1 to 63 characters of a-z, 0-9, "
            "'_' and '-', starting with a letter or digit"
        )
    return value


def user_party(user: str) -> str:
    """The party name of a user (a modeller): the user name itself."""
    return _check_name(user, "user")


def pod_party(owner: str, name: str) -> str:
    """The party name of a pod: ``<owner>.<name>``."""
    return f"{_check_name(owner, 'pod owner')}.{_check_name(name, 'pod name')}"


def pod_mailbox(owner: str, name: str) -> str:
    """The mailbox of a pod's job requests: ``pod/<owner>/<name>``."""
    return f"pod/{_check_name(owner, 'pod owner')}/{_check_name(name, 'pod name')}"


def task_mailbox(task_id: str, party: str) -> str:
    """The mailbox of one participant of a task: ``task/<task_id>/<party>``."""
    if not is_valid_task_id(task_id):
        raise MessageError(f"task id {task_id!r} is not 32 lowercase hex digits")
    if not is_valid_party(party):
        raise MessageError(f"party {party!r} is not '<user>' or '<owner>.<pod>'")
    return f"task/{task_id}/{party}"


def parse_mailbox(name: object) -> PodMailbox | TaskMailbox:
    """Parse a mailbox name.

    Raises:
        MessageError: ``name`` is not ``pod/<owner>/<pod>`` or ``task/<task_id>/<party>``.
    """
    match = _MAILBOX_RE.fullmatch(name) if type(name) is str else None
    if match is None:
        shown = name[:200] if isinstance(name, str) else type(name).__name__
        raise MessageError(
            f"mailbox {shown!r} is not 'pod/<owner>/<pod>' or 'task/<task_id>/<party>'"
        )
    if match["owner"] is not None:
        return PodMailbox(match["owner"], match["pod"])
    return TaskMailbox(match["task"], match["party"])
