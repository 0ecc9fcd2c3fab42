"""The access manager: roles on pods, projects, limits, decisions and the audit log.

A modeller may run a task on a pod when the pod's access manager answers ACCEPT, and the
pod's own local policy agrees. The hub answers ACCEPT when one of these holds:

1. the modeller owns the pod (being a hub admin is not enough: running tasks on someone
   else's data takes a grant, which the audit log records);
2. the modeller holds, on that pod, every role the protocol and its algorithms need
   (``admin`` on a pod counts as every role);
3. the request names a project the modeller belongs to, the pod is in that project, and
   the task's hash is approved in it.

Otherwise it refuses with one specific reason. Every decision and every change to grants,
limits and projects is written to the audit log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from podium.hub.accounts import Principal
from podium.hub.errors import ErrorCode, HubError
from podium.hub.models import (
    AuditEvent,
    Grant,
    Pod,
    Project,
    ProjectTask,
    UsageLimit,
    is_valid_name,
)
from podium.hub.registry import Registry, split_pod_id
from podium.hub.store import AlreadyExistsError, HubStore, NewAuditEvent

__all__ = [
    "ALGORITHM_ROLES",
    "PRESETS",
    "PROTOCOL_ROLES",
    "ROLES",
    "AccessManager",
    "Decision",
    "DecisionRequest",
    "Refusal",
    "roles_for",
]

_log = logging.getLogger("podium.hub.access")

#: Every role, and what it lets a user do on a pod.
ROLES: dict[str, str] = {
    "viewer": "see the pod and its schema",
    "sql": "run SQL queries and get row-level or aggregate results",
    "private-sql": "run differentially private SQL queries",
    "statistics": "compute summary statistics",
    "psi": "run private set intersection",
    "train": "train models (federated averaging)",
    "evaluate": "evaluate models",
    "infer": "run model inference",
    "admin": "every role, and manage access to the pod",
}

#: Bundles of roles, named after Bitfount's modeller roles.
PRESETS: dict[str, tuple[str, ...]] = {
    "general-modeller": ("viewer", "sql", "statistics", "train", "evaluate", "infer"),
    "dp-modeller": ("viewer", "private-sql", "statistics"),
    "super-modeller": (
        "viewer",
        "sql",
        "private-sql",
        "statistics",
        "psi",
        "train",
        "evaluate",
        "infer",
    ),
}


def _key(name: str) -> str:
    """Algorithm and protocol names compare without case, ``_`` or ``-``, and without
    Bitfount's ``bitfount.`` prefix (task files written for Bitfount carry it)."""
    return re.sub(r"[^a-z0-9]", "", name.lower().removeprefix("bitfount."))


#: The role each algorithm needs (Bitfount's names and Podium's own).
ALGORITHM_ROLES: dict[str, str] = {
    _key(name): role
    for names, role in (
        (("SqlQuery", "Sql", "HuggingFaceSqlQuery"), "sql"),
        (("PrivateSqlQuery", "PrivateSql", "DPSqlQuery"), "private-sql"),
        (
            (
                "Statistics",
                "SummaryStatistics",
                "DescriptiveStatistics",
                "Histogram",
                "ColumnAverage",
            ),
            "statistics",
        ),
        (("ComputeIntersectionRSA", "PrivateSetIntersection", "PSI"), "psi"),
        (
            ("FederatedModelTraining", "ModelTraining", "ModelTrainingAndEvaluation", "Train"),
            "train",
        ),
        (("ModelEvaluation", "Evaluate", "Evaluation"), "evaluate"),
        (("ModelInference", "Inference", "CSVReportAlgorithm", "CSVReport"), "infer"),
    )
    for name in names
}

#: The role each protocol needs, on top of its algorithms' roles.
PROTOCOL_ROLES: dict[str, str | None] = {
    _key("ResultsOnly"): None,
    _key("FederatedAveraging"): "train",
    _key("PrivateSetIntersection"): "psi",
    _key("InferenceAndCSVReport"): "infer",
    _key("InferenceAndReturnCSVReport"): "infer",
}


class Refusal(StrEnum):
    """Why the access manager refused a task."""

    UNKNOWN_MODELLER = "unknown-modeller"
    POD_NOT_FOUND = "pod-not-found"
    POD_ARCHIVED = "pod-archived"
    UNKNOWN_PROTOCOL = "unknown-protocol"
    UNKNOWN_ALGORITHM = "unknown-algorithm"
    NO_ACCESS = "no-access"
    MISSING_ROLE = "missing-role"
    PROJECT_NOT_FOUND = "project-not-found"
    NOT_PROJECT_MEMBER = "not-project-member"
    POD_NOT_IN_PROJECT = "pod-not-in-project"
    TASK_NOT_APPROVED = "task-not-approved"


def roles_for(protocol: str, algorithms: list[str]) -> tuple[set[str], list[str], list[str]]:
    """The roles a task needs: (roles, unknown protocols, unknown algorithms)."""
    needed: set[str] = set()
    unknown_protocols: list[str] = []
    unknown_algorithms: list[str] = []
    if _key(protocol) not in PROTOCOL_ROLES:
        unknown_protocols.append(protocol)
    elif (role := PROTOCOL_ROLES[_key(protocol)]) is not None:
        needed.add(role)
    for algorithm in algorithms:
        if _key(algorithm) in ALGORITHM_ROLES:
            needed.add(ALGORITHM_ROLES[_key(algorithm)])
        else:
            unknown_algorithms.append(algorithm)
    return needed, unknown_protocols, unknown_algorithms


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """What a pod asks: may this modeller run this task here?"""

    modeller: str
    pod_id: str
    protocol: str
    algorithms: list[str]
    task_hash: str
    project: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The access manager's answer."""

    accept: bool
    reason: Refusal | None = None
    message: str = ""
    roles_required: list[str] = field(default_factory=list)
    roles_held: list[str] = field(default_factory=list)
    limits: list[UsageLimit] = field(default_factory=list)
    via: str = ""  # "owner", "roles", "project" when accepted


def expand_roles(role_or_preset: str) -> tuple[str, ...]:
    """A role or a preset's roles; ``unknown-role`` otherwise."""
    if role_or_preset in ROLES:
        return (role_or_preset,)
    if role_or_preset in PRESETS:
        return PRESETS[role_or_preset]
    known = ", ".join([*ROLES, *PRESETS])
    raise HubError(ErrorCode.UNKNOWN_ROLE, f"{role_or_preset!r} is not one of: {known}")


class AccessManager:
    """Grants, limits, projects, decisions and the audit log."""

    def __init__(self, store: HubStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def _audit(
        self,
        principal: Principal,
        action: str,
        now: datetime,
        *,
        pod_id: str | None = None,
        subject: str | None = None,
        outcome: str = "ok",
        **detail: Any,
    ) -> NewAuditEvent:
        return NewAuditEvent(
            at=now,
            actor=principal.name,
            action=action,
            pod_id=pod_id,
            subject=subject,
            outcome=outcome,
            detail=detail,
        )

    def _managed_pod(self, principal: Principal, pod_id: str) -> Pod:
        """A pod the caller may manage access to: owner, hub admin, or pod ``admin``."""
        owner, name = split_pod_id(pod_id)
        pod = self.registry.require_pod(principal, owner, name)
        if principal.is_admin or pod.owner == principal.name:
            return pod
        held = {g.role for g in self.store.list_grants(pod_id=pod.pod_id, user=principal.name)}
        if "admin" not in held:
            raise HubError(ErrorCode.NOT_POD_OWNER)
        return pod

    # -- grants ------------------------------------------------------------------------

    def grant(
        self, principal: Principal, pod_id: str, user: str, role: str, now: datetime
    ) -> list[str]:
        """Give a role (or a preset's roles); the roles that were new."""
        roles = expand_roles(role)
        pod = self._managed_pod(principal, pod_id)
        _check_admin_role(principal, pod, roles, user, give=True)
        _require_user(self.store, user)
        added = []
        for r in roles:
            grant = Grant(pod.pod_id, user, r, principal.name, now)
            event = self._audit(principal, "grant", now, pod_id=pod.pod_id, subject=user, role=r)
            if self.store.add_grant(grant, event):
                added.append(r)
        _log.info("%s granted %s on %s to %s", principal.name, added, pod.pod_id, user)
        return added

    def revoke(
        self, principal: Principal, pod_id: str, user: str, role: str, now: datetime
    ) -> list[str]:
        """Take a role (or a preset's roles) away; the roles that were removed."""
        roles = expand_roles(role)
        pod = self._managed_pod(principal, pod_id)
        _check_admin_role(principal, pod, roles, user, give=False)
        removed = []
        for r in roles:
            event = self._audit(principal, "revoke", now, pod_id=pod.pod_id, subject=user, role=r)
            if self.store.remove_grant(pod.pod_id, user, r, event):
                removed.append(r)
        return removed

    def list_grants(
        self, principal: Principal, *, pod_id: str | None = None, user: str | None = None
    ) -> list[Grant]:
        """Grants on a pod (for those who manage it) or the caller's own grants."""
        if pod_id is not None:
            pod = self._managed_pod(principal, pod_id)
            return self.store.list_grants(pod_id=pod.pod_id, user=user)
        if user is not None and user != principal.name and not principal.is_admin:
            raise HubError(ErrorCode.FORBIDDEN, "you can list only your own grants")
        return self.store.list_grants(user=user or principal.name)

    # -- limits ------------------------------------------------------------------------

    def set_limit(
        self,
        principal: Principal,
        pod_id: str,
        user: str,
        *,
        model: str,
        max_inferences: int,
        now: datetime,
    ) -> UsageLimit:
        """Cap how many records ``user`` may run ``model``'s inference on (``*``: any)."""
        pod = self._managed_pod(principal, pod_id)
        _require_user(self.store, user)
        if max_inferences < 0:
            raise HubError(ErrorCode.VALIDATION_FAILED, "max_inferences must be >= 0")
        limit = UsageLimit(pod.pod_id, user, model, max_inferences, principal.name, now)
        event = self._audit(
            principal,
            "set-limit",
            now,
            pod_id=pod.pod_id,
            subject=user,
            model=model,
            max_inferences=max_inferences,
        )
        self.store.set_usage_limit(limit, event)
        return limit

    def remove_limit(
        self, principal: Principal, pod_id: str, user: str, model: str, now: datetime
    ) -> bool:
        """Remove a limit; whether there was one."""
        pod = self._managed_pod(principal, pod_id)
        event = self._audit(
            principal, "remove-limit", now, pod_id=pod.pod_id, subject=user, model=model
        )
        return self.store.remove_usage_limit(pod.pod_id, user, model, event)

    def list_limits(self, principal: Principal, pod_id: str) -> list[UsageLimit]:
        """Limits on a pod, for those who manage it."""
        pod = self._managed_pod(principal, pod_id)
        return self.store.list_usage_limits(pod.pod_id)

    # -- projects ----------------------------------------------------------------------

    def create_project(
        self, principal: Principal, name: str, display_name: str, description: str, now: datetime
    ) -> Project:
        """A new project owned by the caller."""
        if not is_valid_name(name):
            raise HubError(ErrorCode.VALIDATION_FAILED, f"{name!r} is not a valid project name")
        project = Project(name, principal.name, display_name or name, description, now)
        try:
            self.store.create_project(
                project, self._audit(principal, "create-project", now, subject=name)
            )
        except AlreadyExistsError as exc:
            raise HubError(ErrorCode.ALREADY_EXISTS, f"project {name!r} exists") from exc
        return project

    def _visible_project(self, principal: Principal, name: str) -> Project:
        project = self.store.get_project(name)
        if project is None or not (
            principal.is_admin
            or project.owner == principal.name
            or principal.name in self.store.list_project_members(name)
        ):
            raise HubError(ErrorCode.PROJECT_NOT_FOUND, f"no project {name!r}")
        return project

    def _owned_project(self, principal: Principal, name: str) -> Project:
        project = self._visible_project(principal, name)
        if project.owner != principal.name and not principal.is_admin:
            raise HubError(ErrorCode.FORBIDDEN, "only the project's owner can change it")
        return project

    def get_project(self, principal: Principal, name: str) -> Project:
        """A project the caller owns or belongs to."""
        return self._visible_project(principal, name)

    def list_projects(self, principal: Principal) -> list[Project]:
        """Projects the caller owns or belongs to (all, for an admin)."""
        return self.store.list_projects(member=None if principal.is_admin else principal.name)

    def set_member(
        self, principal: Principal, project: str, user: str, *, member: bool, now: datetime
    ) -> bool:
        """Add or remove a member (project owner only); whether anything changed."""
        self._owned_project(principal, project)
        if member:
            _require_user(self.store, user)
            event = self._audit(principal, "add-member", now, subject=user, project=project)
            return self.store.add_project_member(project, user, event)
        event = self._audit(principal, "remove-member", now, subject=user, project=project)
        return self.store.remove_project_member(project, user, event)

    def set_pod(
        self, principal: Principal, project: str, pod_id: str, *, member: bool, now: datetime
    ) -> bool:
        """Put a pod in a project or take it out. Only the pod's owner (or an admin) can,
        since it lets the project's approved tasks run on the pod. The owner may always
        take a pod out, even after being removed from the project's members."""
        owner, name = split_pod_id(pod_id)
        withdrawing = (
            not member
            and (principal.is_admin or owner == principal.name)
            and f"{owner}/{name}" in self.store.list_project_pods(project)
        )
        if not withdrawing:
            self._visible_project(principal, project)
        pod = self.registry.require_owned_pod(principal, owner, name)
        action = "add-pod" if member else "remove-pod"
        event = self._audit(principal, action, now, pod_id=pod.pod_id, project=project)
        if member:
            return self.store.add_project_pod(project, pod.pod_id, event)
        return self.store.remove_project_pod(project, pod.pod_id, event)

    def approve_task(
        self, principal: Principal, project: str, task_hash: str, description: str, now: datetime
    ) -> bool:
        """Approve a task definition, by hash, in a project (project owner only)."""
        self._owned_project(principal, project)
        if not re.fullmatch(r"[0-9a-f]{16,128}", task_hash):
            raise HubError(ErrorCode.VALIDATION_FAILED, "task_hash must be 16-128 hex digits")
        task = ProjectTask(project, task_hash, description, principal.name, now)
        event = self._audit(principal, "approve-task", now, project=project, task_hash=task_hash)
        return self.store.approve_project_task(task, event)

    def revoke_task(
        self, principal: Principal, project: str, task_hash: str, now: datetime
    ) -> bool:
        """Withdraw a task approval (project owner only)."""
        self._owned_project(principal, project)
        event = self._audit(principal, "revoke-task", now, project=project, task_hash=task_hash)
        return self.store.revoke_project_task(project, task_hash, event)

    # -- decisions ---------------------------------------------------------------------

    def decide(self, principal: Principal, request: DecisionRequest, now: datetime) -> Decision:
        """Answer a pod's question, and write the answer to the audit log. Only the pod's
        owner (the pod itself) or an admin may ask about a pod."""
        owner, _ = split_pod_id(request.pod_id)
        if principal.name != owner and not principal.is_admin:
            raise HubError(ErrorCode.NOT_POD_OWNER, "a pod can ask only about itself")
        decision = self._decide(request)
        self.store.append_audit(
            self._audit(
                principal,
                "decision",
                now,
                pod_id=request.pod_id,
                subject=request.modeller,
                outcome="accept" if decision.accept else str(decision.reason),
                protocol=request.protocol,
                algorithms=list(request.algorithms),
                task_hash=request.task_hash,
                project=request.project,
                via=decision.via,
            )
        )
        return decision

    def _decide(self, request: DecisionRequest) -> Decision:  # noqa: PLR0911 - one return per rule
        owner, name = split_pod_id(request.pod_id)
        modeller = self.store.get_user(request.modeller)
        if modeller is None or modeller.disabled:
            return _refuse(Refusal.UNKNOWN_MODELLER, f"no user {request.modeller!r}")
        pod = self.store.get_pod(owner, name)
        if pod is None:
            return _refuse(Refusal.POD_NOT_FOUND, f"no pod {request.pod_id}")
        if pod.archived:
            return _refuse(Refusal.POD_ARCHIVED, f"pod {request.pod_id} is archived")
        needed, bad_protocols, bad_algorithms = roles_for(request.protocol, request.algorithms)
        if bad_protocols:
            return _refuse(Refusal.UNKNOWN_PROTOCOL, f"unknown protocol {bad_protocols[0]!r}")
        if bad_algorithms:
            return _refuse(Refusal.UNKNOWN_ALGORITHM, f"unknown algorithm {bad_algorithms[0]!r}")
        limits = self.store.list_usage_limits(pod.pod_id, user=modeller.name)
        required = sorted(needed)
        if modeller.name == pod.owner:
            return Decision(True, roles_required=required, limits=limits, via="owner")
        if request.project is not None:
            return self._decide_in_project(request, pod, required, limits)
        held = {g.role for g in self.store.list_grants(pod_id=pod.pod_id, user=modeller.name)}
        if not held:
            return _refuse(Refusal.NO_ACCESS, f"{modeller.name} has no role on {pod.pod_id}")
        missing = sorted(needed - held) if "admin" not in held else []
        if missing:
            return Decision(
                False,
                Refusal.MISSING_ROLE,
                f"missing role(s): {', '.join(missing)}",
                required,
                sorted(held),
            )
        return Decision(True, None, "", required, sorted(held), limits, via="roles")

    def _decide_in_project(
        self, request: DecisionRequest, pod: Pod, required: list[str], limits: list[UsageLimit]
    ) -> Decision:
        assert request.project is not None
        project = self.store.get_project(request.project)
        if project is None:
            return _refuse(Refusal.PROJECT_NOT_FOUND, f"no project {request.project!r}")
        # The pod first: a pod may learn who belongs to a project only if it is in it.
        if pod.pod_id not in self.store.list_project_pods(project.name):
            return _refuse(Refusal.POD_NOT_IN_PROJECT, f"{pod.pod_id} is not in {project.name}")
        members = self.store.list_project_members(project.name)
        if request.modeller != project.owner and request.modeller not in members:
            return _refuse(Refusal.NOT_PROJECT_MEMBER, f"not a member of {project.name}")
        approved = {t.task_hash for t in self.store.list_project_tasks(project.name)}
        if request.task_hash not in approved:
            return _refuse(Refusal.TASK_NOT_APPROVED, f"task not approved in {project.name}")
        return Decision(True, roles_required=required, limits=limits, via="project")

    # -- audit -------------------------------------------------------------------------

    def audit_log(
        self,
        principal: Principal,
        *,
        pod_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events the caller may read: an admin all, others those of pods they
        manage (and events they caused)."""
        if pod_id is not None:
            pod = self._managed_pod(principal, pod_id)
            return self.store.list_audit(pod_ids=[pod.pod_id], limit=limit, before_id=before_id)
        if principal.is_admin:
            return self.store.list_audit(limit=limit, before_id=before_id)
        owned = [
            p.pod_id
            for p in self.registry.list_pods(
                principal, owner=principal.name, include_archived=True, limit=10_000
            )
        ]
        mine = self.store.list_audit(pod_ids=owned, limit=limit, before_id=before_id)
        acted = self.store.list_audit(actor=principal.name, limit=limit, before_id=before_id)
        merged = {e.event_id: e for e in [*mine, *acted]}
        return sorted(merged.values(), key=lambda e: e.event_id, reverse=True)[:limit]


def _refuse(reason: Refusal, message: str) -> Decision:
    return Decision(False, reason, message)


def _check_admin_role(
    principal: Principal, pod: Pod, roles: tuple[str, ...], user: str, *, give: bool
) -> None:
    """Only the pod's owner (or a hub admin) gives or takes ``admin``: a pod admin must
    not appoint admins that outlast their own grant, nor remove the owner's other admins.
    A pod admin may still give up their own ``admin``."""
    if "admin" not in roles or principal.is_admin or pod.owner == principal.name:
        return
    if not give and user == principal.name:
        return
    raise HubError(
        ErrorCode.NOT_POD_OWNER, "only the pod's owner can grant or revoke the admin role"
    )


def _require_user(store: HubStore, user: str) -> None:
    found = store.get_user(user)
    if found is None or found.disabled:
        raise HubError(ErrorCode.USER_NOT_FOUND, f"no user {user!r}")
