"""``/api/v1/pods``: the pod registry, heartbeats, and access to each pod."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from podium.hub.api.convert import grant_out, limit_out, pod_out
from podium.hub.api.deps import Caller, Credential, Services, invalid_token_header
from podium.hub.models import NAME_PATTERN
from podium.hub.registry import PodRegistration
from podium.hub.schemas import (
    NO_NUL,
    GrantChange,
    GrantIn,
    GrantOut,
    HeartbeatOut,
    LimitIn,
    LimitOut,
    PodIn,
    PodList,
    PodOut,
)

router = APIRouter(prefix="/pods", tags=["pods"])

Owner = Annotated[str, Path(pattern=NAME_PATTERN)]
PodName = Annotated[str, Path(pattern=NAME_PATTERN)]
UserName = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.get("", response_model=PodList, summary="List and search pods")
def list_pods(
    services: Services,
    caller: Caller,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="text to search for")
    ] = None,
    owner: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    include_archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PodList:
    """Pods you own or hold a role on (every pod, for an admin)."""
    pods = services.registry.list_pods(
        caller, text=q, owner=owner, include_archived=include_archived, limit=limit, offset=offset
    )
    now = services.now()
    return PodList(pods=[pod_out(p, services.registry, now) for p in pods])


@router.put(
    "/{owner}/{name}",
    response_model=PodOut,
    responses={201: {"model": PodOut, "description": "The pod was registered."}},
    summary="Register or update a pod",
)
def register_pod(
    services: Services, caller: Caller, owner: Owner, name: PodName, body: PodIn, response: Response
) -> PodOut:
    """Only the owner (or an admin). Answers 201 when the pod is new, 200 on update."""
    now = services.now()
    pod, created = services.registry.register_pod(
        caller,
        owner,
        name,
        PodRegistration(
            display_name=body.display_name,
            description=body.description,
            schema=body.schema_,
            schema_hash=body.schema_hash,
            number_of_records=body.number_of_records,
            signing_key=body.signing_key,
            encryption_key=body.encryption_key,
        ),
        now,
    )
    response.status_code = 201 if created else 200
    keys = services.registry.list_keys(pod.pod_id, None, include_revoked=False)
    return pod_out(pod, services.registry, now, keys=keys)


@router.get("/{owner}/{name}", response_model=PodOut, summary="A pod's details")
def get_pod(services: Services, caller: Caller, owner: Owner, name: PodName) -> PodOut:
    """Details, schema and current public keys of a pod you may see."""
    pod = services.registry.require_pod(caller, owner, name)
    keys = services.registry.list_keys(pod.pod_id, None, include_revoked=False)
    return pod_out(pod, services.registry, services.now(), keys=keys)


@router.post("/{owner}/{name}/heartbeat", response_model=HeartbeatOut, summary="Mark a pod online")
async def heartbeat(
    services: Services, credential: Credential, owner: Owner, name: PodName
) -> HeartbeatOut:
    """A pod sends one every interval; three missed ones show it offline. The hot path:
    one worker-thread hop, and one statement when the pod uses an API key."""
    with invalid_token_header():
        await run_in_threadpool(services.heartbeat, credential, owner, name)
    return HeartbeatOut(status="online", next_heartbeat_s=services.config.heartbeat_interval_s)


@router.post("/{owner}/{name}/archive", response_model=PodOut, summary="Archive a pod")
def archive_pod(services: Services, caller: Caller, owner: Owner, name: PodName) -> PodOut:
    """Hide a pod; registering it again brings it back."""
    pod = services.registry.archive_pod(caller, owner, name, services.now())
    return pod_out(pod, services.registry, services.now())


@router.get("/{owner}/{name}/grants", response_model=list[GrantOut], summary="Roles on a pod")
def list_grants(services: Services, caller: Caller, owner: Owner, name: PodName) -> list[GrantOut]:
    """Who holds which role (for the owner, pod admins and hub admins)."""
    grants = services.access.list_grants(caller, pod_id=f"{owner}/{name}")
    return [grant_out(g) for g in grants]


@router.post(
    "/{owner}/{name}/grants", response_model=GrantChange, status_code=201, summary="Grant a role"
)
def grant(
    services: Services, caller: Caller, owner: Owner, name: PodName, body: GrantIn
) -> GrantChange:
    """Give a role or a preset's roles; ``changed`` lists the roles that were new."""
    pod_id = f"{owner}/{name}"
    added = services.access.grant(caller, pod_id, body.user, body.role, services.now())
    return GrantChange(pod_id=pod_id, user=body.user, changed=added)


@router.delete(
    "/{owner}/{name}/grants/{user}/{role}", response_model=GrantChange, summary="Revoke a role"
)
def revoke(
    services: Services,
    caller: Caller,
    owner: Owner,
    name: PodName,
    user: UserName,
    role: Annotated[str, Path(max_length=50)],
) -> GrantChange:
    """Take a role (or a preset's roles) away; ``changed`` lists the roles removed."""
    pod_id = f"{owner}/{name}"
    removed = services.access.revoke(caller, pod_id, user, role, services.now())
    return GrantChange(pod_id=pod_id, user=user, changed=removed)


@router.get("/{owner}/{name}/limits", response_model=list[LimitOut], summary="Usage limits")
def list_limits(services: Services, caller: Caller, owner: Owner, name: PodName) -> list[LimitOut]:
    """Model inference limits on a pod."""
    return [limit_out(x) for x in services.access.list_limits(caller, f"{owner}/{name}")]


@router.put("/{owner}/{name}/limits/{user}", response_model=LimitOut, summary="Set a limit")
def set_limit(
    services: Services, caller: Caller, owner: Owner, name: PodName, user: UserName, body: LimitIn
) -> LimitOut:
    """Cap how many records a user may run a model's inference on."""
    limit = services.access.set_limit(
        caller,
        f"{owner}/{name}",
        user,
        model=body.model,
        max_inferences=body.max_inferences,
        now=services.now(),
    )
    return limit_out(limit)


@router.delete("/{owner}/{name}/limits/{user}/{model}", status_code=204, summary="Remove a limit")
def remove_limit(
    services: Services,
    caller: Caller,
    owner: Owner,
    name: PodName,
    user: UserName,
    model: Annotated[str, Path(max_length=200, pattern=NO_NUL)],
) -> Response:
    """Remove a limit (no error when none was set)."""
    services.access.remove_limit(caller, f"{owner}/{name}", user, model, services.now())
    return Response(status_code=204)
