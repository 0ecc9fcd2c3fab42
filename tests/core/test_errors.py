"""The error tree and its exit codes."""

from __future__ import annotations

import inspect

from podium.core import errors
from podium.core.errors import ExitCode, PodiumError


def _leaves() -> list[type[PodiumError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, PodiumError)
    ]


def test_every_error_is_documented_in_the_module_tree() -> None:
    """Each PodiumError class appears in the tree drawn in the module docstring."""
    doc = errors.__doc__ or ""
    missing = [cls.__name__ for cls in _leaves() if cls.__name__ not in doc]
    assert missing == []


def test_every_error_maps_to_a_documented_exit_code() -> None:
    """Every error carries an ExitCode; only the base maps to the internal-error code."""
    for cls in _leaves():
        assert isinstance(cls.exit_code, ExitCode)
        if cls is not PodiumError:
            assert cls.exit_code != ExitCode.INTERNAL, cls.__name__
