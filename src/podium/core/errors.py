"""Podium's exception tree and the exit codes the CLI maps them to.

Every error Podium raises on purpose is a :class:`PodiumError`. Its message says what
happened, where (file, field path, column or statement) and how to fix it, so the CLI can
print it as one line. The tree::

    PodiumError
    ├── ConfigError                     exit 2
    │   ├── ConfigFileError             the YAML file is missing, unreadable or not YAML
    │   ├── ConfigValidationError       a wrong type, a missing field or an unknown key
    │   ├── UnsetVariableError          ${VAR} names a variable that is not set
    │   ├── UnknownDataSourceError      a datasource type Podium does not know
    │   └── TaskDefinitionError         an unknown protocol or algorithm, bad arguments
    ├── DataSourceError                 exit 3
    │   ├── DataSourceNotFoundError     a file, folder or table that is not there
    │   └── DataSourceReadError         a file or database that cannot be read or parsed
    ├── SchemaError                     exit 3
    ├── QueryError                      exit 4
    │   ├── ForbiddenQueryError         not one read-only SELECT over the pod's tables
    │   └── QueryExecutionError         a valid query that failed while running
    ├── TaskError                       exit 7
    │   ├── PodResponseError            require_all_pods: a pod refused or did not answer
    │   └── ProtocolError               a peer broke the task's message flow or formats
    └── CryptoError                     keys, signatures, sealed messages (podium.core.crypto)
        ├── KeyFileError                exit 2: missing, readable by others, or exists
        ├── InvalidKeyError             key bytes of the wrong size or unusable
        ├── DecryptionError             a sealed or session message that does not open
        ├── SequenceError               replayed, reordered, gap, after final, truncated
        ├── CanonicalEncodingError      a value with no canonical encoding
        ├── InvalidSignatureError       abort reason INVALID_SIGNATURE
        ├── StaleRequestError           abort reason STALE_REQUEST (old or future)
        └── ReplayedNonceError          abort reason STALE_REQUEST (nonce seen before)

Errors of the hub's client live beside it, in :mod:`podium.hub.client`:
``HubClientError`` (exit 5, the hub refused a request) and its leaf
``HubUnreachableError`` (exit 6, no answer from the hub). The hub's own errors live in
:mod:`podium.hub`: ``HubError`` (exit 5; answered to API callers as problem documents) and
``StoreError`` (exit 2, the hub's database cannot be opened or used).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConfigError",
    "ConfigFileError",
    "ConfigValidationError",
    "DataSourceError",
    "DataSourceNotFoundError",
    "DataSourceReadError",
    "ExitCode",
    "ForbiddenQueryError",
    "PodResponseError",
    "PodiumError",
    "ProtocolError",
    "QueryError",
    "QueryExecutionError",
    "SchemaError",
    "TaskDefinitionError",
    "TaskError",
    "UnknownDataSourceError",
    "UnsetVariableError",
]


class ExitCode(IntEnum):
    """Exit codes of the ``podium`` command (documented in docs/cli.md)."""

    OK = 0
    INTERNAL = 1
    CONFIG = 2
    DATA = 3
    QUERY = 4
    HUB = 5
    HUB_UNREACHABLE = 6
    TASK = 7
    INTERRUPTED = 130


class PodiumError(Exception):
    """Base of every error Podium raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(PodiumError):
    """A pod or task configuration is wrong."""

    exit_code = ExitCode.CONFIG


class ConfigFileError(ConfigError):
    """A configuration file is missing, unreadable or not valid YAML."""


class ConfigValidationError(ConfigError):
    """A configuration value has the wrong type, is missing, or is not a known key."""


class UnsetVariableError(ConfigError):
    """A ``${VAR}`` reference names an environment variable that is not set."""


class UnknownDataSourceError(ConfigError):
    """A datasource type name that Podium does not know."""


class DataSourceError(PodiumError):
    """A data source cannot be opened or read."""

    exit_code = ExitCode.DATA


class DataSourceNotFoundError(DataSourceError):
    """A file, folder, sheet or table that a data source points at is not there."""


class DataSourceReadError(DataSourceError):
    """A data source exists but cannot be read or parsed."""


class SchemaError(PodiumError):
    """A schema is inconsistent with its data or cannot be loaded."""

    exit_code = ExitCode.DATA


class QueryError(PodiumError):
    """A SQL query on a pod's data was refused or failed."""

    exit_code = ExitCode.QUERY


class ForbiddenQueryError(QueryError):
    """A query that is not exactly one read-only SELECT over the pod's own tables."""


class QueryExecutionError(QueryError):
    """A query that passed the checks but failed while running."""


class TaskDefinitionError(ConfigError):
    """A task names a protocol or algorithm Podium does not know, or gives it bad arguments."""


class TaskError(PodiumError):
    """A task could not be run to the end."""

    exit_code = ExitCode.TASK


class PodResponseError(TaskError):
    """With ``require_all_pods``: a pod refused the task or did not answer in time."""


class ProtocolError(TaskError):
    """A peer broke the task's message flow, or sent a result in the wrong format."""
