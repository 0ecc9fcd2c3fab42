"""The modeller's task config: Bitfount's "modeller config" YAML, read into Podium's task.

A task file names the pods to ask and the task to run on them::

    pods:
      identifiers: [alice/census-a, alice/census-b]
    modeller: {username: bob}             # optional; else the saved login
    hub: {url: http://127.0.0.1:8000}     # optional; else the saved login's hub
    project_id: proj-1                    # optional (pods.project_id is accepted too)
    run_on_new_data_only: false
    batched_execution: null
    test_run: false
    force_rerun_failed_files: true
    require_all_pods: false               # Podium's addition
    task:
      protocol: {name: bitfount.ResultsOnly}
      algorithm:                          # one mapping or a list of them
        name: bitfount.SqlQuery
        arguments: {query: SELECT COUNT(*) AS n FROM "census-income"}

:meth:`TaskConfig.task_definition` gives the canonical task dict that is signed and hashed,
and :meth:`TaskConfig.run_options` the options of the run. Names lose their ``bitfount.``
prefix. Keys of Bitfount's own services are refused, like in the pod config, with a note
on what to do in Podium; every other unknown key is an error with a did-you-mean.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.config._rules import CONFIG_RULE, fail, problem
from podium.config.loader import (
    YamlDocument,
    _read_document,
    validate_config,
    validate_document,
)
from podium.config.models import HubConfig, _Model
from podium.core.crypto.encoding import MAX_DEPTH
from podium.core.errors import TaskDefinitionError
from podium.core.names import is_valid_name

__all__ = [
    "ModellerConfig",
    "NamedConfig",
    "PodsConfig",
    "RunOptions",
    "TaskConfig",
    "TaskSpec",
    "load_task_config",
    "normalise_name",
    "task_config_from_dict",
]

logger = logging.getLogger("podium.config.task")

Loc = tuple[str | int, ...]

_BITFOUNT_PREFIX = "bitfount."
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: How deep an algorithm's or protocol's ``arguments`` mapping sits in the task definition
#: (definition > algorithm > [i] > arguments), for the canonical encoding's depth limit.
_ARGUMENTS_DEPTH = 3

#: Keys of Bitfount's own services that a task file may carry, by where they sit (the
#: pod config's ``message_service`` and ``access_manager`` notes come from the loader).
_BITFOUNT_TOP = {
    "secrets": "A task file holds no credentials in Podium: the modeller runs as the saved "
    "login (podium login) or modeller.username; remove secrets.",
}
_BITFOUNT_MODELLER = {
    "identity_verification_method": "Podium signs every task with the modeller's own key "
    "pair, kept on this machine; remove it.",
    "private_key_file": "Podium creates and keeps the modeller's keys itself (under "
    "PODIUM_HOME); remove it.",
}


def normalise_name(name: str) -> str:
    """``name`` without surrounding spaces and without Bitfount's ``bitfount.`` prefix (in
    any case): ``bitfount.SqlQuery`` -> ``SqlQuery``."""
    bare = name.strip()
    if bare[: len(_BITFOUNT_PREFIX)].lower() == _BITFOUNT_PREFIX:
        bare = bare[len(_BITFOUNT_PREFIX) :]
    return bare


def _rule_error(message: str) -> PydanticCustomError:
    return PydanticCustomError(CONFIG_RULE, "{message}", {"message": message})


def _bitfount_key_problems(data: Mapping[str, Any], notes: Mapping[str, str]) -> None:
    """Refuse the Bitfount-only keys of ``data``, each with its note."""
    problems = [
        problem((key,), f"unknown key {key!r}: it belongs to Bitfount's service. {note}")
        for key, note in notes.items()
        if key in data
    ]
    if problems:
        raise fail(problems)


# -- JSON-like values -------------------------------------------------------------------


def _json_problems(value: object, loc: Loc, depth: int) -> list[InitErrorDetails]:
    """Problems of a value that the canonical JSON of a task cannot hold, located inside it."""
    if depth > MAX_DEPTH:
        return [problem(loc, f"nested deeper than {MAX_DEPTH} levels; flatten it.")]
    if value is None or isinstance(value, str | bool | int):
        return []
    if isinstance(value, float):
        return [] if math.isfinite(value) else [problem(loc, _not_finite(value))]
    if isinstance(value, dict):
        return _mapping_problems(value, loc, depth)
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _json_problems(v, (*loc, i), depth + 1)]
    return [problem(loc, _not_json(value))]


def _mapping_problems(value: dict[Any, Any], loc: Loc, depth: int) -> list[InitErrorDetails]:
    found: list[InitErrorDetails] = []
    for key, item in value.items():
        if not isinstance(key, str):
            found.append(
                problem((*loc, str(key)), f"the key {key!r} is not text; quote it: '{key}'.")
            )
        found += _json_problems(item, (*loc, str(key)), depth + 1)
    return found


def _not_finite(value: float) -> str:
    return (
        f"{value!r} cannot go into a task (it is signed as JSON, which has no NaN or "
        f"infinity); use a finite number or null."
    )


def _not_json(value: object) -> str:
    if isinstance(value, datetime.date):
        return (
            f"{value.isoformat()} was read as a {type(value).__name__} (YAML reads an "
            f"unquoted date that way), which a task cannot hold; quote it to send text: "
            f"'{value.isoformat()}'."
        )
    kind = type(value).__name__
    return (
        f"a {kind} cannot go into a task: use text, numbers, true/false, null, lists and "
        f"mappings only."
    )


def _check_json_mapping(value: dict[str, Any] | None, *, depth: int) -> dict[str, Any] | None:
    if value is None:
        return None
    problems = _json_problems(value, (), depth)
    if problems:
        raise fail(problems)
    return value


# -- the models -------------------------------------------------------------------------


class _TaskModel(_Model):
    """The pod config's settings (unknown keys are errors, null means the default), frozen."""

    model_config = ConfigDict(frozen=True)


class NamedConfig(_TaskModel):
    """A protocol or an algorithm: its name and its arguments."""

    name: str
    """The name, such as ``SqlQuery`` (``bitfount.SqlQuery`` is accepted and stored bare)."""

    arguments: dict[str, Any] = Field(default_factory=dict)
    """Its arguments: text, numbers, true/false, null, lists and mappings only."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        bare = normalise_name(value)
        if not bare:
            raise _rule_error("the name is empty; give one, such as SqlQuery.")
        if not _NAME.fullmatch(bare):
            raise _rule_error(
                f"{value!r} is not a valid name: use letters, digits and underscores, not "
                f"starting with a digit, such as SqlQuery (a 'bitfount.' prefix is accepted)."
            )
        return bare

    @field_validator("arguments")
    @classmethod
    def _check_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json_mapping(value, depth=_ARGUMENTS_DEPTH)
        return value

    def definition(self) -> dict[str, Any]:
        """``{"name", "arguments"}`` as plain data (a copy)."""
        return {"name": self.name, "arguments": copy.deepcopy(self.arguments)}


class TaskSpec(_TaskModel):
    """What runs on each pod: a protocol, its algorithms and, where needed, a model."""

    protocol: NamedConfig
    """The protocol, such as ``ResultsOnly`` or ``FederatedAveraging``."""

    algorithm: list[NamedConfig]
    """The algorithms, in order; one mapping is read as a list of one."""

    data_structure: dict[str, Any] | None = None
    """Which tables and columns the task uses (``table_config``, ``select``, ...), as given."""

    aggregator: dict[str, Any] | None = None
    """How results are combined (``{secure: true}`` for secure aggregation), as given."""

    model: dict[str, Any] | None = None
    """The model to train, evaluate or run, as given."""

    @field_validator("algorithm", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return [value]
        if isinstance(value, list) and not value:
            raise _rule_error("the list is empty; add at least one algorithm ({name: ...}).")
        return value

    @field_validator("data_structure", "aggregator", "model")
    @classmethod
    def _check_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_json_mapping(value, depth=1)


class PodsConfig(_TaskModel):
    """The pods the task is sent to."""

    identifiers: list[str]
    """Each pod as ``<owner>/<pod>``, such as ``alice/census-income``; each once."""

    project_id: str | None = None
    """Bitfount's place for the project id (the top-level ``project_id`` is the same)."""

    @field_validator("identifiers")
    @classmethod
    def _check_identifiers(cls, value: list[str]) -> list[str]:
        if not value:
            raise _rule_error(
                "the list is empty; add the pods to ask, such as [alice/census-income]."
            )
        first: dict[str, int] = {}
        problems = []
        for index, identifier in enumerate(value):
            if not _is_pod_id(identifier):
                problems.append(problem((index,), _bad_pod_id(identifier)))
            elif identifier in first:
                problems.append(
                    problem(
                        (index,),
                        f"{identifier!r} is already listed as pods.identifiers"
                        f"[{first[identifier]}]; list each pod once.",
                    )
                )
            first.setdefault(identifier, index)
        if problems:
            raise fail(problems)
        return value

    @field_validator("project_id")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        return None if value is None else _valid_project(value)


def _is_pod_id(identifier: str) -> bool:
    owner, slash, pod = identifier.partition("/")
    return bool(slash) and is_valid_name(owner) and is_valid_name(pod)


def _bad_pod_id(identifier: str) -> str:
    hint = ""
    if "/" not in identifier:
        hint = f" Add its owner: <owner>/{identifier}."
    return (
        f"{identifier!r} is not a pod identifier: write <owner>/<pod>, such as "
        f"alice/census-income, each part lower-case letters, digits, '_' and '-'.{hint}"
    )


def _valid_project(value: str) -> str:
    if is_valid_name(value):
        return value
    raise _rule_error(
        f"{value!r} is not a project id: use 1 to 63 lower-case letters, digits, '_' and "
        f"'-', starting with a letter or digit."
    )


class ModellerConfig(_TaskModel):
    """Who runs the task."""

    username: str | None = None
    """The hub user the modeller runs as; ``None`` means the saved login's user."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_bitfount_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            _bitfount_key_problems(data, _BITFOUNT_MODELLER)
        return data

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str | None) -> str | None:
        if value is None or is_valid_name(value):
            return value
        raise _rule_error(
            f"{value!r} is not a user name: use lower-case letters, digits, '_' and '-'."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run a task (Bitfount's run options, plus Podium's timeouts).

    Attributes:
        require_all_pods: Fail with ``PodResponseError`` if a pod refuses or is offline.
        run_on_new_data_only: Only files new or changed since this task last ran on the
            pod; a pod with none aborts with ``NO_NEW_DATA``.
        project_id: The project the task runs under (its grants and approvals).
        batched_execution: Stream the data in batches (True), in one pass (False), or as
            the algorithms prefer (None: batches when every algorithm can take them).
        test_run: A few records only (100 per source).
        force_rerun_failed_files: Retry files that failed in an earlier run of the task.
        batch_rows: Rows per batch in batched execution.
        max_consecutive_failures: Batches in a row that may fail before the task aborts.
        answer_timeout_s: Seconds to wait for each pod to accept or refuse.
        idle_timeout_s: Seconds of silence before a party checks its peer is online.
    """

    require_all_pods: bool = False
    run_on_new_data_only: bool = False
    project_id: str | None = None
    batched_execution: bool | None = None
    test_run: bool = False
    force_rerun_failed_files: bool = True
    batch_rows: int = 100_000
    max_consecutive_failures: int = 3
    answer_timeout_s: float = 30.0
    idle_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_rows <= 100_000_000:
            raise ValueError("batch_rows must be between 1 and 100,000,000")
        if not 1 <= self.max_consecutive_failures <= 1_000_000:
            raise ValueError("max_consecutive_failures must be between 1 and 1,000,000")
        for name in ("answer_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 86_400):
                raise ValueError(f"{name} must be above 0 and at most a day (86400)")

    def wire(self) -> dict[str, Any]:
        """The options a pod must know, as they travel inside the signed task."""
        return {
            "run_on_new_data_only": self.run_on_new_data_only,
            "batched_execution": self.batched_execution,
            "test_run": self.test_run,
            "force_rerun_failed_files": self.force_rerun_failed_files,
            "batch_rows": self.batch_rows,
            "max_consecutive_failures": self.max_consecutive_failures,
            "idle_timeout_s": self.idle_timeout_s,
        }

    @classmethod
    def from_wire(cls, data: object) -> RunOptions:
        """The options of a signed task's ``run`` section (missing keys: defaults), checked
        strictly: it came from a modeller.

        Raises:
            TaskDefinitionError: Not a mapping, an unknown option, a value of the wrong
                type, not finite or out of range.
        """
        if not isinstance(data, Mapping):
            raise TaskDefinitionError("the task's 'run' options must be a mapping")
        unknown = sorted(set(data) - _WIRE_TYPES.keys())
        if unknown:
            raise TaskDefinitionError(f"unknown run options: {', '.join(map(str, unknown))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            kinds = _WIRE_TYPES[name]
            if type(value) not in kinds or (isinstance(value, float) and not math.isfinite(value)):
                wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
                raise TaskDefinitionError(f"run option {name!r} must be {wanted}, not {value!r}")
            values[name] = value
        try:
            return cls(**values)
        except ValueError as error:
            raise TaskDefinitionError(f"run options: {error}") from None


#: The run options a signed task carries, and the Python types each accepts.
_WIRE_TYPES: dict[str, tuple[type, ...]] = {
    "run_on_new_data_only": (bool,),
    "batched_execution": (bool, type(None)),
    "test_run": (bool,),
    "force_rerun_failed_files": (bool,),
    "batch_rows": (int,),
    "max_consecutive_failures": (int,),
    "idle_timeout_s": (int, float),
}


class TaskConfig(_TaskModel):
    """A whole task file, as read by ``podium run-task TASK.yaml``."""

    pods: PodsConfig
    """The pods to send the task to."""

    task: TaskSpec
    """The task itself."""

    modeller: ModellerConfig | None = None
    """Who runs it; ``None`` means the saved login."""

    hub: HubConfig | None = None
    """The hub to go through; ``None`` means the saved login's hub."""

    project_id: str | None = None
    """The project the task runs under (or ``pods.project_id``)."""

    run_on_new_data_only: bool = False
    """Run only on records the pods have not processed for this task before."""

    batched_execution: bool | None = None
    """Run in batches, in one pass, or (``null``) as each pod decides."""

    test_run: bool = False
    """Run on a few records only."""

    force_rerun_failed_files: bool = True
    """Run again on files that failed in an earlier run."""

    require_all_pods: bool = False
    """Podium's addition: fail if any pod rejects the task or does not answer."""

    version: str | None = None
    """The config format version, if the file states one (not used)."""

    @model_validator(mode="before")
    @classmethod
    def _accept_bitfount_shapes(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        _bitfount_key_problems(data, _BITFOUNT_TOP)
        version = data.get("version")
        if isinstance(version, int | float) and not isinstance(version, bool):
            data = {**data, "version": str(version)}
        return data

    @field_validator("project_id")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        return None if value is None else _valid_project(value)

    @field_validator("hub")
    @classmethod
    def _refuse_bitfount_hub(cls, value: HubConfig | None) -> HubConfig | None:
        if value is None:
            return None
        host = (urlsplit(value.url).hostname or "").lower()
        if host == "bitfount.com" or host.endswith(".bitfount.com"):
            raise fail(
                [
                    problem(
                        ("url",),
                        f"{value.url} is Bitfount's hub; Podium needs a Podium hub. Set "
                        f"hub.url to yours (such as http://127.0.0.1:8000), or remove hub "
                        f"to use the hub of your saved login.",
                    )
                ]
            )
        return value

    @model_validator(mode="after")
    def _check_one_project(self) -> Self:
        inner = self.pods.project_id
        if inner is not None and self.project_id is not None and inner != self.project_id:
            raise fail(
                [
                    problem(
                        ("pods", "project_id"),
                        f"pods.project_id is {inner!r} but project_id is "
                        f"{self.project_id!r}; give the project once.",
                    )
                ]
            )
        return self

    @property
    def project(self) -> str | None:
        """The project id, from ``project_id`` or ``pods.project_id``."""
        return self.project_id if self.project_id is not None else self.pods.project_id

    def run_options(self) -> RunOptions:
        """The options of the run (everything but the task and where it goes)."""
        return RunOptions(
            require_all_pods=self.require_all_pods,
            run_on_new_data_only=self.run_on_new_data_only,
            project_id=self.project,
            batched_execution=self.batched_execution,
            test_run=self.test_run,
            force_rerun_failed_files=self.force_rerun_failed_files,
        )

    def task_definition(self) -> dict[str, Any]:
        """Podium's canonical task dict (plain JSON-like data, a fresh copy each call):
        ``protocol``, ``algorithm`` (a list), ``pods`` (sorted), and ``data_structure``,
        ``aggregator``, ``model`` and ``project_id`` when given."""
        task = self.task
        definition: dict[str, Any] = {
            "protocol": task.protocol.definition(),
            "algorithm": [algorithm.definition() for algorithm in task.algorithm],
            "pods": sorted(self.pods.identifiers),
        }
        extras = {
            "data_structure": task.data_structure,
            "aggregator": task.aggregator,
            "model": task.model,
            "project_id": self.project,
        }
        for key, value in extras.items():
            if value is not None:
                definition[key] = copy.deepcopy(value)
        return definition


# -- entry points -----------------------------------------------------------------------


def load_task_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> TaskConfig:
    """Load and validate a task YAML file (Bitfount's modeller config format).

    Args:
        path: The YAML file.
        environ: Variables for ``${VAR}``; ``os.environ`` when not given.

    Raises:
        ConfigFileError: The file is missing, unreadable, not YAML or not a mapping.
        UnsetVariableError: A ``${VAR}`` names a variable that is not set.
        ConfigValidationError: Wrong types, missing or unknown keys, broken rules.
    """
    doc = _read_document(path, os.environ if environ is None else environ)
    _index_single_algorithm(doc)
    config = validate_document(TaskConfig, doc.data, doc)
    logger.debug("loaded task config for %d pods from %s", len(config.pods.identifiers), path)
    return config


def _index_single_algorithm(doc: YamlDocument) -> None:
    """Give a lone algorithm mapping the lines of the list of one it is read as, so that
    errors inside it (``task.algorithm[0]...``) point at its lines in the file."""
    task = doc.data.get("task")
    if not isinstance(task, Mapping) or not isinstance(task.get("algorithm"), Mapping):
        return
    root = ("task", "algorithm")
    inside = [loc for loc in doc.lines if loc[:2] == root and len(loc) > len(root)]
    for loc in inside:
        doc.lines[(*root, 0, *loc[2:])] = doc.lines[loc]


def task_config_from_dict(data: Mapping[str, Any], *, source: str = "<task>") -> TaskConfig:
    """Validate a task config given as plain data (no ``${VAR}`` expansion).

    Args:
        data: The config, shaped like the YAML file.
        source: What to call it in error messages.

    Raises:
        ConfigValidationError: Wrong types, missing or unknown keys, broken rules.
    """
    return validate_config(TaskConfig, data, source=source)
