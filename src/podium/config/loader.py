"""Read configuration YAML: safe parsing, ``${VAR}`` expansion and readable errors.

Expansion runs on string values after parsing, so an error can name the field it is in:

- ``${NAME}`` is replaced by the variable's value; an unset variable is an error.
- ``${NAME:-default}`` uses ``default`` when the variable is unset or empty. The default
  is literal text up to the first ``}``.
- ``$${`` stands for a literal ``${``. A ``$`` not followed by ``{`` is kept as it is.

Keys are never expanded, and an expanded value is not scanned again.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from podium.config._rules import UNKNOWN_DATASOURCE
from podium.config.models import PodConfig
from podium.core.errors import (
    ConfigFileError,
    ConfigValidationError,
    UnknownDataSourceError,
    UnsetVariableError,
)

__all__ = [
    "YamlDocument",
    "expand_variables",
    "format_path",
    "load_pod_config",
    "load_yaml",
    "parse_yaml_document",
    "read_config_text",
    "validate_config",
    "validate_document",
]

logger = logging.getLogger("podium.config.loader")

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]

_REFERENCE = re.compile(r"\$\$\{|\$\{")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_INPUT_SHOWN = 60
#: More keys and items than any real config has; guards against alias bombs.
_MAX_ENTRIES = 100_000

#: Bitfount keys that have no Podium equivalent, with what to do instead.
_BITFOUNT_ONLY = {
    "access_manager": "Podium's hub is also the access manager: set hub.url only.",
    "message_service": "Podium's hub also relays messages: set hub.url only.",
    "file_system_filters": "Podium does not filter files by date or size yet; remove it.",
}


# -- ${VAR} expansion -------------------------------------------------------------------


def expand_variables(text: str, environ: Mapping[str, str], *, where: str = "value") -> str:
    """Expand ``${NAME}``, ``${NAME:-default}`` and ``$${`` in one string.

    Args:
        text: The string to expand.
        environ: The variables (the loaders pass ``os.environ`` by default).
        where: Where the string is (file, line, field path), for error messages.

    Raises:
        UnsetVariableError: ``${NAME}`` names a variable that is not set.
        ConfigValidationError: A ``${`` without its ``}`` or with an invalid name.
    """
    parts: list[str] = []
    pos = 0
    while (match := _REFERENCE.search(text, pos)) is not None:
        parts.append(text[pos : match.start()])
        if match.group() == "$${":
            parts.append("${")
            pos = match.end()
            continue
        end = text.find("}", match.end())
        if end < 0:
            raise ConfigValidationError(
                f"{where}: '${{' without a closing '}}'. Close the reference (${{NAME}}) "
                f"or write '$${{' for a literal '${{'."
            )
        parts.append(_lookup(text[match.end() : end], environ, where))
        pos = end + 1
    parts.append(text[pos:])
    return "".join(parts)


def _lookup(body: str, environ: Mapping[str, str], where: str) -> str:
    name, has_default, default = body.partition(":-")
    if not _VARIABLE_NAME.fullmatch(name):
        raise ConfigValidationError(
            f"{where}: '${{{body}}}' is not a variable reference: a name is letters, digits "
            f"and underscores, not starting with a digit. Write '$${{' for a literal '${{'."
        )
    value = environ.get(name)
    if has_default and not value:
        return default
    if value is None:
        raise UnsetVariableError(
            f"{where}: environment variable {name} is not set. Set it (export {name}=...) "
            f"or give a default: ${{{name}:-default}}."
        )
    return value


def _expand_tree(data: Any, loc: Loc, environ: Mapping[str, str], doc: YamlDocument) -> Any:
    if isinstance(data, str):
        return expand_variables(data, environ, where=doc.where(loc)) if "$" in data else data
    if isinstance(data, dict):
        return {key: _expand_tree(value, (*loc, key), environ, doc) for key, value in data.items()}
    if isinstance(data, list):
        return [_expand_tree(item, (*loc, i), environ, doc) for i, item in enumerate(data)]
    return data


# -- reading YAML -----------------------------------------------------------------------


@dataclass
class YamlDocument:
    """A parsed YAML file with the line of every key and list item."""

    source: str | None
    data: Any = None
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of ``loc`` or of its nearest ancestor in the file; 0 if unknown."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 0

    def where(self, loc: Loc) -> str:
        """``file:line: field.path`` for a location (without the line if it is unknown)."""
        if self.source is None:
            return format_path(loc)
        line = self.line(loc)
        at = f"{self.source}:{line}" if line else self.source
        return f"{at}: {format_path(loc)}"


def format_path(loc: Sequence[str | int]) -> str:
    """Write a location as a field path: ``datasources[1].data_config.ignore_cols[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigFileError(
            f"{path}: no such file. Check the path (a relative path is relative to the "
            f"current folder, {Path.cwd()})."
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigFileError(
            f"{path} is a folder, not a YAML file. Give the config file itself, for "
            f"example {path / 'config.yaml'}."
        ) from exc
    except PermissionError as exc:
        raise ConfigFileError(
            f"{path}: permission denied. Make the file readable by this user."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            f"{path}: not UTF-8 text (byte {exc.start}). Save the config as UTF-8."
        ) from exc
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc.strerror}).") from exc


def parse_yaml_document(text: str, source: str) -> YamlDocument:
    # SafeLoader is what yaml.safe_load uses; driving it by hand keeps the node tree (for
    # line numbers and duplicate keys) without a second parse. It builds only plain data.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(source)
        if node is not None:
            _index_node(node, (), doc, set())
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or "cannot parse"
        if exc.context:
            start = exc.context_mark
            began = f" (line {start.line + 1}, column {start.column + 1})" if start else ""
            problem = f"{exc.context}{began}: {problem}"
        raise ConfigFileError(
            f"{at}: invalid YAML: {problem}. Check the indentation, colons and quotes "
            f"around that line."
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{source}: invalid YAML: {exc}.") from exc
    finally:
        loader.dispose()
    return doc


def _index_node(node: yaml.Node, loc: Loc, doc: YamlDocument, active: set[int]) -> None:
    """Record the line of every key and item, and reject duplicate keys and cycles."""
    if id(node) in active:
        raise ConfigFileError(
            f"{doc.source}:{node.start_mark.line + 1}: {format_path(loc)} refers to itself "
            f"through a YAML alias. Write the value out instead."
        )
    if len(doc.lines) > _MAX_ENTRIES:
        raise ConfigFileError(
            f"{doc.source}: more than {_MAX_ENTRIES} keys and items (YAML aliases repeated "
            f"too often?). Write the config out plainly."
        )
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                raise ConfigFileError(
                    f"{doc.source}:{line}: {format_path((*loc, key))} is given twice (first "
                    f"on line {seen[key]}). Keep one of them."
                )
            seen[key] = line
            doc.lines[(*loc, key)] = line
            _index_node(value_node, (*loc, key), doc, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*loc, index)] = item.start_mark.line + 1
            _index_node(item, (*loc, index), doc, active)
    active.discard(id(node))


def _read_document(path: str | os.PathLike[str], environ: Mapping[str, str]) -> YamlDocument:
    file = Path(path)
    doc = parse_yaml_document(read_config_text(file), str(file))
    if not isinstance(doc.data, dict):
        found = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
        raise ConfigFileError(
            f"{file}: the top level must be a mapping of keys (such as name: ...), found {found}."
        )
    doc.data = _expand_tree(doc.data, (), environ, doc)
    return doc


def load_yaml(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read a YAML config file whose top level is a mapping, with ``${VAR}`` expanded.

    Args:
        path: The file.
        environ: Variables for ``${VAR}``; ``os.environ`` when not given.

    Raises:
        ConfigFileError: The file is missing, unreadable, not YAML or not a mapping.
        UnsetVariableError: A ``${VAR}`` names a variable that is not set.
    """
    data: dict[str, Any] = _read_document(path, os.environ if environ is None else environ).data
    return data


# -- validation -------------------------------------------------------------------------


def validate_config(
    model: type[M], data: Mapping[str, Any], *, source: str | os.PathLike[str] | None = None
) -> M:
    """Validate plain data against a config model, with one readable error for all problems.

    Raises:
        ConfigValidationError: Wrong types, missing or unknown keys, broken rules.
        UnknownDataSourceError: A datasource type Podium does not know.
    """
    return validate_document(
        model, data, YamlDocument(None if source is None else os.fspath(source))
    )


def validate_document(model: type[M], data: Mapping[str, Any], doc: YamlDocument) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: doc.line(e["loc"]))
        problems = [f"  {doc.where(e['loc'])}: {_describe(e, model)}" for e in errors]
        count = len(problems)
        prefix = "" if doc.source is None else f"{doc.source}: "
        message = (
            f"{prefix}{count} problem{'s' if count > 1 else ''} in the {model.__name__}:\n"
            + "\n".join(problems)
        )
        if any(e["type"] == UNKNOWN_DATASOURCE for e in exc.errors()):
            raise UnknownDataSourceError(message) from exc
        raise ConfigValidationError(message) from exc


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        parts = [f"unknown key {key!r}."]
        if close:
            parts.append(f"Did you mean {close[0]!r}?")
        if key in _BITFOUNT_ONLY:
            parts.append(_BITFOUNT_ONLY[key])
        if known:
            parts.append(f"Known keys here: {', '.join(known)}.")
        return " ".join(parts)
    if kind == "missing":
        parent = format_path(loc[:-1])
        return f"required key {loc[-1]!r} is missing; add it" + (
            f" under {parent}." if loc[:-1] else " at the top level."
        )
    if "ctx" in error and "message" in error["ctx"]:
        return str(error["ctx"]["message"])
    if "secrets" in loc:  # never echo credentials
        return f"{error['msg']} (value hidden)."
    shown = _show(error["input"])
    hint = ""
    if kind == "string_type" and isinstance(error["input"], int | float):
        hint = f" Quote it in YAML to make it text: '{error['input']}'."
    return f"{error['msg']}, got {shown}.{hint}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_INPUT_SHOWN else text[: _MAX_INPUT_SHOWN - 3] + "..."


def _known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` (a path to a mapping) inside ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            if part not in fields:
                return []
            current = fields[str(part)].annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or n for n, f in current.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def load_pod_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> PodConfig:
    """Load and validate a pod config YAML file (both the single and multi-source forms).

    Args:
        path: The YAML file. Relative paths inside it are relative to its folder.
        environ: Variables for ``${VAR}``; ``os.environ`` when not given.

    Raises:
        ConfigFileError: The file is missing, unreadable, not YAML or not a mapping.
        UnsetVariableError: A ``${VAR}`` names a variable that is not set.
        ConfigValidationError: Wrong types, missing or unknown keys, broken rules.
        UnknownDataSourceError: A datasource type Podium does not know.
    """
    doc = _read_document(path, os.environ if environ is None else environ)
    config = validate_document(PodConfig, doc.data, doc)
    config._source_path = Path(path).resolve()  # set once, by its loader
    logger.debug("loaded pod config %s from %s", config.name, path)
    return config
