"""``/api/v1/access``, ``/api/v1/roles``, ``/api/v1/grants``, ``/api/v1/projects`` and
``/api/v1/audit``: decisions, roles, projects and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from podium.hub.access import PRESETS, ROLES, DecisionRequest
from podium.hub.api.convert import (
    audit_out,
    decision_out,
    grant_out,
    project_out,
    project_task_out,
)
from podium.hub.api.deps import Caller, Services
from podium.hub.errors import ErrorCode, HubError
from podium.hub.models import NAME_PATTERN
from podium.hub.schemas import (
    MAX_COUNT,
    AuditPage,
    DecisionIn,
    DecisionOut,
    GrantOut,
    ProjectDetail,
    ProjectIn,
    ProjectOut,
    ProjectTaskIn,
    RolesOut,
)

router = APIRouter(tags=["access"])

ProjectName = Annotated[str, Path(pattern=NAME_PATTERN)]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.post("/access/decide", response_model=DecisionOut, summary="May a modeller run a task?")
def decide(services: Services, caller: Caller, body: DecisionIn) -> DecisionOut:
    """Called by a pod (as its owner) before it runs a task. Every answer is audited."""
    decision = services.access.decide(
        caller,
        DecisionRequest(
            modeller=body.modeller,
            pod_id=body.pod,
            protocol=body.protocol,
            algorithms=list(body.algorithms),
            task_hash=body.task_hash,
            project=body.project,
        ),
        services.now(),
    )
    return decision_out(decision)


@router.get("/roles", response_model=RolesOut, summary="Roles and presets")
def roles(_: Caller) -> RolesOut:
    """What each role allows, and which roles each preset gives."""
    return RolesOut(roles=dict(ROLES), presets={k: list(v) for k, v in PRESETS.items()})


@router.get("/grants", response_model=list[GrantOut], summary="Your roles on every pod")
def my_grants(
    services: Services,
    caller: Caller,
    user: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> list[GrantOut]:
    """The caller's grants (an admin may ask for another user's)."""
    return [grant_out(g) for g in services.access.list_grants(caller, user=user)]


@router.post("/projects", response_model=ProjectOut, status_code=201, summary="Create a project")
def create_project(services: Services, caller: Caller, body: ProjectIn) -> ProjectOut:
    """A project owned by the caller."""
    project = services.access.create_project(
        caller, body.name, body.display_name, body.description, services.now()
    )
    return project_out(project)


@router.get("/projects", response_model=list[ProjectOut], summary="Your projects")
def list_projects(services: Services, caller: Caller) -> list[ProjectOut]:
    """Projects you own or belong to."""
    return [project_out(p) for p in services.access.list_projects(caller)]


@router.get("/projects/{project}", response_model=ProjectDetail, summary="A project")
def get_project(services: Services, caller: Caller, project: ProjectName) -> ProjectDetail:
    """A project with its members, pods and approved tasks."""
    found = services.access.get_project(caller, project)
    store = services.store
    return ProjectDetail(
        **project_out(found).model_dump(),
        members=store.list_project_members(found.name),
        pods=store.list_project_pods(found.name),
        tasks=[project_task_out(t) for t in store.list_project_tasks(found.name)],
    )


@router.put("/projects/{project}/members/{user}", status_code=204, summary="Add a member")
def add_member(services: Services, caller: Caller, project: ProjectName, user: Name) -> Response:
    """Project owner only."""
    services.access.set_member(caller, project, user, member=True, now=services.now())
    return Response(status_code=204)


@router.delete("/projects/{project}/members/{user}", status_code=204, summary="Remove a member")
def remove_member(services: Services, caller: Caller, project: ProjectName, user: Name) -> Response:
    """Project owner only."""
    services.access.set_member(caller, project, user, member=False, now=services.now())
    return Response(status_code=204)


@router.put("/projects/{project}/pods/{owner}/{name}", status_code=204, summary="Add a pod")
def add_pod(
    services: Services, caller: Caller, project: ProjectName, owner: Name, name: Name
) -> Response:
    """The pod's owner only: approved tasks of the project may then run on it."""
    services.access.set_pod(caller, project, f"{owner}/{name}", member=True, now=services.now())
    return Response(status_code=204)


@router.delete("/projects/{project}/pods/{owner}/{name}", status_code=204, summary="Remove a pod")
def remove_pod(
    services: Services, caller: Caller, project: ProjectName, owner: Name, name: Name
) -> Response:
    """The pod's owner only."""
    services.access.set_pod(caller, project, f"{owner}/{name}", member=False, now=services.now())
    return Response(status_code=204)


@router.post("/projects/{project}/tasks", status_code=204, summary="Approve a task definition")
def approve_task(
    services: Services, caller: Caller, project: ProjectName, body: ProjectTaskIn
) -> Response:
    """Project owner only; members may then run the task on the project's pods."""
    services.access.approve_task(caller, project, body.task_hash, body.description, services.now())
    return Response(status_code=204)


@router.delete(
    "/projects/{project}/tasks/{task_hash}", status_code=204, summary="Withdraw an approval"
)
def revoke_task(
    services: Services,
    caller: Caller,
    project: ProjectName,
    task_hash: Annotated[str, Path(pattern=r"^[0-9a-f]{16,128}$")],
) -> Response:
    """Project owner only."""
    services.access.revoke_task(caller, project, task_hash, services.now())
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPage, summary="The audit log")
def audit(
    services: Services,
    caller: Caller,
    pod: Annotated[str | None, Query(max_length=127)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_COUNT)] = None,
) -> AuditPage:
    """Decisions and access changes, newest first: all for an admin, else those of pods
    you manage and those you made."""
    if pod is not None and pod.count("/") != 1:
        raise HubError(ErrorCode.VALIDATION_FAILED, "pod must be 'owner/name'")
    events = services.access.audit_log(caller, pod_id=pod, limit=limit, before_id=before)
    next_before = events[-1].event_id if len(events) == limit else None
    return AuditPage(events=[audit_out(e) for e in events], next_before=next_before)
