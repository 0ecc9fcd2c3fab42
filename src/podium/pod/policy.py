"""A pod's local policy: the owner's own rules, applied after the hub's access manager.

A pod admits a task when the hub's access manager accepts it *and* the pod's policy
allows it (DESIGN.md section 3). The policy is an optional YAML file::

    allowed_users: [bob, carol]          # absent: anyone the hub allowed
    denied_users: [mallory]
    allowed_roles: [sql, statistics]     # roles the task needs (the hub's names)
    allowed_protocols: [ResultsOnly]     # 'bitfount.' prefix and case do not matter
    allowed_algorithms: [SqlQuery, bitfount.PrivateSqlQuery]
    min_group_size: 10
    dp: {max_epsilon_per_task: 1.0, total_epsilon_per_modeller: 5.0}
    allowed_model_hashes: []
    max_concurrent_tasks: 4

Typical use::

    policy = load_policy("policy.yaml")             # or PodPolicy() for no file
    decision = decide(policy, summary, approved_pods=config.approved_pods,
                      spent_epsilon=ledger_epsilon, spent_delta=ledger_delta)
    if not decision.allowed:
        reply = JobReject(f"{decision.reason}: {decision.message}")  # JOB_REJECT

:func:`decide` runs the checks in :data:`CHECK_ORDER`; the first that fails is the answer.
Messages say what was refused and why, never the policy's lists. See docs/pod-policy.md.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from podium.config.loader import (
    YamlDocument,
    parse_yaml_document,
    read_config_text,
    validate_document,
)
from podium.core.errors import ConfigFileError, ConfigValidationError
from podium.pod._policy_model import ROLE_NAMES, DPCaps, PodPolicy, PolicyRole, normalise_name

__all__ = [
    "CHECK_ORDER",
    "ROLE_NAMES",
    "DPCaps",
    "DPRequest",
    "PodPolicy",
    "PolicyDecision",
    "PolicyRole",
    "RejectReason",
    "TaskSummary",
    "decide",
    "load_policy",
    "normalise_name",
]

_log = logging.getLogger("podium.pod.policy")

#: Budget sums compare with this relative tolerance, so that floating-point rounding
#: (``0.1 + 0.2 > 0.3``) does not refuse a request that exactly fills the budget.
_BUDGET_ROUNDING = 1e-9

#: The allow-lists, where an explicit null in the file is refused as ambiguous.
_ALLOW_LISTS = ("allowed_users", "allowed_roles", "allowed_protocols", "allowed_algorithms")


class RejectReason(StrEnum):
    """Why a pod's local policy refused a task (sent with ``JOB_REJECT``)."""

    USER_NOT_ALLOWED = "USER_NOT_ALLOWED"
    """The modeller is in ``denied_users``, or ``allowed_users`` is set without them."""
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    """The task needs a role that is not in ``allowed_roles``."""
    PROTOCOL_NOT_ALLOWED = "PROTOCOL_NOT_ALLOWED"
    """The task's protocol is not in ``allowed_protocols``."""
    ALGORITHM_NOT_ALLOWED = "ALGORITHM_NOT_ALLOWED"
    """One of the task's algorithms is not in ``allowed_algorithms``."""
    MODEL_NOT_ALLOWED = "MODEL_NOT_ALLOWED"
    """The task brings custom model code whose hash is not in ``allowed_model_hashes``."""
    POD_NOT_APPROVED = "POD_NOT_APPROVED"
    """A secure-aggregation task with another pod that is not in the pod's approved_pods."""
    DP_REQUEST_INVALID = "DP_REQUEST_INVALID"
    """The requested epsilon or delta is not a usable number (epsilon > 0, 0 <= delta < 1)."""
    DP_TASK_CAP = "DP_TASK_CAP"
    """The requested epsilon or delta is above the per-task cap."""
    DP_BUDGET_EXHAUSTED = "DP_BUDGET_EXHAUSTED"
    """The modeller's total budget on this pod does not cover the request."""
    POD_BUSY = "POD_BUSY"
    """The pod already runs ``max_concurrent_tasks`` tasks (worth retrying later)."""


#: The order in which :func:`decide` checks; the first refusal is the answer. Lasting
#: refusals come before the one worth retrying (``POD_BUSY``).
CHECK_ORDER: tuple[RejectReason, ...] = tuple(RejectReason)


@dataclass(frozen=True, slots=True)
class DPRequest:
    """The differential-privacy budget a task asks to spend on this pod."""

    epsilon: float
    delta: float = 0.0


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """What the policy needs to know about a task request (built by the pod from it).

    Attributes:
        modeller: The user name of the modeller who signed the request.
        roles: The roles the task needs, as the hub's access manager answered
            (``Decision.roles_required``); a task may need several (``train``, ``evaluate``).
        protocol: The protocol's name (``ResultsOnly``, ``bitfount.FederatedAveraging``).
        algorithms: The algorithms' names.
        model_hash: SHA-256 hex of custom model code; ``None`` for a built-in model or none.
        uses_secure_aggregation: Whether the task sums updates with secure aggregation.
        other_pods: The task's other pods (``<owner>/<name>``), this one left out.
        dp: The differential-privacy budget asked for; ``None`` for a non-DP task.
    """

    modeller: str
    roles: Sequence[str]
    protocol: str
    algorithms: Sequence[str]
    model_hash: str | None = None
    uses_secure_aggregation: bool = False
    other_pods: Sequence[str] = ()
    dp: DPRequest | None = None


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The policy's answer: allowed, or refused with a reason and a message for the modeller."""

    allowed: bool
    reason: RejectReason | None
    message: str


@dataclass(frozen=True, slots=True)
class _Spent:
    """What :func:`decide` knows beyond the policy and the request."""

    approved_pods: frozenset[str]
    epsilon: float
    delta: float
    running_tasks: int = 0


_Refusal = tuple[RejectReason, str] | None
_Check = Callable[[PodPolicy, TaskSummary, _Spent], _Refusal]


# -- the checks, in CHECK_ORDER -----------------------------------------------------------


def _check_user(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    denied = task.modeller in policy.denied_users
    if denied or (policy.allowed_users is not None and task.modeller not in policy.allowed_users):
        # One message for both lists: the modeller learns neither.
        return RejectReason.USER_NOT_ALLOWED, (
            f"user {task.modeller!r} may not run tasks on this pod: its owner's policy does "
            f"not allow them. Ask the pod's owner for access."
        )
    return None


def _check_roles(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    if policy.allowed_roles is None:
        return None
    for role in task.roles:
        if role not in policy.allowed_roles:
            return RejectReason.ROLE_NOT_ALLOWED, (
                f"this pod's policy does not allow tasks that need the {role!r} role."
            )
    return None


def _check_protocol(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    allowed = policy.normalised_protocols()
    if allowed is not None and normalise_name(task.protocol) not in allowed:
        return RejectReason.PROTOCOL_NOT_ALLOWED, (
            f"this pod's policy does not allow the protocol {task.protocol!r}."
        )
    return None


def _check_algorithms(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    allowed = policy.normalised_algorithms()
    if allowed is None:
        return None
    for algorithm in task.algorithms:
        if normalise_name(algorithm) not in allowed:
            return RejectReason.ALGORITHM_NOT_ALLOWED, (
                f"this pod's policy does not allow the algorithm {algorithm!r}."
            )
    return None


def _check_model(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    if task.model_hash is None or task.model_hash.lower() in policy.allowed_model_hashes:
        return None
    return RejectReason.MODEL_NOT_ALLOWED, (
        f"custom model code with hash {task.model_hash} is not approved on this pod. Ask the "
        f"pod's owner to add the hash to allowed_model_hashes, or use a built-in model."
    )


def _check_pods(_: PodPolicy, task: TaskSummary, spent: _Spent) -> _Refusal:
    if not task.uses_secure_aggregation:
        return None
    unapproved = sorted(set(task.other_pods) - spent.approved_pods)
    if unapproved:
        return RejectReason.POD_NOT_APPROVED, (
            f"secure aggregation with {', '.join(unapproved)}, which this pod has not "
            f"approved. Ask the pod's owner to add {'them' if len(unapproved) > 1 else 'it'} "
            f"to approved_pods, or run the task without {'them' if len(unapproved) > 1 else 'it'}."
        )
    return None


def _check_dp_request(_: PodPolicy, task: TaskSummary, __: _Spent) -> _Refusal:
    dp = task.dp
    if dp is None:
        return None
    valid_epsilon = _is_number(dp.epsilon) and math.isfinite(dp.epsilon) and dp.epsilon > 0
    valid_delta = _is_number(dp.delta) and math.isfinite(dp.delta) and 0 <= dp.delta < 1
    if not (valid_epsilon and valid_delta):
        return RejectReason.DP_REQUEST_INVALID, (
            f"the task asks for epsilon {dp.epsilon!r} and delta {dp.delta!r}: epsilon must be "
            f"a finite number above 0 and delta at least 0 and below 1."
        )
    return None


def _check_dp_task_cap(policy: PodPolicy, task: TaskSummary, _: _Spent) -> _Refusal:
    if task.dp is None:
        return None
    caps = policy.dp
    for name, asked, cap in (
        ("epsilon", task.dp.epsilon, caps.max_epsilon_per_task),
        ("delta", task.dp.delta, caps.max_delta_per_task),
    ):
        if cap is not None and asked > cap:
            return RejectReason.DP_TASK_CAP, (
                f"the task asks for {name} {asked:g}, above this pod's cap of {cap:g} per "
                f"task. Ask for {cap:g} or less."
            )
    return None


def _check_dp_budget(policy: PodPolicy, task: TaskSummary, spent: _Spent) -> _Refusal:
    if task.dp is None:
        return None
    caps = policy.dp
    for name, asked, used, total in (
        ("epsilon", task.dp.epsilon, spent.epsilon, caps.total_epsilon_per_modeller),
        ("delta", task.dp.delta, spent.delta, caps.total_delta_per_modeller),
    ):
        if total is not None and used + asked > total * (1 + _BUDGET_ROUNDING):
            left = max(total - used, 0.0)
            return RejectReason.DP_BUDGET_EXHAUSTED, (
                f"the task asks for {name} {asked:g} but {task.modeller!r} has {left:g} of "
                f"their total {name} budget on this pod left."
            )
    return None


def _check_busy(policy: PodPolicy, _: TaskSummary, spent: _Spent) -> _Refusal:
    if spent.running_tasks >= policy.max_concurrent_tasks:
        return RejectReason.POD_BUSY, (
            f"the pod is running {spent.running_tasks} tasks, as many as it allows at once. "
            f"Try again when one has finished."
        )
    return None


_CHECKS: dict[RejectReason, _Check] = {
    RejectReason.USER_NOT_ALLOWED: _check_user,
    RejectReason.ROLE_NOT_ALLOWED: _check_roles,
    RejectReason.PROTOCOL_NOT_ALLOWED: _check_protocol,
    RejectReason.ALGORITHM_NOT_ALLOWED: _check_algorithms,
    RejectReason.MODEL_NOT_ALLOWED: _check_model,
    RejectReason.POD_NOT_APPROVED: _check_pods,
    RejectReason.DP_REQUEST_INVALID: _check_dp_request,
    RejectReason.DP_TASK_CAP: _check_dp_task_cap,
    RejectReason.DP_BUDGET_EXHAUSTED: _check_dp_budget,
    RejectReason.POD_BUSY: _check_busy,
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require_amount(value: float, name: str) -> None:
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of at least 0, got {value!r}")


def decide(
    policy: PodPolicy,
    summary: TaskSummary,
    *,
    approved_pods: Collection[str],
    spent_epsilon: float = 0.0,
    spent_delta: float = 0.0,
    running_tasks: int = 0,
) -> PolicyDecision:
    """Whether the pod's policy allows a task the hub's access manager has accepted.

    The checks run in :data:`CHECK_ORDER`; the first that fails is the answer. Nothing here
    reads files or the network.

    Args:
        policy: The pod's policy (``PodPolicy()`` when the pod has no policy file).
        summary: The task request, as the pod read it.
        approved_pods: The pods this pod may run secure aggregation with
            (``PodConfig.approved_pods``).
        spent_epsilon: The epsilon the modeller has already spent on this pod (the ledger).
        spent_delta: The delta the modeller has already spent on this pod.
        running_tasks: How many tasks the pod is running now.

    Raises:
        ValueError: A spent amount or ``running_tasks`` that is negative or not finite
            (a fault of the caller, not of the request).
    """
    _require_amount(spent_epsilon, "spent_epsilon")
    _require_amount(spent_delta, "spent_delta")
    if type(running_tasks) is not int or running_tasks < 0:
        raise ValueError(f"running_tasks must be an int of at least 0, got {running_tasks!r}")
    spent = _Spent(frozenset(approved_pods), spent_epsilon, spent_delta, running_tasks)
    for reason in CHECK_ORDER:
        refusal = _CHECKS[reason](policy, summary, spent)
        if refusal is not None:
            _log.info("policy refused %s's task: %s", summary.modeller, refusal[0])
            return PolicyDecision(False, refusal[0], refusal[1])
    return PolicyDecision(True, None, "allowed by the pod's policy")


# -- loading ------------------------------------------------------------------------------


def load_policy(path: str | os.PathLike[str]) -> PodPolicy:
    """Read and validate a pod's policy YAML file; an empty file gives the defaults.

    ``${VAR}`` references are not expanded: a policy says who may see the data, and reads
    as written.

    Args:
        path: The YAML file.

    Raises:
        ConfigFileError: The file is missing, unreadable, not YAML or not a mapping.
        ConfigValidationError: Unknown keys, wrong types or values, an allow-list left
            empty (null); the message names the file, the line, the field and the fix.
    """
    file = Path(path)
    doc = parse_yaml_document(read_config_text(file), str(file))
    data: Any = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{file}: the top level must be a mapping of policy keys (such as "
            f"allowed_users: [...]), found a {type(data).__name__}."
        )
    _refuse_null_allow_lists(data, doc)
    policy = validate_document(PodPolicy, data, doc)
    _log.debug("loaded pod policy from %s", file)
    return policy


def _refuse_null_allow_lists(data: dict[str, Any], doc: YamlDocument) -> None:
    # ``allowed_users:`` with nothing after it (or every entry commented out) is null in
    # YAML. Read as "no restriction" it would open the pod; say so instead of guessing.
    empty = [key for key in _ALLOW_LISTS if key in data and data[key] is None]
    if empty:
        problems = "\n".join(
            f"  {doc.where((key,))}: is empty (null). Remove the key to allow everything the "
            f"hub allows, or write [] to allow nothing."
            for key in empty
        )
        count = len(empty)
        raise ConfigValidationError(
            f"{doc.source}: {count} problem{'s' if count > 1 else ''} in the PodPolicy:\n"
            + problems
        )
