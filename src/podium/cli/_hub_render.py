"""Rich tables and JSON for what the hub answers.

Every value that comes from the hub is wrapped in :class:`rich.text.Text`, so a pod
description such as ``[bold]`` is shown as written, never read as markup, and loses its
terminal control characters, so another user's text cannot drive the reader's terminal
(escape sequences that move the cursor, retitle the window or fake a hyperlink).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pydantic import BaseModel

    from podium.hub.schemas import (
        ApiKeyOut,
        GrantOut,
        PodOut,
        ProjectDetail,
        ProjectOut,
        RolesOut,
    )

__all__ = [
    "api_keys_table",
    "grants_table",
    "pod_schema_tables",
    "pods_table",
    "print_json",
    "print_pod",
    "print_project",
    "projects_table",
    "roles_tables",
]

_MAX_SHOWN_VALUES = 6
#: C0 and C1 control characters but tab and newline, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STATUS_STYLE = {"online": "green", "offline": "red", "archived": "dim"}
#: Identifiers that a user copies: never broken across lines.
_NO_WRAP = frozenset({"id", "pod", "task hash"})


def _text(value: str = "", style: str = "") -> Text:
    """Text for the terminal, without control characters."""
    return Text(_CONTROL.sub("", value), style=style)


def print_json(
    console: Console, value: BaseModel | Sequence[BaseModel] | Mapping[str, Any]
) -> None:
    """One JSON document on ``console``: a model, a list of models, or a mapping."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        data: object = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, Mapping):
        data = dict(value)
    else:
        data = [item.model_dump(mode="json", by_alias=True) for item in value]
    console.print_json(json.dumps(data))


def _when(value: datetime | None) -> Text:
    return _text("" if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip())


def _table(title: str | None, columns: Iterable[str]) -> Table:
    table = Table(title=None if title is None else _text(title), title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=column in _NO_WRAP)
    return table


def _status(status: str) -> Text:
    return _text(status, style=_STATUS_STYLE.get(status, ""))


def api_keys_table(keys: Sequence[ApiKeyOut]) -> Table:
    """Your API keys: id, name, when created, last used and revoked."""
    table = _table(None, ["id", "name", "created", "last used", "revoked"])
    for key in keys:
        table.add_row(
            _text(key.key_id),
            _text(key.name),
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
    return table


def pods_table(pods: Sequence[PodOut]) -> Table:
    """Pods: id, status (online in green, offline in red), name, records, heartbeat."""
    table = _table(None, ["pod", "status", "display name", "records", "last heartbeat"])
    for pod in pods:
        records = "hidden" if pod.number_of_records is None else f"{pod.number_of_records:,}"
        table.add_row(
            _text(pod.pod_id),
            _status(pod.status),
            _text(pod.display_name),
            _text(records),
            _when(pod.last_heartbeat_at),
        )
    return table


def _column_values(values: object) -> str:
    if not isinstance(values, list):
        return ""
    shown = ", ".join(str(v) for v in values[:_MAX_SHOWN_VALUES])
    more = len(values) - _MAX_SHOWN_VALUES
    return f"{shown}, ... (+{more})" if more > 0 else shown


def _schema_table(schema: Mapping[str, Any]) -> Table | None:
    columns = schema.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, Mapping) for c in columns):
        return None
    records = schema.get("num_records")
    shown = f"{records:,}" if isinstance(records, int) else "hidden"
    title = f"{schema.get('name', 'schema')}  ({shown} records)"
    table = _table(title, ["column", "stype", "dtype", "missing", "values"])
    for column in columns:
        missing = column.get("missing")
        table.add_row(
            _text(str(column.get("name", ""))),
            _text(str(column.get("stype", ""))),
            _text(str(column.get("dtype", ""))),
            _text("" if missing is None else f"{missing:,}" if isinstance(missing, int) else ""),
            _text(_column_values(column.get("values"))),
        )
    return table


def pod_schema_tables(schema: Mapping[str, Any]) -> list[Table] | None:
    """One table per table of a pod's schema (a ``Schema.to_dict()``, or
    ``{"schemas": [...]}`` of several); None if the schema has another shape."""
    items = schema.get("schemas")
    parts: list[Any] = items if isinstance(items, list) else [schema]
    tables = [_schema_table(p) if isinstance(p, Mapping) else None for p in parts]
    if not tables or any(t is None for t in tables):
        return None
    return [t for t in tables if t is not None]


def print_pod(console: Console, pod: PodOut) -> None:
    """A pod's details, its keys and its schema as tables."""
    header = _text()
    header.append_text(_text(pod.pod_id, style="bold"))
    if pod.display_name:
        header.append_text(_text(f"  {pod.display_name}"))
    header.append("  ")
    header.append_text(_status(pod.status))
    console.print(header)
    records = "hidden" if pod.number_of_records is None else f"{pod.number_of_records:,}"
    console.print(_text(f"records: {records}   schema hash: {pod.schema_hash or '-'}"))
    console.print(_text("last heartbeat: ").append_text(_when(pod.last_heartbeat_at)))
    if pod.description:
        console.print(_text(pod.description.strip()))
    for key in pod.keys:
        console.print(_text(f"{key.purpose} key {key.key_id} ({key.algorithm}): {key.public_key}"))
    if not pod.schema_:
        console.print(_text("The pod has not published a schema yet."))
        return
    tables = pod_schema_tables(pod.schema_)
    if tables is None:
        console.print_json(json.dumps(pod.schema_))
        return
    for table in tables:
        console.print(table)


def grants_table(grants: Sequence[GrantOut]) -> Table:
    """Grants: pod, user, role, who granted it and when."""
    table = _table(None, ["pod", "user", "role", "granted by", "since"])
    for grant in grants:
        table.add_row(
            _text(grant.pod_id),
            _text(grant.user),
            _text(grant.role),
            _text(grant.granted_by),
            _when(grant.created_at),
        )
    return table


def roles_tables(roles: RolesOut) -> list[Table]:
    """The roles with what each allows, and the presets with their roles."""
    role_table = _table("Roles", ["role", "allows"])
    for name, meaning in roles.roles.items():
        role_table.add_row(_text(name), _text(meaning))
    preset_table = _table("Presets", ["preset", "roles"])
    for name, members in roles.presets.items():
        preset_table.add_row(_text(name), _text(", ".join(members)))
    return [role_table, preset_table]


def projects_table(projects: Sequence[ProjectOut]) -> Table:
    """Projects: name, owner, display name, created."""
    table = _table(None, ["project", "owner", "display name", "created"])
    for project in projects:
        table.add_row(
            _text(project.name),
            _text(project.owner),
            _text(project.display_name),
            _when(project.created_at),
        )
    return table


def print_project(console: Console, project: ProjectDetail) -> None:
    """A project with its members, pods and approved task definitions."""
    header = _text()
    header.append_text(_text(project.name, style="bold"))
    header.append_text(_text(f"  owner {project.owner}"))
    if project.display_name:
        header.append_text(_text(f"  {project.display_name}"))
    console.print(header)
    if project.description:
        console.print(_text(project.description.strip()))
    console.print(_text(f"members: {', '.join(project.members) or '-'}"))
    console.print(_text(f"pods: {', '.join(project.pods) or '-'}"))
    if not project.tasks:
        console.print(_text("approved tasks: -"))
        return
    table = _table("Approved tasks", ["task hash", "description", "approved by", "when"])
    for task in project.tasks:
        table.add_row(
            _text(task.task_hash),
            _text(task.description),
            _text(task.approved_by),
            _when(task.created_at),
        )
    console.print(table)
