"""The pydantic model of a pod's local policy file (see :mod:`podium.pod.policy`).

Every model forbids unknown keys. Errors raised here carry their message in the context
(``{message}``), so the config loader prints them as written, located at the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from podium.core.names import is_valid_name

__all__ = ["ROLE_NAMES", "DPCaps", "PodPolicy", "PolicyRole", "normalise_name"]

#: A role of the hub's access manager (``podium.hub.access.ROLES``; a test keeps the two
#: in step without the pod importing the hub).
PolicyRole = Literal[
    "viewer", "sql", "private-sql", "statistics", "psi", "train", "evaluate", "infer", "admin"
]
#: The role names, in the order of :data:`PolicyRole`.
ROLE_NAMES: tuple[str, ...] = get_args(PolicyRole)

_BITFOUNT_PREFIX = "bitfount."
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_POLICY_RULE = "podium_policy"


def normalise_name(name: str) -> str:
    """The form in which protocol and algorithm names are compared.

    A leading ``bitfount.`` (any case) is dropped, then the name is lower-cased and every
    character other than ``a-z`` and ``0-9`` is removed, as the hub's access manager does:
    ``bitfount.SqlQuery``, ``SqlQuery``, ``sql_query`` and ``SQL-QUERY`` are one name.
    """
    bare = name.strip()
    if bare[: len(_BITFOUNT_PREFIX)].lower() == _BITFOUNT_PREFIX:
        bare = bare[len(_BITFOUNT_PREFIX) :]
    return re.sub(r"[^a-z0-9]", "", bare.lower())


def _rule(message: str) -> PydanticCustomError:
    # The message travels in the context so that braces in it are never a template.
    return PydanticCustomError(_POLICY_RULE, "{message}", {"message": message})


def _check_user(name: str) -> str:
    if not is_valid_name(name):
        raise _rule(
            f"{name!r} is not a user name: 1 to 63 characters of a-z 0-9 _ -, starting with a "
            f"letter or digit (hub user names are lower case). Write it as it is on the hub."
        )
    return name


def _check_task_name(name: str) -> str:
    if not normalise_name(name):
        raise _rule(
            f"{name!r} names no protocol or algorithm. Write a name such as 'SqlQuery' or "
            f"'bitfount.FederatedAveraging'."
        )
    return name


def _check_hash(value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise _rule(
            f"{value!r} is not a SHA-256 hash: write the 64 hex digits of the model code's "
            f"hash (for example the output of 'sha256sum model.py')."
        )
    return value.lower()


UserName = Annotated[str, AfterValidator(_check_user)]
TaskName = Annotated[str, AfterValidator(_check_task_name)]
ModelHash = Annotated[str, AfterValidator(_check_hash)]
# Strict: YAML gives real numbers, and ``true`` or ``"5"`` for a number is a mistake.
_Epsilon = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
_Delta = Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)]
_Count = Annotated[int, Strict(), Field(ge=1)]


class _Model(BaseModel):
    """Shared settings: unknown keys are errors; values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DPCaps(_Model):
    """The pod owner's caps on differential privacy; an absent cap is no cap.

    A task that asks for no differential privacy spends nothing and is not checked here
    (disclosure control governs its results instead).
    """

    max_epsilon_per_task: _Epsilon | None = None
    """The largest epsilon one task may spend."""

    max_delta_per_task: _Delta | None = None
    """The largest delta one task may spend (below 1)."""

    total_epsilon_per_modeller: _Epsilon | None = None
    """The epsilon one modeller may spend on this pod in all, over every task."""

    total_delta_per_modeller: _Delta | None = None
    """The delta one modeller may spend on this pod in all, over every task (below 1)."""


def _admin_only() -> list[PolicyRole]:
    return ["admin"]


class PodPolicy(_Model):
    """A pod owner's own rules, applied after the hub's access manager has allowed a task.

    An allow-list that is ``None`` (absent from the file) allows everything the hub
    allowed; an empty list allows nothing.
    """

    allowed_users: list[UserName] | None = None
    """The only users who may run tasks; ``None``: anyone the hub allowed."""

    denied_users: list[UserName] = Field(default_factory=list)
    """Users refused whatever the hub says (checked before ``allowed_users``)."""

    allowed_roles: list[PolicyRole] | None = None
    """The only roles a task may need (the hub's roles, such as ``sql`` or ``train``);
    ``None``: any role."""

    allowed_protocols: list[TaskName] | None = None
    """The only protocols a task may use (``ResultsOnly``, ``bitfount.FederatedAveraging``);
    ``None``: any protocol. Names compare as :func:`normalise_name` says."""

    allowed_algorithms: list[TaskName] | None = None
    """The only algorithms a task may use (``SqlQuery``, ``bitfount.ModelTraining``);
    ``None``: any algorithm. Every algorithm of a task must be listed."""

    min_group_size: _Count = 10
    """The fewest records behind any group or aggregate in a non-DP result (disclosure
    control; applied to results, not to the request)."""

    row_level_roles: list[PolicyRole] = Field(default_factory=_admin_only)
    """The roles that may receive row-level results (a SQL query that returns rows, not
    aggregates); a modeller holding none of them gets aggregates only. Default: ``admin``."""

    dp: DPCaps = Field(default_factory=DPCaps)
    """Caps on differential privacy per task and per modeller."""

    allowed_model_hashes: list[ModelHash] = Field(default_factory=list)
    """SHA-256 hashes (hex) of custom model code that may run here; built-in models need
    no entry. Empty: no custom model code runs."""

    max_concurrent_tasks: _Count = 4
    """How many tasks may run on the pod at the same time."""

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # YAML writes an empty value (``denied_users:``) as null: for fields whose default
        # is not None, treat it as not given. The allow-lists keep None (= no restriction);
        # the loader refuses an explicit null there, where it is most likely a mistake.
        if not isinstance(data, Mapping):
            return data
        defaulted = {
            name
            for name, field in cls.model_fields.items()
            if not field.is_required() and field.default is not None
        }
        return {k: v for k, v in data.items() if v is not None or k not in defaulted}

    def normalised_protocols(self) -> frozenset[str] | None:
        """The allowed protocols in :func:`normalise_name` form; ``None``: any."""
        return _normalised(self.allowed_protocols)

    def normalised_algorithms(self) -> frozenset[str] | None:
        """The allowed algorithms in :func:`normalise_name` form; ``None``: any."""
        return _normalised(self.allowed_algorithms)


def _normalised(names: list[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(normalise_name(n) for n in names)
