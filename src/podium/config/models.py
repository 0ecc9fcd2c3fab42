"""Pydantic models of a pod's YAML configuration, compatible with Bitfount's pod configs.

Two forms are accepted. The single-source form (Bitfount's older one, still accepted)::

    name: census-income
    datasource: CSVSource
    pod_details_config: {display_name: ..., description: ...}
    data_config: {ignore_cols: [...], force_stypes: {...}, datasource_args: {path: ...}}

and the multi-source form, a ``datasources:`` list whose entries each have ``datasource``,
``name``, ``datasource_details_config`` and ``data_config``. :meth:`PodConfig.containers`
turns either into a list of :class:`DatasourceConfig`.

Every model forbids unknown keys. Checks that span several fields raise errors located at
the offending field (``datasources[1].name``), so the loader can point at the YAML line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    Strict,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.config._rules import (
    CONFIG_RULE,
    POD_NAME_PATTERN,
    SEMANTIC_TYPES,
    column_description_problems,
    fail,
    force_stypes_problems,
    known_source_type,
    problem,
    valid_name,
)
from podium.data.sources.base import Modifier

__all__ = [
    "POD_NAME_PATTERN",
    "SEMANTIC_TYPES",
    "APIKeys",
    "DPPodConfig",
    "DataSplitArgs",
    "DataSplitConfig",
    "DatasourceConfig",
    "HubConfig",
    "PodConfig",
    "PodDataConfig",
    "PodDetailsConfig",
]

_PERCENTAGE_ARGS = frozenset({"validation_percentage", "test_percentage", "shuffle"})
_PREDEFINED_ARGS = frozenset(
    {"column_name", "training_set_label", "validation_set_label", "test_set_label"}
)


class _Model(BaseModel):
    """Shared settings: unknown keys are errors; an explicit ``null`` means "the default"."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_by_alias=True,
        validate_by_name=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # YAML writes an empty value (``ignore_cols:``) as null; treat it as not given.
        if not isinstance(data, Mapping):
            return data
        optional = set()
        for name, field in cls.model_fields.items():
            if not field.is_required():
                optional |= {name, field.alias or name}
        return {k: v for k, v in data.items() if v is not None or k not in optional}


class PodDetailsConfig(_Model):
    """How a pod or a datasource is shown to users of the hub."""

    display_name: str = Field(min_length=1)
    """The name shown in listings, for example ``Census income demo pod``."""

    description: str = ""
    """Free text describing the data."""


class DataSplitArgs(_Model):
    """Arguments of a data splitter; which ones apply depends on ``data_splitter``."""

    validation_percentage: float = Field(default=10, ge=0, le=100)
    """``percentage``: share of rows (0-100) held out for validation."""

    test_percentage: float = Field(default=10, ge=0, le=100)
    """``percentage``: share of rows (0-100) held out for testing."""

    shuffle: bool = True
    """``percentage``: shuffle the rows (with the source's seed) before splitting."""

    column_name: str | None = None
    """``predefined``: the column whose value says which split a row belongs to."""

    training_set_label: str = "TRAIN"
    """``predefined``: the value marking training rows."""

    validation_set_label: str = "VALIDATE"
    """``predefined``: the value marking validation rows."""

    test_set_label: str = "TEST"
    """``predefined``: the value marking test rows."""


class DataSplitConfig(_Model):
    """How a datasource's rows are split into training, validation and test sets."""

    data_splitter: Literal["percentage", "predefined"] = "percentage"
    """``percentage`` splits by row shares; ``predefined`` reads the split from a column."""

    args: DataSplitArgs = Field(default_factory=DataSplitArgs)
    """The splitter's arguments."""

    @model_validator(mode="after")
    def _check_args(self) -> Self:
        given = self.args.model_fields_set
        other, foreign = (
            ("predefined", given & _PREDEFINED_ARGS)
            if self.data_splitter == "percentage"
            else ("percentage", given & _PERCENTAGE_ARGS)
        )
        problems = [
            problem(
                ("args", key),
                f"{key} only applies to data_splitter: {other}; remove it or set "
                f"data_splitter: {other}.",
            )
            for key in sorted(foreign)
        ]
        args = self.args
        if self.data_splitter == "percentage":
            total = args.validation_percentage + args.test_percentage
            if total >= 100:
                problems.append(
                    problem(
                        ("args",),
                        f"validation_percentage + test_percentage is {total:g}; it must be "
                        f"below 100 so that some rows are left for training.",
                    )
                )
        else:
            if args.column_name is None:
                problems.append(
                    problem(
                        ("args", "column_name"),
                        "data_splitter: predefined needs args.column_name, the column whose "
                        "values assign each row to a split.",
                    )
                )
            labels = [args.training_set_label, args.validation_set_label, args.test_set_label]
            if len(set(labels)) < len(labels):
                problems.append(
                    problem(("args",), f"the three set labels must differ, got {labels}.")
                )
        if problems:
            raise fail(problems)
        return self


class PodDataConfig(_Model):
    """How a datasource's data is read and described (Bitfount's ``data_config``)."""

    force_stypes: dict[str, list[str]] | dict[str, dict[str, list[str]]] = Field(
        default_factory=dict
    )
    """Columns forced to a semantic type: ``{stype: [cols]}`` or, keyed by the datasource
    name, ``{name: {stype: [cols]}}``. Types: categorical, continuous, image, text."""

    column_descriptions: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    """Descriptions by column (``{col: text}``), optionally keyed by datasource name."""

    table_descriptions: dict[str, str] = Field(default_factory=dict)
    """Descriptions by table (datasource) name."""

    description: str | None = None
    """A description of the data as a whole."""

    ignore_cols: list[str] = Field(default_factory=list)
    """Columns left out of everything the pod exposes."""

    modifiers: dict[str, Modifier] = Field(default_factory=dict)
    """Text added before (``prefix``) and after (``suffix``) every value of a column."""

    datasource_args: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the datasource's constructor (checked when it is built)."""

    data_split: DataSplitConfig | None = None
    """How rows are split for training; ``None`` leaves it to the task."""

    auto_tidy: bool = False
    """Drop rows with missing values and normalise numeric columns before training."""

    @field_validator("force_stypes", mode="before")
    @classmethod
    def _check_force_stypes(cls, value: Any) -> Any:
        problems = force_stypes_problems(value)
        if problems:
            raise fail(problems)
        return value

    @field_validator("column_descriptions", mode="before")
    @classmethod
    def _check_column_descriptions(cls, value: Any) -> Any:
        problems = column_description_problems(value)
        if problems:
            raise fail(problems)
        return value

    def stypes_nested(self) -> bool:
        """Whether ``force_stypes`` uses the ``{datasource_name: {stype: [cols]}}`` form."""
        return any(isinstance(inner, dict) for inner in self.force_stypes.values())

    def stypes_for(self, name: str) -> dict[str, list[str]]:
        """The ``{stype: [columns]}`` that apply to the datasource called ``name``."""
        chosen = self.force_stypes.get(name, {}) if self.stypes_nested() else self.force_stypes
        if not isinstance(chosen, dict):  # pragma: no cover - excluded by the validator
            return {}
        return {stype: list(cols) for stype, cols in chosen.items()}

    def column_descriptions_for(self, name: str) -> dict[str, str]:
        """The ``{column: description}`` that apply to the datasource called ``name``."""
        result = {k: v for k, v in self.column_descriptions.items() if isinstance(v, str)}
        inner = self.column_descriptions.get(name)
        if isinstance(inner, dict):
            result.update(inner)
        return result


class DPPodConfig(_Model):
    """The pod owner's differential-privacy limits per task."""

    model_config = ConfigDict(allow_inf_nan=False)

    max_epsilon: float = Field(default=3.0, gt=0)
    """The largest privacy budget (epsilon) one task may spend."""

    max_target_delta: float = Field(default=1e-6, gt=0, lt=1)
    """The largest delta one task may target."""


class HubConfig(_Model):
    """Where the pod registers and receives tasks. There is no default hub."""

    url: str
    """The hub's base URL, for example ``https://hub.example.org``."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise PydanticCustomError(
                CONFIG_RULE,
                "{message}",
                {"message": f"{value!r} is not an http(s) URL such as https://hub.example.org."},
            )
        return value.rstrip("/")


class APIKeys(_Model):
    """An API key issued by the hub, for pods that run unattended."""

    access_key_id: str = Field(min_length=1)
    """The key's public identifier."""

    access_key: SecretStr
    """The secret part; never logged or shown in errors."""


class DatasourceConfig(_Model):
    """One datasource of a pod (an entry of ``datasources:``)."""

    datasource: str
    """The source type, such as ``CSVSource`` (``bitfount.CSVSource`` is accepted)."""

    name: str
    """The datasource's name, also its table name in SQL: lower-case, digits, hyphens."""

    datasource_details_config: PodDetailsConfig | None = None
    """How the datasource is shown on the hub."""

    data_config: PodDataConfig = Field(default_factory=PodDataConfig)
    """How the data is read and described."""

    schema_path: Path | None = Field(default=None, alias="schema")
    """A saved schema to use instead of inferring one (relative to the config file)."""

    @field_validator("datasource")
    @classmethod
    def _check_datasource(cls, value: str) -> str:
        return known_source_type(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return valid_name(value, what="datasource")

    @model_validator(mode="after")
    def _check_stype_keys(self) -> Self:
        problems = _stype_key_problems(self.data_config, self.name)
        if problems:
            raise fail(problems)
        return self

    def description(self) -> str | None:
        """The table's description: the details' one, else ``table_descriptions[name]``,
        else ``data_config.description``."""
        details = self.datasource_details_config
        return (
            (details.description if details else None)
            or self.data_config.table_descriptions.get(self.name)
            or self.data_config.description
        )


def _stype_key_problems(data_config: PodDataConfig, name: str) -> list[InitErrorDetails]:
    """Keys of a nested ``force_stypes`` that do not name the datasource they belong to."""
    if not data_config.stypes_nested():
        return []
    return [
        problem(
            ("data_config", "force_stypes", key),
            f"force_stypes is keyed by {key!r} but this datasource is named {name!r}; use "
            f"{name!r} as the key, or drop the key level: {{stype: [columns]}}.",
        )
        for key in data_config.force_stypes
        if key != name
    ]


class PodConfig(_Model):
    """A pod's whole configuration, as read from ``run-pod CONFIG.yaml``."""

    name: str
    """The pod's name: lower-case letters, digits and hyphens (no underscores)."""

    username: str | None = None
    """The hub user who owns the pod."""

    secrets: APIKeys | None = None
    """Credentials for the hub (``{bitfount: {...}}`` is accepted as well)."""

    pod_details_config: PodDetailsConfig | None = None
    """How the pod is shown on the hub (and, in the single form, its datasource)."""

    datasource: str | None = None
    """Single form (deprecated, accepted): the type of the pod's one datasource."""

    data_config: PodDataConfig | None = None
    """Single form: the data config of the pod's one datasource."""

    schema_path: Path | None = Field(default=None, alias="schema")
    """Single form: a saved schema for the pod's one datasource."""

    datasources: list[DatasourceConfig] | None = None
    """Multi form: the pod's datasources, each with its own name and data config."""

    hub: HubConfig | None = None
    """The hub to register with; ``None`` for a pod that only runs locally (dry runs)."""

    approved_pods: list[str] = Field(default_factory=list)
    """Other pods (``owner/pod-name``) this pod will train with under secure aggregation."""

    differential_privacy: DPPodConfig | None = None
    """Differential-privacy limits; ``None`` means DP tasks use the platform defaults."""

    pod_db: Annotated[bool, Strict()] | Path = False
    """Keep results and processed-file records in a database: ``true`` for the default
    file, or a file path (relative to the config file)."""

    update_schema: bool = False
    """Regenerate the schema even if a saved one is given."""

    version: str | None = None
    """The config format version, if the file states one."""

    _source_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _accept_bitfount_shapes(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        secrets = data.get("secrets")
        if isinstance(secrets, Mapping) and set(secrets) == {"bitfount"}:
            data["secrets"] = secrets["bitfount"]
        pod_db = data.get("pod_db")
        if isinstance(pod_db, Mapping) and set(pod_db) == {"path"}:
            data["pod_db"] = pod_db["path"]
        if isinstance(data.get("version"), int | float) and not isinstance(data["version"], bool):
            data["version"] = str(data["version"])
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return valid_name(value)

    @field_validator("pod_db", mode="before")
    @classmethod
    def _check_pod_db(cls, value: Any) -> Any:
        if isinstance(value, bool | Path):
            return value
        if isinstance(value, str) and value:
            return Path(value)
        raise PydanticCustomError(
            CONFIG_RULE,
            "{message}",
            {"message": f"expected true, false or a file path, got {value!r}."},
        )

    @field_validator("datasource")
    @classmethod
    def _check_datasource(cls, value: str | None) -> str | None:
        return None if value is None else known_source_type(value)

    @field_validator("datasources")
    @classmethod
    def _check_datasources(
        cls, value: list[DatasourceConfig] | None
    ) -> list[DatasourceConfig] | None:
        if value is None:
            return None
        if not value:
            raise fail([problem((), "the list is empty; add at least one datasource.")])
        first: dict[str, int] = {}
        problems = []
        for index, container in enumerate(value):
            if container.name in first:
                problems.append(
                    problem(
                        (index, "name"),
                        f"the name {container.name!r} is already used by "
                        f"datasources[{first[container.name]}]; each datasource needs its "
                        f"own name (it is its table name in SQL).",
                    )
                )
            first.setdefault(container.name, index)
        if problems:
            raise fail(problems)
        return value

    @model_validator(mode="after")
    def _check_forms(self) -> Self:
        problems = self._form_problems()
        if self.secrets is not None and self.username is None:
            problems.append(
                problem(("username",), "secrets need a username: add username: <hub user>.")
            )
        if problems:
            raise fail(problems)
        return self

    def _form_problems(self) -> list[InitErrorDetails]:
        if self.datasource is not None and self.datasources is not None:
            return [
                problem(
                    ("datasources",),
                    "give either datasource (one source, the older form) or datasources "
                    "(a list), not both.",
                )
            ]
        if self.datasource is None and self.datasources is None:
            return [
                problem(
                    (),
                    "no data: add datasource: <type> with data_config.datasource_args, or a "
                    "datasources: list of {datasource, name, data_config}.",
                )
            ]
        if self.datasources is not None:
            return [
                problem(
                    (key,),
                    f"top-level {key} only goes with datasource:; with a datasources: list, "
                    f"move it into each entry.",
                )
                for key, value in (("data_config", self.data_config), ("schema", self.schema_path))
                if value is not None
            ]
        if self.data_config is None:
            return []
        return _stype_key_problems(self.data_config, self.name)

    @property
    def source_path(self) -> Path | None:
        """The file this config was loaded from, if it came from a file."""
        return self._source_path

    @property
    def base_dir(self) -> Path:
        """The folder that relative paths are resolved against: the config file's folder."""
        return self._source_path.parent if self._source_path is not None else Path.cwd()

    def resolve_path(self, value: str | Path) -> Path:
        """Resolve a path written in the config (``~`` expanded, relative to ``base_dir``)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def containers(self) -> list[DatasourceConfig]:
        """The pod's datasources in one shape, whichever form the config used.

        In the single form the one datasource is named after the pod and takes
        ``pod_details_config`` as its details.
        """
        if self.datasources is not None:
            return list(self.datasources)
        if self.datasource is None:  # pragma: no cover - excluded by _check_forms
            return []
        return [
            DatasourceConfig(
                datasource=self.datasource,
                name=self.name,
                datasource_details_config=self.pod_details_config,
                data_config=self.data_config or PodDataConfig(),
                schema=self.schema_path,
            )
        ]
