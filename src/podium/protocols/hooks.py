"""Hooks: plain callables run at named points of a task, on either side.

Register with :meth:`Hooks.on`; the engine calls :meth:`Hooks.fire` with keyword
arguments describing the moment (``task_id``, ``pod``, ``batch``, ``reason``, ...). A hook
that raises is an error of the task, never swallowed: on a pod the task aborts with the
hook's error, on the modeller the run raises :class:`HookError`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from podium.core.errors import TaskError

__all__ = ["HookError", "HookEvent", "Hooks"]


class HookEvent(StrEnum):
    """The named moments of a task."""

    TASK_START = "task_start"
    TASK_END = "task_end"
    BATCH_START = "batch_start"
    BATCH_END = "batch_end"
    RESILIENCE_START = "resilience_start"
    RESILIENCE_END = "resilience_end"
    TASK_ABORT = "task_abort"


class HookError(TaskError):
    """A hook raised; the message names the hook, the event and its error."""


Hook = Callable[..., object]


class Hooks:
    """Callables per event, called in the order registered."""

    def __init__(self) -> None:
        self._hooks: dict[HookEvent, list[Hook]] = {event: [] for event in HookEvent}

    def on(self, event: HookEvent | str, hook: Hook) -> Hook:
        """Call ``hook(**info)`` at ``event``; returns ``hook``.

        Raises:
            ValueError: ``event`` is not a :class:`HookEvent`.
        """
        try:
            self._hooks[HookEvent(event)].append(hook)
        except ValueError:
            known = ", ".join(HookEvent)
            raise ValueError(f"{event!r} is not a hook event; known: {known}") from None
        return hook

    def fire(self, event: HookEvent, **info: object) -> None:
        """Run the hooks of ``event``.

        Raises:
            HookError: A hook raised (the original error is its cause).
        """
        for hook in self._hooks[event]:
            try:
                hook(**info)
            except Exception as error:
                name = getattr(hook, "__qualname__", repr(hook))
                raise HookError(
                    f"the {event.value} hook {name} failed: {type(error).__name__}: {error}"
                ) from error
