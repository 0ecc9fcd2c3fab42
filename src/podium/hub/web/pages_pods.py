"""My Pods, a pod's page, and granting and revoking roles on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from podium.hub.access import PRESETS, ROLES
from podium.hub.accounts import Principal
from podium.hub.errors import CATALOGUE, ErrorCode, HubError
from podium.hub.models import NAME_PATTERN, Grant, Pod
from podium.hub.services import HubServices
from podium.hub.web.render import render, web_settings
from podium.hub.web.route import WebRoute
from podium.hub.web.schema_view import schema_tables
from podium.hub.web.session import CsrfUser, SameOrigin, WebUser, get_services

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Name = Annotated[str, Path(pattern=NAME_PATTERN)]
UserField = Annotated[str, Form(max_length=63)]
RoleField = Annotated[str, Form(max_length=50)]
#: Errors in a grant form that the pod page shows next to the form.
_FORM_ERRORS = {ErrorCode.USER_NOT_FOUND, ErrorCode.UNKNOWN_ROLE, ErrorCode.VALIDATION_FAILED}
#: How much of a schema of unknown shape the pod page shows, as indented JSON.
_RAW_SCHEMA_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class PodCard:
    """A pod with its current status."""

    pod: Pod
    online: bool


def _card(services: HubServices, pod: Pod) -> PodCard:
    return PodCard(pod, services.registry.is_online(pod, services.now()))


@router.get("/pods")
def pods_page(request: Request, principal: WebUser) -> Response:
    """A card per pod the user owns or holds a role on, marked online or offline."""
    services = get_services(request)
    pods = services.registry.list_pods(principal, limit=1000)
    return render(
        request,
        "pods.html",
        principal=principal,
        cards=[_card(services, p) for p in pods],
        refresh_s=web_settings(request).pods_refresh_s,
    )


def _managed_grants(services: HubServices, principal: Principal, pod: Pod) -> list[Grant] | None:
    """The pod's grants if ``principal`` manages access to it, else None."""
    try:
        return services.access.list_grants(principal, pod_id=pod.pod_id)
    except HubError as exc:
        if exc.code == ErrorCode.NOT_POD_OWNER:
            return None
        raise


def _raw_schema(schema: object) -> str:
    """The start of ``schema`` as indented JSON, encoded only as far as the page shows it:
    indenting a large, deeply nested schema whole could take gigabytes."""
    shown: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2).iterencode(schema):
        shown.append(chunk)
        size += len(chunk)
        if size >= _RAW_SCHEMA_CHARS:
            break
    return "".join(shown)[:_RAW_SCHEMA_CHARS]


def _pod_page(
    request: Request,
    principal: Principal,
    owner: str,
    name: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    services = get_services(request)
    pod = services.registry.require_pod(principal, owner, name)
    tables = schema_tables(pod.schema)
    return render(
        request,
        "pod.html",
        principal=principal,
        status_code=status_code,
        card=_card(services, pod),
        tables=tables,
        raw_schema=None if tables is not None else _raw_schema(pod.schema),
        grants=_managed_grants(services, principal, pod),
        roles=ROLES,
        presets=PRESETS,
        error=error,
    )


@router.get("/pods/{owner}/{name}")
def pod_page(request: Request, principal: WebUser, owner: Name, name: Name) -> Response:
    """A pod's description, status and schema; its grants for those who manage it."""
    return _pod_page(request, principal, owner, name)


def _change_grant(
    request: Request, principal: Principal, pod_id: str, user: str, role: str, *, give: bool
) -> Response:
    services = get_services(request)
    owner, _, name = pod_id.partition("/")
    change = services.access.grant if give else services.access.revoke
    try:
        change(principal, pod_id, user.strip(), role, services.now())
    except HubError as exc:
        if exc.code not in _FORM_ERRORS:
            raise
        message = exc.detail or CATALOGUE[exc.code].title
        return _pod_page(request, principal, owner, name, error=message, status_code=exc.status)
    return RedirectResponse(f"/pods/{pod_id}#access", status_code=303)


@router.post("/pods/{owner}/{name}/grants", dependencies=[SameOrigin])
def grant(
    request: Request,
    principal: CsrfUser,
    *,
    owner: Name,
    name: Name,
    user: UserField,
    role: RoleField,
) -> Response:
    """Give a user a role (or a preset's roles) on the pod."""
    return _change_grant(request, principal, f"{owner}/{name}", user, role, give=True)


@router.post("/pods/{owner}/{name}/revoke", dependencies=[SameOrigin])
def revoke(
    request: Request,
    principal: CsrfUser,
    *,
    owner: Name,
    name: Name,
    user: UserField,
    role: RoleField,
) -> Response:
    """Take a role away from a user."""
    return _change_grant(request, principal, f"{owner}/{name}", user, role, give=False)
