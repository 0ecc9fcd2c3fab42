"""``/api/v1/keys``: the public key registry (Ed25519 signing, X25519 encryption)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from podium.hub.api.convert import public_key_out
from podium.hub.api.deps import Caller, Services
from podium.hub.models import KeyPurpose
from podium.hub.schemas import PublicKeyIn, PublicKeyOut

router = APIRouter(prefix="/keys", tags=["keys"])

#: A user ``alice`` or a pod ``alice/census``.
OWNER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}(/[a-z0-9][a-z0-9_-]{0,62})?$"
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]


@router.post("", response_model=PublicKeyOut, status_code=201, summary="Register a public key")
def register_key(services: Services, caller: Caller, body: PublicKeyIn) -> PublicKeyOut:
    """Register a key of yourself or of one of your pods. The newest live key of a purpose
    is the current one; older keys stay verifiable until revoked."""
    key = services.registry.register_key(
        caller, body.owner, KeyPurpose(body.purpose), body.public_key, services.now()
    )
    return public_key_out(key)


@router.get("", response_model=list[PublicKeyOut], summary="Look up keys by owner")
def list_keys(
    services: Services,
    _: Caller,
    owner: Annotated[str, Query(pattern=OWNER_PATTERN, examples=["alice", "alice/census"])],
    purpose: Literal["signing", "encryption"] | None = None,
    include_revoked: bool = False,
) -> list[PublicKeyOut]:
    """An owner's keys (a user ``alice`` or a pod ``alice/census``), newest first."""
    keys = services.registry.list_keys(
        owner,
        None if purpose is None else KeyPurpose(purpose),
        include_revoked=include_revoked,
    )
    return [public_key_out(k) for k in keys]


@router.get("/{key_id}", response_model=PublicKeyOut, summary="Look up a key by id")
def get_key(services: Services, _: Caller, key_id: KeyId) -> PublicKeyOut:
    """One key, revoked or not (``revoked_at`` says)."""
    return public_key_out(services.registry.get_key(key_id))


@router.delete("/{key_id}", response_model=PublicKeyOut, summary="Revoke a key")
def revoke_key(services: Services, caller: Caller, key_id: KeyId) -> PublicKeyOut:
    """Signatures made after revocation are no longer accepted by pods."""
    return public_key_out(services.registry.revoke_key(caller, key_id, services.now()))
