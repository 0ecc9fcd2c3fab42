"""Error helpers and value checks shared by the config models.

Checks return or raise pydantic errors with a location relative to the value checked;
pydantic prefixes the field path, so the loader can point at the exact YAML line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.data.schema import SemanticType
from podium.data.sources.registry import SOURCE_TYPES

#: Pod and datasource names: lower-case letters and digits, words joined by single hyphens.
POD_NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

#: The semantic types a column can be forced to with ``force_stypes``.
SEMANTIC_TYPES: tuple[str, ...] = tuple(stype.value for stype in SemanticType)

#: Error type of a datasource type name that Podium does not know; the loader turns it
#: into :class:`~podium.core.errors.UnknownDataSourceError`.
UNKNOWN_DATASOURCE = "unknown_datasource"

#: Error type of every other rule checked here (the message says what and how to fix).
CONFIG_RULE = "podium_config"

Loc = tuple[str | int, ...]


def problem(loc: Loc, message: str, *, kind: str = CONFIG_RULE) -> InitErrorDetails:
    # The message travels in the context so that braces in it are never treated as a template.
    error = PydanticCustomError(kind, "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=loc, input=None)


def fail(problems: Sequence[InitErrorDetails]) -> ValidationError:
    """An error that pydantic re-locates under the field or model being validated."""
    return ValidationError.from_exception_data("config", list(problems))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def valid_name(value: str, *, what: str = "pod") -> str:
    """Return ``value`` if it is a valid pod or datasource name, else raise a clear error."""
    if POD_NAME_PATTERN.fullmatch(value):
        return value
    suggestion = "-".join(re.findall(r"[a-z0-9]+", value.lower()))
    hint = f" Try {suggestion!r}." if suggestion else ""
    raise PydanticCustomError(
        CONFIG_RULE,
        "{message}",
        {
            "message": f"{value!r} is not a valid {what} name: use lower-case letters, digits "
            f"and single hyphens between words (no underscores or spaces).{hint}"
        },
    )


def known_source_type(value: str) -> str:
    """Return the bare type name (``bitfount.CSVSource`` -> ``CSVSource``) of a known source."""
    bare = value.removeprefix("bitfount.")
    if bare in SOURCE_TYPES:
        return bare
    known = sorted(SOURCE_TYPES)
    raise PydanticCustomError(
        UNKNOWN_DATASOURCE,
        "{message}",
        {
            "message": f"unknown datasource type {value!r}.{did_you_mean(bare, known)} "
            f"Podium knows: {', '.join(known)} (a 'bitfount.' prefix is accepted)."
        },
    )


def _stype_problems(loc: Loc, mapping: object) -> list[InitErrorDetails]:
    """Problems of one ``{stype: [columns]}`` mapping."""
    if not isinstance(mapping, Mapping):
        return [problem(loc, "expected a mapping of semantic type to a list of columns.")]
    problems = []
    first_seen: dict[str, str] = {}
    for stype, columns in mapping.items():
        if stype not in SEMANTIC_TYPES:
            problems.append(
                problem(
                    (*loc, str(stype)),
                    f"{stype!r} is not a semantic type.{did_you_mean(str(stype), SEMANTIC_TYPES)}"
                    f" Use one of: {', '.join(SEMANTIC_TYPES)}.",
                )
            )
        elif not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            problems.append(
                problem(
                    (*loc, stype),
                    f"expected a list of column names, got {columns!r}. Write it as "
                    f'[col1, col2] and quote names that look like numbers ("2020").',
                )
            )
        else:
            for index, column in enumerate(columns):
                if column in first_seen:
                    problems.append(
                        problem(
                            (*loc, stype, index),
                            f"column {column!r} is also listed under {first_seen[column]}; "
                            f"list each column under one semantic type only.",
                        )
                    )
                first_seen.setdefault(column, stype)
    return problems


def force_stypes_problems(value: object) -> list[InitErrorDetails]:
    """Problems of a ``force_stypes`` value in either form, located inside it."""
    if not isinstance(value, Mapping):
        return [
            problem((), "expected {stype: [columns]} or {datasource_name: {stype: [columns]}}.")
        ]
    nested = [key for key, inner in value.items() if isinstance(inner, Mapping)]
    if not nested:
        return _stype_problems((), value)
    if len(nested) < len(value):
        return [
            problem(
                (key,),
                "force_stypes mixes its two forms: use either {stype: [columns]} or "
                "{datasource_name: {stype: [columns]}} throughout.",
            )
            for key in sorted(str(key) for key in value if key not in nested)
        ]
    return [p for key in nested for p in _stype_problems((key,), value[key])]


def column_description_problems(value: object) -> list[InitErrorDetails]:
    """Problems of a ``column_descriptions`` value: ``{col: text}`` or ``{name: {col: text}}``."""
    if not isinstance(value, Mapping):
        return [problem((), "expected {column: description}.")]
    problems = []
    for key, inner in value.items():
        if isinstance(inner, Mapping):
            problems += [
                problem((key, col), "a description must be text.")
                for col, text in inner.items()
                if not isinstance(text, str)
            ]
        elif not isinstance(inner, str):
            problems.append(
                problem((key,), "expected a description (text) or {column: description}.")
            )
    return problems
