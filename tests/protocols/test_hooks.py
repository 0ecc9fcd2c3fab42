"""Hooks: called in order at their event with its keyword info; a failing hook is an error."""

from __future__ import annotations

import pytest

from podium.core.errors import TaskError
from podium.protocols.hooks import HookError, HookEvent, Hooks


def test_hooks_run_in_registration_order_with_the_keyword_info() -> None:
    """Each hook of an event gets the fired keyword arguments, first registered first."""
    hooks = Hooks()
    calls: list[tuple[str, dict[str, object]]] = []
    hooks.on(HookEvent.BATCH_END, lambda **info: calls.append(("first", info)))
    hooks.on("batch_end", lambda **info: calls.append(("second", info)))

    hooks.fire(HookEvent.BATCH_END, task_id="t1", pod="alice/census", batch=3)

    expected = {"task_id": "t1", "pod": "alice/census", "batch": 3}
    assert calls == [("first", expected), ("second", expected)]


def test_on_returns_the_hook_so_it_can_decorate() -> None:
    """``on`` hands back the hook it registered."""
    hooks = Hooks()

    def hook(**_: object) -> None:
        """Does nothing."""

    assert hooks.on(HookEvent.TASK_END, hook) is hook


def test_hooks_of_other_events_are_not_called() -> None:
    """Firing one event leaves the hooks of every other event alone."""
    hooks = Hooks()
    called: list[str] = []
    for event in HookEvent:
        hooks.on(event, lambda event=event, **_: called.append(event.value))

    hooks.fire(HookEvent.TASK_ABORT, reason="cancelled")

    assert called == ["task_abort"]


def test_firing_an_event_without_hooks_does_nothing() -> None:
    """An event nobody hooked fires without error."""
    Hooks().fire(HookEvent.RESILIENCE_START, task_id="t1")


def test_an_unknown_event_name_is_refused_listing_the_events() -> None:
    """Registering for a name that is no event raises ValueError naming every event."""
    hooks = Hooks()

    with pytest.raises(ValueError, match="'batch_ended' is not a hook event") as caught:
        hooks.on("batch_ended", lambda **_: None)

    for event in HookEvent:
        assert event.value in str(caught.value)


def test_a_raising_hook_becomes_a_hook_error_naming_hook_and_event() -> None:
    """A hook's exception surfaces as HookError with the hook, event and original message."""
    hooks = Hooks()
    original = RuntimeError("disk full")

    def save_checkpoint(**_: object) -> None:
        raise original

    hooks.on(HookEvent.TASK_START, save_checkpoint)

    with pytest.raises(HookError) as caught:
        hooks.fire(HookEvent.TASK_START, task_id="t1")

    message = str(caught.value)
    assert "save_checkpoint" in message
    assert "task_start" in message
    assert "RuntimeError: disk full" in message
    assert caught.value.__cause__ is original
    assert isinstance(caught.value, TaskError)


def test_a_raising_hook_stops_the_later_hooks() -> None:
    """Hooks after the one that raised are not called: the error ends the firing."""
    hooks = Hooks()
    called: list[str] = []

    def boom(**_: object) -> None:
        raise KeyError("missing")

    hooks.on(HookEvent.BATCH_START, lambda **_: called.append("before"))
    hooks.on(HookEvent.BATCH_START, boom)
    hooks.on(HookEvent.BATCH_START, lambda **_: called.append("after"))

    with pytest.raises(HookError, match="boom"):
        hooks.fire(HookEvent.BATCH_START, batch=0)
    assert called == ["before"]


def test_a_hook_that_rejects_the_info_is_a_hook_error() -> None:
    """A hook whose signature does not take the fired keywords fails as a HookError."""
    hooks = Hooks()

    def strict(*, task_id: str) -> None:
        """Takes only ``task_id``."""

    hooks.on(HookEvent.TASK_END, strict)

    with pytest.raises(HookError) as caught:
        hooks.fire(HookEvent.TASK_END, task_id="t1", pod="alice/census")
    assert isinstance(caught.value.__cause__, TypeError)
