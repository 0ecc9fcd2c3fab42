"""``podium pods`` and ``podium access``: the pod registry and who may use each pod."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from podium.cli._hub_render import (
    grants_table,
    pods_table,
    print_json,
    print_pod,
    roles_tables,
)
from podium.cli._hub_session import HubOpt, JsonOpt, call, checked_pod_id, hub_target

__all__ = ["access_app", "pods_app"]

_out = Console(highlight=False)

PodArg = Annotated[str, typer.Argument(metavar="OWNER/NAME", help="The pod, as owner/name.")]
PodOpt = Annotated[str, typer.Option("--pod", metavar="OWNER/NAME", help="The pod.")]
UserOpt = Annotated[str, typer.Option("--user", metavar="NAME", help="The user.")]
RoleOpt = Annotated[
    str,
    typer.Option(
        "--role",
        metavar="ROLE",
        help="A role (viewer, sql, private-sql, statistics, psi, train, evaluate, infer, "
        "admin) or a preset; see `podium access roles`.",
    ),
]

pods_app = typer.Typer(help="Pods registered on the hub.", no_args_is_help=True)


@pods_app.command("list")
def pods_list(
    hub: HubOpt = None,
    search: Annotated[
        str | None,
        typer.Option("--search", metavar="TEXT", help="Only pods whose name or text match."),
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="NAME", help="Only this owner's pods.")
    ] = None,
    include_archived: Annotated[
        bool, typer.Option("--archived", help="Include archived pods.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the pods you own or hold a role on (every pod, for a hub admin)."""
    target = hub_target(hub)
    pods = call(
        target,
        lambda c: c.list_pods(search=search, owner=owner, include_archived=include_archived),
    )
    if as_json:
        print_json(_out, {"pods": [p.model_dump(mode="json", by_alias=True) for p in pods]})
    elif not pods:
        typer.echo("No pods found.")
    else:
        _out.print(pods_table(pods))


@pods_app.command("show")
def pods_show(pod: PodArg, hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """Show a pod: its status, description, keys and schema as a table."""
    pod_id = checked_pod_id(pod)
    target = hub_target(hub)
    found = call(target, lambda c: c.get_pod(pod_id))
    if as_json:
        print_json(_out, found)
    else:
        print_pod(_out, found)


access_app = typer.Typer(
    help="Roles on pods: grant, revoke and list them (pod owners and admins).",
    no_args_is_help=True,
)


@access_app.command("grant")
def access_grant(
    pod: PodOpt, user: UserOpt, role: RoleOpt, hub: HubOpt = None, as_json: JsonOpt = False
) -> None:
    """Give a user a role (or a preset's roles) on a pod you manage."""
    pod_id = checked_pod_id(pod)
    target = hub_target(hub)
    change = call(target, lambda c: c.grant(pod_id, user, role))
    if as_json:
        print_json(_out, change)
    elif change.changed:
        typer.echo(f"Granted {', '.join(change.changed)} on {pod_id} to {user}.")
    else:
        typer.echo(f"{user} already holds {role} on {pod_id}: nothing changed.")


@access_app.command("revoke")
def access_revoke(
    pod: PodOpt, user: UserOpt, role: RoleOpt, hub: HubOpt = None, as_json: JsonOpt = False
) -> None:
    """Take a role (or a preset's roles) on a pod away from a user."""
    pod_id = checked_pod_id(pod)
    target = hub_target(hub)
    change = call(target, lambda c: c.revoke_grant(pod_id, user, role))
    if as_json:
        print_json(_out, change)
    elif change.changed:
        typer.echo(f"Revoked {', '.join(change.changed)} on {pod_id} from {user}.")
    else:
        typer.echo(f"{user} did not hold {role} on {pod_id}: nothing changed.")


@access_app.command("list")
def access_list(
    pod: Annotated[
        str | None,
        typer.Option(
            "--pod",
            metavar="OWNER/NAME",
            help="Who holds which role on this pod [default: your own roles on every pod].",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", metavar="NAME", help="Another user's roles (hub admins)."),
    ] = None,
    hub: HubOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List grants: on one pod, or your own on every pod."""
    pod_id = None if pod is None else checked_pod_id(pod)
    target = hub_target(hub)
    grants = call(target, lambda c: c.list_grants(pod_id=pod_id, user=user))
    if as_json:
        print_json(_out, grants)
    elif not grants:
        typer.echo("No grants.")
    else:
        _out.print(grants_table(grants))


@access_app.command("roles")
def access_roles(hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """List the roles, what each allows, and the presets that bundle them."""
    target = hub_target(hub)
    roles = call(target, lambda c: c.roles())
    if as_json:
        print_json(_out, roles)
        return
    for table in roles_tables(roles):
        _out.print(table)
