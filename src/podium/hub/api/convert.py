"""Records to API bodies (one function per record type)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from podium.hub.access import Decision
from podium.hub.models import (
    ApiKey,
    AuditEvent,
    Grant,
    KeyPurpose,
    Pod,
    Project,
    ProjectTask,
    PublicKey,
    UsageLimit,
    User,
)
from podium.hub.registry import Registry
from podium.hub.schemas import (
    ApiKeyOut,
    AuditEventOut,
    DecisionOut,
    GrantOut,
    LimitOut,
    PodOut,
    ProjectOut,
    ProjectTaskOut,
    PublicKeyOut,
    UserOut,
)


def user_out(user: User) -> UserOut:
    return UserOut(name=user.name, is_admin=user.is_admin, created_at=user.created_at)


def api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=key.key_id,
        name=key.name,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def public_key_out(key: PublicKey) -> PublicKeyOut:
    return PublicKeyOut(
        key_id=key.key_id,
        owner=key.owner,
        purpose=key.purpose.value,
        algorithm="Ed25519" if key.purpose == KeyPurpose.SIGNING else "X25519",
        public_key=key.public_key,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def pod_out(
    pod: Pod, registry: Registry, now: datetime, *, keys: list[PublicKey] | None = None
) -> PodOut:
    status: Literal["online", "offline", "archived"] = "archived"
    if not pod.archived:
        status = "online" if registry.is_online(pod, now) else "offline"
    return PodOut(
        pod_id=pod.pod_id,
        owner=pod.owner,
        name=pod.name,
        display_name=pod.display_name,
        description=pod.description,
        schema_=pod.schema,
        schema_hash=pod.schema_hash,
        number_of_records=pod.number_of_records,
        status=status,
        last_heartbeat_at=pod.last_heartbeat_at,
        created_at=pod.created_at,
        updated_at=pod.updated_at,
        keys=[public_key_out(k) for k in keys or []],
    )


def grant_out(grant: Grant) -> GrantOut:
    return GrantOut(
        pod_id=grant.pod_id,
        user=grant.user,
        role=grant.role,
        granted_by=grant.granted_by,
        created_at=grant.created_at,
    )


def limit_out(limit: UsageLimit) -> LimitOut:
    return LimitOut(
        pod_id=limit.pod_id,
        user=limit.user,
        model=limit.model,
        max_inferences=limit.max_inferences,
        set_by=limit.set_by,
        created_at=limit.created_at,
    )


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(
        name=project.name,
        owner=project.owner,
        display_name=project.display_name,
        description=project.description,
        created_at=project.created_at,
    )


def project_task_out(task: ProjectTask) -> ProjectTaskOut:
    return ProjectTaskOut(
        task_hash=task.task_hash,
        description=task.description,
        approved_by=task.approved_by,
        created_at=task.created_at,
    )


def decision_out(decision: Decision) -> DecisionOut:
    return DecisionOut(
        decision="ACCEPT" if decision.accept else "REFUSE",
        reason=None if decision.reason is None else decision.reason.value,
        message=decision.message,
        roles_required=decision.roles_required,
        roles_held=decision.roles_held,
        limits=[limit_out(limit) for limit in decision.limits],
        via=decision.via,
    )


def audit_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        event_id=event.event_id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        pod_id=event.pod_id,
        subject=event.subject,
        outcome=event.outcome,
        detail=event.detail,
    )
