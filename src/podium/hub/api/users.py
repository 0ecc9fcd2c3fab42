"""``/api/v1/users`` and ``/api/v1/api-keys``: accounts and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from podium.hub.accounts import Principal
from podium.hub.api.auth import NO_STORE
from podium.hub.api.convert import api_key_out, user_out
from podium.hub.api.deps import Caller, Services, require_admin
from podium.hub.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, UserCreate, UserOut

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require_admin)]


@router.get("/users/me", response_model=UserOut, summary="Who am I")
def me(services: Services, caller: Caller) -> UserOut:
    """The authenticated user."""
    return user_out(services.accounts.require_user(caller.name))


@router.get("/users", response_model=list[UserOut], summary="List users (admin)")
def list_users(services: Services, _: Admin) -> list[UserOut]:
    """Every account."""
    return [user_out(u) for u in services.store.list_users()]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user (admin)")
def create_user(services: Services, _: Admin, body: UserCreate) -> UserOut:
    """A new account with an argon2id-hashed password."""
    user = services.accounts.create_user(
        body.name, body.password, is_admin=body.is_admin, now=services.now()
    )
    return user_out(user)


@router.post(
    "/api-keys", response_model=ApiKeyCreated, status_code=201, summary="Create an API key"
)
def create_api_key(
    services: Services, caller: Caller, body: ApiKeyCreate, response: Response
) -> ApiKeyCreated:
    """A new API key for the caller. The ``key`` is in this answer only: store it now."""
    key, full = services.accounts.create_api_key(caller.name, body.name, services.now())
    response.headers.update(NO_STORE)  # the answer holds a secret: no cache may keep it
    return ApiKeyCreated(**api_key_out(key).model_dump(), key=full)


@router.get("/api-keys", response_model=list[ApiKeyOut], summary="List your API keys")
def list_api_keys(services: Services, caller: Caller) -> list[ApiKeyOut]:
    """The caller's keys, revoked ones included, without the keys themselves."""
    return [api_key_out(k) for k in services.store.list_api_keys(caller.name)]


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_api_key(
    services: Services, caller: Caller, key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]
) -> Response:
    """The key stops working at once."""
    services.accounts.revoke_api_key(caller, key_id, services.now())
    return Response(status_code=204)
