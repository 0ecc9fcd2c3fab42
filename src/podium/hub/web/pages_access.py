"""Projects (list, create, members and pods) and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from podium.hub.accounts import Principal
from podium.hub.errors import CATALOGUE, ErrorCode, HubError
from podium.hub.models import NAME_PATTERN
from podium.hub.web.render import render
from podium.hub.web.route import WebRoute
from podium.hub.web.session import CsrfUser, SameOrigin, WebUser, get_services

__all__ = ["AUDIT_PAGE", "router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: Audit events per page.
AUDIT_PAGE = 50
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
ShortField = Annotated[str, Form(max_length=200)]
#: Errors in a project form that the page shows next to the form.
_FORM_ERRORS = {
    ErrorCode.VALIDATION_FAILED,
    ErrorCode.ALREADY_EXISTS,
    ErrorCode.USER_NOT_FOUND,
    ErrorCode.POD_NOT_FOUND,
    ErrorCode.NOT_POD_OWNER,
}


def _form_error(exc: HubError) -> str:
    if exc.code not in _FORM_ERRORS:
        raise exc
    return exc.detail or CATALOGUE[exc.code].title


def _projects_page(
    request: Request, principal: Principal, *, error: str | None = None, status_code: int = 200
) -> Response:
    services = get_services(request)
    return render(
        request,
        "projects.html",
        principal=principal,
        status_code=status_code,
        projects=services.access.list_projects(principal),
        error=error,
    )


@router.get("/projects")
def projects_page(request: Request, principal: WebUser) -> Response:
    """The user's projects and a form to create one."""
    return _projects_page(request, principal)


@router.post("/projects", dependencies=[SameOrigin])
def create_project(
    request: Request,
    principal: CsrfUser,
    name: ShortField,
    display_name: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Create a project owned by the user."""
    services = get_services(request)
    try:
        project = services.access.create_project(
            principal, name.strip(), display_name, description, services.now()
        )
    except HubError as exc:
        return _projects_page(request, principal, error=_form_error(exc), status_code=exc.status)
    return RedirectResponse(f"/projects/{project.name}", status_code=303)


def _project_page(
    request: Request,
    principal: Principal,
    name: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    services = get_services(request)
    project = services.access.get_project(principal, name)
    store = services.store
    owned = [p.pod_id for p in services.registry.list_pods(principal, owner=principal.name)]
    return render(
        request,
        "project.html",
        principal=principal,
        status_code=status_code,
        project=project,
        members=store.list_project_members(project.name),
        pods=store.list_project_pods(project.name),
        tasks=store.list_project_tasks(project.name),
        is_owner=principal.is_admin or project.owner == principal.name,
        my_pods=owned,
        error=error,
    )


@router.get("/projects/{name}")
def project_page(request: Request, principal: WebUser, name: Name) -> Response:
    """A project's members, pods and approved tasks."""
    return _project_page(request, principal, name)


@router.post("/projects/{name}/members", dependencies=[SameOrigin])
def add_member(request: Request, principal: CsrfUser, name: Name, user: ShortField) -> Response:
    """Add a member (project owner only)."""
    services = get_services(request)
    try:
        services.access.set_member(principal, name, user.strip(), member=True, now=services.now())
    except HubError as exc:
        message = _form_error(exc)
        return _project_page(request, principal, name, error=message, status_code=exc.status)
    return RedirectResponse(f"/projects/{name}", status_code=303)


@router.post("/projects/{name}/pods", dependencies=[SameOrigin])
def add_pod(request: Request, principal: CsrfUser, name: Name, pod: ShortField) -> Response:
    """Put one of the user's pods in the project."""
    services = get_services(request)
    try:
        services.access.set_pod(principal, name, pod.strip(), member=True, now=services.now())
    except HubError as exc:
        message = _form_error(exc)
        return _project_page(request, principal, name, error=message, status_code=exc.status)
    return RedirectResponse(f"/projects/{name}", status_code=303)


@router.get("/audit")
def audit_page(
    request: Request,
    principal: WebUser,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Access decisions and changes the user may read, newest first, a page at a time."""
    services = get_services(request)
    events = services.access.audit_log(principal, limit=AUDIT_PAGE, before_id=before)
    older = events[-1].event_id if len(events) == AUDIT_PAGE else None
    return render(
        request, "audit.html", principal=principal, events=events, older=older, before=before
    )
