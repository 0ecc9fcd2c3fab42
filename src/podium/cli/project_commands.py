"""``podium projects``: pods, members and approved task definitions grouped together."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from podium.cli._hub_render import print_json, print_project, projects_table
from podium.cli._hub_session import HubOpt, JsonOpt, call, checked_pod_id, hub_target

__all__ = ["projects_app"]

_out = Console(highlight=False)

ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's name.")]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user's name.")]
PodArg = Annotated[str, typer.Argument(metavar="OWNER/NAME", help="The pod, as owner/name.")]
HashArg = Annotated[
    str, typer.Argument(metavar="TASK_HASH", help="The hash of the task definition.")
]

projects_app = typer.Typer(
    help="Projects: pods, members and approved task definitions.", no_args_is_help=True
)


@projects_app.command("create")
def projects_create(
    name: ProjectArg,
    display_name: Annotated[str, typer.Option("--display-name", help="A title.")] = "",
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    hub: HubOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project that you own."""
    target = hub_target(hub)
    project = call(
        target,
        lambda c: c.create_project(name, display_name=display_name, description=description),
    )
    if as_json:
        print_json(_out, project)
    else:
        typer.echo(f"Created project {project.name}.")


@projects_app.command("list")
def projects_list(hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """List the projects you own or belong to."""
    target = hub_target(hub)
    projects = call(target, lambda c: c.list_projects())
    if as_json:
        print_json(_out, projects)
    elif not projects:
        typer.echo("No projects.")
    else:
        _out.print(projects_table(projects))


@projects_app.command("show")
def projects_show(name: ProjectArg, hub: HubOpt = None, as_json: JsonOpt = False) -> None:
    """Show a project: members, pods and approved tasks."""
    target = hub_target(hub)
    project = call(target, lambda c: c.get_project(name))
    if as_json:
        print_json(_out, project)
    else:
        print_project(_out, project)


@projects_app.command("add-member")
def projects_add_member(project: ProjectArg, user: UserArg, hub: HubOpt = None) -> None:
    """Add a member (project owner only)."""
    call(hub_target(hub), lambda c: c.add_project_member(project, user))
    typer.echo(f"Added {user} to project {project}.")


@projects_app.command("remove-member")
def projects_remove_member(project: ProjectArg, user: UserArg, hub: HubOpt = None) -> None:
    """Remove a member (project owner only)."""
    call(hub_target(hub), lambda c: c.remove_project_member(project, user))
    typer.echo(f"Removed {user} from project {project}.")


@projects_app.command("add-pod")
def projects_add_pod(project: ProjectArg, pod: PodArg, hub: HubOpt = None) -> None:
    """Add a pod you own: the project's approved tasks may then run on it."""
    pod_id = checked_pod_id(pod)
    call(hub_target(hub), lambda c: c.add_project_pod(project, pod_id))
    typer.echo(f"Added pod {pod_id} to project {project}.")


@projects_app.command("remove-pod")
def projects_remove_pod(project: ProjectArg, pod: PodArg, hub: HubOpt = None) -> None:
    """Take a pod you own out of a project."""
    pod_id = checked_pod_id(pod)
    call(hub_target(hub), lambda c: c.remove_project_pod(project, pod_id))
    typer.echo(f"Removed pod {pod_id} from project {project}.")


@projects_app.command("approve-task")
def projects_approve_task(
    project: ProjectArg,
    task_hash: HashArg,
    description: Annotated[
        str, typer.Option("--description", help="What the task does, for the record.")
    ] = "",
    hub: HubOpt = None,
) -> None:
    """Approve a task definition by its hash: members may then run it on the project's pods."""
    call(hub_target(hub), lambda c: c.approve_task(project, task_hash, description=description))
    typer.echo(f"Approved task {task_hash} in project {project}.")


@projects_app.command("revoke-task")
def projects_revoke_task(project: ProjectArg, task_hash: HashArg, hub: HubOpt = None) -> None:
    """Withdraw a task approval (project owner only)."""
    call(hub_target(hub), lambda c: c.revoke_task(project, task_hash))
    typer.echo(f"Withdrew the approval of task {task_hash} in project {project}.")
