"""The key registry and the pod registry, with who may see and change what.

Visibility: a pod is visible to its owner, hub admins, and users holding any role on it.
Everyone else gets ``pod-not-found``, the same answer as for a pod that does not exist, so
the registry does not leak which pods exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from podium.core.crypto import b64url_decode, key_id_for
from podium.core.crypto import b64url_encode as _encode
from podium.hub.accounts import Principal
from podium.hub.config import HubConfig
from podium.hub.errors import ErrorCode, HubError
from podium.hub.models import KeyPurpose, Pod, PublicKey, is_valid_name
from podium.hub.store import AlreadyExistsError, HubStore, PodQuery

__all__ = ["PodRegistration", "Registry", "decode_public_key", "key_id_for"]

_log = logging.getLogger("podium.hub.registry")


#: Ed25519's field prime and curve constant (RFC 8032 section 5.1).
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P


def decode_public_key(purpose: KeyPurpose, encoded: str) -> bytes:
    """The raw 32 bytes of a base64url public key, checked to load as ``purpose``'s
    algorithm (Ed25519 for signing, X25519 for encryption)."""
    try:
        raw = b64url_decode(encoded)
    except ValueError as exc:
        raise HubError(ErrorCode.INVALID_PUBLIC_KEY, "not base64url") from exc
    if len(raw) != 32:
        raise HubError(ErrorCode.INVALID_PUBLIC_KEY, f"{len(raw)} bytes, expected 32")
    if purpose == KeyPurpose.SIGNING and not _is_ed25519_point(raw):
        # OpenSSL loads any 32 bytes as an Ed25519 key; check the point is on the curve.
        raise HubError(ErrorCode.INVALID_PUBLIC_KEY, "not a point on Ed25519")
    try:
        if purpose == KeyPurpose.SIGNING:
            Ed25519PublicKey.from_public_bytes(raw)
        else:
            X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise HubError(ErrorCode.INVALID_PUBLIC_KEY) from exc
    return raw


def _is_ed25519_point(raw: bytes) -> bool:
    """Whether 32 bytes decode to a point of Ed25519 (RFC 8032 section 5.1.3): ``y`` below
    the field prime, ``x**2 = (y**2 - 1) / (d*y**2 + 1)`` a square, and no sign bit on
    ``x = 0``."""
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return False
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return sign == 0
    return pow(x2, (_P - 1) // 2, _P) == 1


@dataclass(frozen=True, slots=True)
class PodRegistration:
    """What a pod sends when it registers or updates itself."""

    display_name: str
    description: str = ""
    schema: dict[str, Any] | None = None
    schema_hash: str = ""
    number_of_records: int | None = None
    signing_key: str | None = None
    encryption_key: str | None = None


def split_pod_id(pod_id: str) -> tuple[str, str]:
    """``owner/name`` into its two parts; ``validation-failed`` if malformed."""
    owner, sep, name = pod_id.partition("/")
    if not sep or not is_valid_name(owner) or not is_valid_name(name):
        raise HubError(
            ErrorCode.VALIDATION_FAILED, f"{pod_id!r} is not a pod identifier 'owner/name'"
        )
    return owner, name


class Registry:
    """Public keys and pods."""

    def __init__(self, store: HubStore, config: HubConfig) -> None:
        self.store = store
        self.config = config

    # -- keys --------------------------------------------------------------------------

    def _may_manage_keys_of(self, principal: Principal, owner: str) -> bool:
        if principal.is_admin or owner == principal.name:
            return True
        return owner.partition("/")[0] == principal.name

    def register_key(
        self, principal: Principal, owner: str, purpose: KeyPurpose, encoded: str, now: datetime
    ) -> PublicKey:
        """Register a public key of the caller or of one of the caller's pods. Registering
        the same key again returns the existing record (idempotent)."""
        if "/" in owner:
            pod_owner, pod_name = split_pod_id(owner)
            if not self._may_manage_keys_of(principal, owner):
                raise HubError(ErrorCode.FORBIDDEN, "you can register keys only for your pods")
            self.require_pod(principal, pod_owner, pod_name)
        elif not is_valid_name(owner):
            raise HubError(ErrorCode.VALIDATION_FAILED, f"{owner!r} is not a user or pod")
        elif not self._may_manage_keys_of(principal, owner):
            raise HubError(ErrorCode.FORBIDDEN, "you can register keys only for yourself")
        raw = decode_public_key(purpose, encoded)
        key = PublicKey(
            key_id=key_id_for(purpose, raw),
            owner=owner,
            purpose=purpose,
            public_key=_encode(raw),
            created_at=now,
        )
        try:
            self.store.add_public_key(key)
        except AlreadyExistsError as exc:
            existing = self.store.get_public_key(key.key_id)
            if existing is None or existing.owner != owner or existing.revoked_at is not None:
                raise HubError(
                    ErrorCode.ALREADY_EXISTS, "this key is registered to another owner or revoked"
                ) from exc
            return existing
        _log.info("registered %s key %s for %s", purpose.value, key.key_id, owner)
        return key

    def get_key(self, key_id: str) -> PublicKey:
        """A key by id, revoked or not (a revoked key still verifies old signatures, and
        the record says when it was revoked)."""
        key = self.store.get_public_key(key_id)
        if key is None:
            raise HubError(ErrorCode.KEY_NOT_FOUND, f"no key {key_id!r}")
        return key

    def list_keys(
        self, owner: str, purpose: KeyPurpose | None, *, include_revoked: bool
    ) -> list[PublicKey]:
        """An owner's keys, newest (the current one) first."""
        return self.store.list_public_keys(owner, purpose=purpose, include_revoked=include_revoked)

    def revoke_key(self, principal: Principal, key_id: str, now: datetime) -> PublicKey:
        """Revoke one of the caller's keys (or an admin any key)."""
        key = self.get_key(key_id)
        if not self._may_manage_keys_of(principal, key.owner):
            raise HubError(ErrorCode.FORBIDDEN, "you can revoke only your own keys")
        self.store.revoke_public_key(key_id, now)
        return self.get_key(key_id)

    # -- pods --------------------------------------------------------------------------

    def can_see(self, principal: Principal, pod: Pod) -> bool:
        """Whether the caller may see a pod: owner, admin, or holder of any role on it."""
        if principal.is_admin or pod.owner == principal.name:
            return True
        return bool(self.store.list_grants(pod_id=pod.pod_id, user=principal.name))

    def require_pod(self, principal: Principal, owner: str, name: str) -> Pod:
        """A pod the caller may see; ``pod-not-found`` otherwise."""
        pod = self.store.get_pod(owner, name)
        if pod is None or not self.can_see(principal, pod):
            raise HubError(ErrorCode.POD_NOT_FOUND, f"no pod {owner}/{name}")
        return pod

    def require_owned_pod(self, principal: Principal, owner: str, name: str) -> Pod:
        """A pod the caller owns (or any pod, for an admin)."""
        pod = self.require_pod(principal, owner, name)
        if not principal.is_admin and pod.owner != principal.name:
            raise HubError(ErrorCode.NOT_POD_OWNER)
        return pod

    def register_pod(
        self, principal: Principal, owner: str, name: str, reg: PodRegistration, now: datetime
    ) -> tuple[Pod, bool]:
        """Register a pod or update its details; returns (pod, created). Only the owner
        (or an admin) may; registering an archived pod again brings it back."""
        if not is_valid_name(owner) or not is_valid_name(name):
            raise HubError(
                ErrorCode.VALIDATION_FAILED,
                "owner and pod names are 1-63 lower-case letters, digits, '-' or '_'",
            )
        if not principal.is_admin and owner != principal.name:
            raise HubError(ErrorCode.NOT_POD_OWNER, "you can register pods only as yourself")
        if self.store.get_user(owner) is None:
            raise HubError(ErrorCode.USER_NOT_FOUND, f"no user {owner!r}")
        keys = [
            (purpose, encoded)
            for purpose, encoded in (
                (KeyPurpose.SIGNING, reg.signing_key),
                (KeyPurpose.ENCRYPTION, reg.encryption_key),
            )
            if encoded is not None
        ]
        for purpose, encoded in keys:
            decode_public_key(purpose, encoded)  # a bad key refuses the whole registration
        existing = self.store.get_pod(owner, name)
        fields: dict[str, Any] = {
            "display_name": reg.display_name or name,
            "description": reg.description,
            "schema": reg.schema if reg.schema is not None else {},
            "schema_hash": reg.schema_hash,
            "number_of_records": reg.number_of_records,
            "updated_at": now,
            "archived": False,
        }
        if existing is None:
            pod = Pod(owner=owner, name=name, created_at=now, **fields)
        else:
            pod = replace(existing, **fields)
        self.store.save_pod(pod)
        for purpose, encoded in keys:
            self.register_key(principal, pod.pod_id, purpose, encoded, now)
        _log.info("%s pod %s", "registered" if existing is None else "updated", pod.pod_id)
        return pod, existing is None

    def list_pods(
        self,
        principal: Principal,
        *,
        text: str | None = None,
        owner: str | None = None,
        include_archived: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Pod]:
        """Pods the caller may see, matching the filters."""
        return self.store.list_pods(
            PodQuery(
                visible_to=None if principal.is_admin else principal.name,
                owner=owner,
                text=text or None,
                include_archived=include_archived,
                limit=limit,
                offset=offset,
            )
        )

    def heartbeat(self, principal: Principal, owner: str, name: str, now: datetime) -> None:
        """Mark a pod online. Only its owner (the pod runs with the owner's key) may."""
        if owner != principal.name and not principal.is_admin:
            # Same answer as for a missing pod: heartbeats don't probe the registry.
            raise HubError(ErrorCode.POD_NOT_FOUND, f"no pod {owner}/{name}")
        if not self.store.record_heartbeat(owner, name, now):
            pod = self.store.get_pod(owner, name)
            if pod is not None and pod.archived:
                raise HubError(ErrorCode.POD_ARCHIVED, f"pod {owner}/{name} is archived")
            raise HubError(ErrorCode.POD_NOT_FOUND, f"no pod {owner}/{name}")

    def archive_pod(self, principal: Principal, owner: str, name: str, now: datetime) -> Pod:
        """Archive a pod: hidden from lists, heartbeats refused, decisions refused."""
        pod = self.require_owned_pod(principal, owner, name)
        archived = replace(pod, archived=True, updated_at=now)
        self.store.save_pod(archived)
        return archived

    def is_online(self, pod: Pod, now: datetime) -> bool:
        """Online: not archived and a heartbeat within the last three intervals."""
        if pod.archived or pod.last_heartbeat_at is None:
            return False
        return (now - pod.last_heartbeat_at).total_seconds() <= self.config.offline_after_s
