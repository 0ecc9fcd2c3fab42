"""Reading a task definition's ``arguments`` into typed settings, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from podium.core.errors import TaskDefinitionError

__all__ = ["Arguments", "no_arguments", "parse_arguments"]

M = TypeVar("M", bound="Arguments")


class Arguments(BaseModel):
    """Base of an algorithm's or protocol's arguments: unknown keys are errors, and
    values are not coerced (``"5"`` is not a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def parse_arguments(owner: str, model: type[M], arguments: Mapping[str, Any]) -> M:
    """``arguments`` as ``model``.

    Raises:
        TaskDefinitionError: One line per problem, naming the argument and the fix.
    """
    if not isinstance(arguments, Mapping):
        raise TaskDefinitionError(f"{owner}: 'arguments' must be a mapping")
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as error:
        known = ", ".join(model.model_fields) or "none"
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "arguments"
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = f"not an argument of {owner} (known: {known})"
            problems.append(f"{owner}: argument {where!r}: {message}")
        raise TaskDefinitionError("; ".join(problems)) from None


def no_arguments(owner: str, arguments: Mapping[str, Any]) -> None:
    """Refuse any argument: ``owner`` takes none."""
    if arguments:
        raise TaskDefinitionError(
            f"{owner} takes no arguments; remove {', '.join(sorted(map(str, arguments)))}"
        )
