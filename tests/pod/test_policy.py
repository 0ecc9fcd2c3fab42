"""The pod's local policy decides: users, roles, protocols, algorithms, pods, DP, load."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.hub.access import ROLES
from podium.pod.policy import (
    CHECK_ORDER,
    ROLE_NAMES,
    DPCaps,
    DPRequest,
    PodPolicy,
    PolicyDecision,
    RejectReason,
    TaskSummary,
    decide,
    normalise_name,
)

HASH_A = "a" * 64
HASH_B = "b" * 64

#: The sample policy of the matrix: bob may run SQL, statistics and training tasks.
SAMPLE = PodPolicy(
    allowed_users=["bob", "carol"],
    denied_users=["carol"],
    allowed_roles=["sql", "statistics", "train"],
    allowed_protocols=["ResultsOnly", "bitfount.FederatedAveraging"],
    allowed_algorithms=["SqlQuery", "bitfount.ModelTraining"],
)

#: (value, allowed by SAMPLE) for each axis of the matrix.
USERS = [("bob", True), ("carol", False), ("dave", False)]  # carol: listed but denied
ROLES_ = [("sql", True), ("train", True), ("psi", False)]
PROTOCOLS = [("bitfount.ResultsOnly", True), ("federatedaveraging", True), ("PSI", False)]
ALGORITHMS = [("SqlQuery", True), ("BITFOUNT.modeltraining", True), ("Histogram", False)]


def task(
    modeller: str = "bob",
    *,
    roles: tuple[str, ...] = ("sql",),
    protocol: str = "ResultsOnly",
    algorithms: tuple[str, ...] = ("SqlQuery",),
    model_hash: str | None = None,
    secure: bool = False,
    other_pods: tuple[str, ...] = (),
    dp: DPRequest | None = None,
) -> TaskSummary:
    return TaskSummary(
        modeller=modeller,
        roles=roles,
        protocol=protocol,
        algorithms=algorithms,
        model_hash=model_hash,
        uses_secure_aggregation=secure,
        other_pods=other_pods,
        dp=dp,
    )


def refused(decision: PolicyDecision) -> RejectReason | None:
    """The reason of a refusal; None when allowed (checking the decision is consistent)."""
    assert decision.allowed == (decision.reason is None)
    assert decision.message
    return decision.reason


# -- users x roles x protocols x algorithms ------------------------------------------------


def _expected(user: bool, role: bool, protocol: bool, algorithm: bool) -> RejectReason | None:
    for ok, reason in (
        (user, RejectReason.USER_NOT_ALLOWED),
        (role, RejectReason.ROLE_NOT_ALLOWED),
        (protocol, RejectReason.PROTOCOL_NOT_ALLOWED),
        (algorithm, RejectReason.ALGORITHM_NOT_ALLOWED),
    ):
        if not ok:
            return reason
    return None


MATRIX = [
    pytest.param(u, r, p, a, _expected(uo, ro, po, ao), id=f"{u}-{r}-{p}-{a}")
    for (u, uo), (r, ro), (p, po), (a, ao) in itertools.product(
        USERS, ROLES_, PROTOCOLS, ALGORITHMS
    )
]


@pytest.mark.parametrize(("user", "role", "protocol", "algorithm", "expected"), MATRIX)
def test_matrix_of_user_role_protocol_algorithm(
    user: str, role: str, protocol: str, algorithm: str, expected: RejectReason | None
) -> None:
    """Each request is allowed, or refused for the first check it fails, in order."""
    summary = task(user, roles=(role,), protocol=protocol, algorithms=(algorithm,))

    decision = decide(SAMPLE, summary, approved_pods=[])

    assert refused(decision) == expected


def test_every_role_and_algorithm_of_a_task_must_be_allowed() -> None:
    """One disallowed role or algorithm among several allowed ones refuses the task."""
    two_roles = task(roles=("sql", "evaluate"))
    two_algorithms = task(algorithms=("SqlQuery", "ModelEvaluation"))

    assert refused(decide(SAMPLE, two_roles, approved_pods=[])) == RejectReason.ROLE_NOT_ALLOWED
    assert (
        refused(decide(SAMPLE, two_algorithms, approved_pods=[]))
        == RejectReason.ALGORITHM_NOT_ALLOWED
    )


def test_denied_user_is_refused_even_without_an_allow_list() -> None:
    """denied_users applies when allowed_users is None (anyone the hub allowed)."""
    policy = PodPolicy(denied_users=["mallory"])

    assert refused(decide(policy, task("mallory"), approved_pods=[])) == (
        RejectReason.USER_NOT_ALLOWED
    )
    assert refused(decide(policy, task("bob"), approved_pods=[])) is None


def test_empty_allow_lists_allow_nothing() -> None:
    """An empty list is not 'no restriction': it refuses every value."""
    for policy, reason in (
        (PodPolicy(allowed_users=[]), RejectReason.USER_NOT_ALLOWED),
        (PodPolicy(allowed_roles=[]), RejectReason.ROLE_NOT_ALLOWED),
        (PodPolicy(allowed_protocols=[]), RejectReason.PROTOCOL_NOT_ALLOWED),
        (PodPolicy(allowed_algorithms=[]), RejectReason.ALGORITHM_NOT_ALLOWED),
    ):
        assert refused(decide(policy, task(), approved_pods=[])) == reason


def test_messages_name_the_refused_value_but_not_the_policy_lists() -> None:
    """A refusal says what was refused; it never lists who or what the policy allows."""
    user = decide(SAMPLE, task("dave"), approved_pods=[])
    denied = decide(SAMPLE, task("carol"), approved_pods=[])
    algorithm = decide(SAMPLE, task(algorithms=("Histogram",)), approved_pods=[])
    protocol = decide(SAMPLE, task(protocol="PSI"), approved_pods=[])
    role = decide(SAMPLE, task(roles=("psi",)), approved_pods=[])

    assert "'dave'" in user.message
    assert "bob" not in user.message
    assert "carol" not in user.message
    assert user.message == denied.message.replace("'carol'", "'dave'")  # denied looks the same
    assert "'Histogram'" in algorithm.message
    assert "SqlQuery" not in algorithm.message
    assert "ModelTraining" not in algorithm.message
    assert "'PSI'" in protocol.message
    assert "ResultsOnly" not in protocol.message
    assert "'psi'" in role.message
    assert "statistics" not in role.message


# -- name normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("bitfount.ResultsOnly", "ResultsOnly"),
        ("BITFOUNT.SqlQuery", "sqlquery"),
        ("FederatedAveraging", "federated_averaging"),
        ("bitfount.ModelTraining", "model-training"),
        (" SqlQuery ", "SqlQuery"),
    ],
)
def test_names_that_normalise_alike(left: str, right: str) -> None:
    """A 'bitfount.' prefix, case, '_', '-' and surrounding spaces do not matter."""
    assert normalise_name(left) == normalise_name(right)
    policy = PodPolicy(allowed_protocols=[left], allowed_algorithms=[left])
    assert refused(decide(policy, task(protocol=right, algorithms=(right,)), approved_pods=[])) is (
        None
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("SqlQuery", "PrivateSqlQuery"),
        ("notbitfount.SqlQuery", "SqlQuery"),  # only a leading 'bitfount.' is a prefix
        ("bitfount.bitfount.SqlQuery", "SqlQuery"),  # and only once
        ("ResultsOnly", "Results"),
    ],
)
def test_names_that_stay_different(left: str, right: str) -> None:
    """Normalising never makes different names equal."""
    assert normalise_name(left) != normalise_name(right)
    policy = PodPolicy(allowed_algorithms=[left])
    assert refused(decide(policy, task(algorithms=(right,)), approved_pods=[])) == (
        RejectReason.ALGORITHM_NOT_ALLOWED
    )


def test_policy_roles_are_the_hubs_roles() -> None:
    """The policy's role names are exactly the hub access manager's roles."""
    assert set(ROLE_NAMES) == set(ROLES)


# -- custom model code ---------------------------------------------------------------------


def test_custom_model_code_runs_only_when_its_hash_is_allowed() -> None:
    """A model hash must be on the allow-list (any case); built-in models need no entry."""
    policy = PodPolicy(allowed_model_hashes=[HASH_A])

    assert refused(decide(policy, task(model_hash=None), approved_pods=[])) is None
    assert refused(decide(policy, task(model_hash=HASH_A.upper()), approved_pods=[])) is None
    assert refused(decide(policy, task(model_hash=HASH_B), approved_pods=[])) == (
        RejectReason.MODEL_NOT_ALLOWED
    )
    assert refused(decide(PodPolicy(), task(model_hash=HASH_A), approved_pods=[])) == (
        RejectReason.MODEL_NOT_ALLOWED
    )


# -- secure aggregation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other_pods", "approved", "expected"),
    [
        pytest.param(("ann/a", "ben/b"), {"ann/a", "ben/b", "cid/c"}, None, id="all-approved"),
        pytest.param((), set(), None, id="no-other-pods"),
        pytest.param(
            ("ann/a", "ben/b"), {"ann/a"}, RejectReason.POD_NOT_APPROVED, id="one-unapproved"
        ),
        pytest.param(("ann/a",), set(), RejectReason.POD_NOT_APPROVED, id="none-approved"),
        pytest.param(("ann/a",), {"ann/ab"}, RejectReason.POD_NOT_APPROVED, id="exact-ids"),
    ],
)
def test_secure_aggregation_needs_every_other_pod_approved(
    other_pods: tuple[str, ...], approved: set[str], expected: RejectReason | None
) -> None:
    """With secure aggregation, every other pod of the task must be in approved_pods."""
    summary = task(secure=True, other_pods=other_pods)

    assert refused(decide(PodPolicy(), summary, approved_pods=approved)) == expected


def test_unapproved_pods_are_named_but_approved_ones_are_not() -> None:
    """The refusal names the task's unapproved pods, not the approved list."""
    summary = task(secure=True, other_pods=("ann/a", "ben/b"))

    decision = decide(PodPolicy(), summary, approved_pods=["ann/a", "zed/secret"])

    assert "ben/b" in decision.message
    assert "ann/a" not in decision.message
    assert "zed/secret" not in decision.message


def test_without_secure_aggregation_other_pods_are_not_checked() -> None:
    """A task without secure aggregation may include pods that are not approved."""
    summary = task(secure=False, other_pods=("ann/a",))

    assert refused(decide(PodPolicy(), summary, approved_pods=[])) is None


# -- differential privacy -------------------------------------------------------------------

CAPS = PodPolicy(
    dp=DPCaps(
        max_epsilon_per_task=1.0,
        max_delta_per_task=1e-6,
        total_epsilon_per_modeller=5.0,
        total_delta_per_modeller=1e-5,
    )
)


@pytest.mark.parametrize(
    ("epsilon", "delta", "expected"),
    [
        pytest.param(1.0, 1e-6, None, id="exactly-at-both-caps"),
        pytest.param(0.5, 0.0, None, id="below"),
        pytest.param(math.nextafter(1.0, 2.0), 0.0, RejectReason.DP_TASK_CAP, id="epsilon-over"),
        pytest.param(1.0, math.nextafter(1e-6, 1.0), RejectReason.DP_TASK_CAP, id="delta-over"),
    ],
)
def test_per_task_caps(epsilon: float, delta: float, expected: RejectReason | None) -> None:
    """A task may ask for exactly the per-task cap, and not the least bit more."""
    summary = task(dp=DPRequest(epsilon, delta))

    assert refused(decide(CAPS, summary, approved_pods=[])) == expected


@pytest.mark.parametrize(
    ("spent_epsilon", "epsilon", "spent_delta", "delta", "expected"),
    [
        pytest.param(4.0, 1.0, 0.0, 0.0, None, id="epsilon-fills-budget"),
        pytest.param(4.0, 1.0 + 1e-6, 0.0, 0.0, RejectReason.DP_TASK_CAP, id="over-task-cap"),
        pytest.param(4.5, 0.5 + 1e-6, 0.0, 0.0, RejectReason.DP_BUDGET_EXHAUSTED, id="eps-over"),
        pytest.param(5.0, 0.1, 0.0, 0.0, RejectReason.DP_BUDGET_EXHAUSTED, id="eps-spent"),
        pytest.param(0.0, 0.1, 9e-6, 1e-6, None, id="delta-fills-budget"),
        pytest.param(
            0.0, 0.1, 9e-6, 1e-6 + 1e-12, RejectReason.DP_TASK_CAP, id="delta-over-task-cap"
        ),
        pytest.param(
            0.0, 0.1, 9.5e-6, 6e-7, RejectReason.DP_BUDGET_EXHAUSTED, id="delta-over-budget"
        ),
    ],
)
def test_total_budget_with_spent_amounts(
    spent_epsilon: float,
    epsilon: float,
    spent_delta: float,
    delta: float,
    expected: RejectReason | None,
) -> None:
    """Spent plus asked may reach the modeller's total budget but not pass it."""
    summary = task(dp=DPRequest(epsilon, delta))

    decision = decide(
        CAPS, summary, approved_pods=[], spent_epsilon=spent_epsilon, spent_delta=spent_delta
    )

    assert refused(decision) == expected


def test_rounding_does_not_refuse_a_request_that_exactly_fills_the_budget() -> None:
    """0.1 spent + 0.2 asked fills a 0.3 budget although 0.1 + 0.2 > 0.3 in floats."""
    policy = PodPolicy(dp=DPCaps(total_epsilon_per_modeller=0.3))
    assert 0.1 + 0.2 > 0.3  # the premise

    decision = decide(policy, task(dp=DPRequest(0.2)), approved_pods=[], spent_epsilon=0.1)

    assert refused(decision) is None


def test_budget_message_says_what_is_left() -> None:
    """The refusal tells the modeller how much of their budget is left."""
    decision = decide(CAPS, task(dp=DPRequest(0.5)), approved_pods=[], spent_epsilon=4.75)

    assert decision.reason == RejectReason.DP_BUDGET_EXHAUSTED
    assert "0.25" in decision.message


def test_a_task_without_dp_spends_nothing() -> None:
    """A non-DP task is not checked against DP caps, even with the budget used up."""
    decision = decide(CAPS, task(dp=None), approved_pods=[], spent_epsilon=99.0, spent_delta=0.5)

    assert refused(decision) is None


@pytest.mark.parametrize(
    ("epsilon", "delta"),
    [(math.nan, 0.0), (math.inf, 0.0), (0.0, 0.0), (-1.0, 0.0), (1.0, math.nan), (1.0, 1.0)],
)
def test_unusable_dp_request_is_refused_even_without_caps(epsilon: float, delta: float) -> None:
    """NaN, infinite, zero or negative epsilon and a delta outside [0, 1) are refused."""
    summary = task(dp=DPRequest(epsilon, delta))

    assert refused(decide(PodPolicy(), summary, approved_pods=[])) == (
        RejectReason.DP_REQUEST_INVALID
    )
    assert refused(decide(CAPS, summary, approved_pods=[])) == RejectReason.DP_REQUEST_INVALID


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("spent_epsilon", -0.1),
        ("spent_epsilon", math.nan),
        ("spent_delta", math.inf),
        ("running_tasks", -1),
    ],
)
def test_bad_ledger_amounts_are_a_caller_error(keyword: str, value: float) -> None:
    """A negative or non-finite spent amount is the caller's fault, not a refusal."""
    with pytest.raises(ValueError, match=keyword):
        decide(CAPS, task(), approved_pods=[], **{keyword: value})  # type: ignore[arg-type]


# -- concurrency and order ----------------------------------------------------------------------


def test_pod_refuses_tasks_beyond_max_concurrent_tasks() -> None:
    """The pod takes tasks up to max_concurrent_tasks running at once."""
    policy = PodPolicy(max_concurrent_tasks=2)

    assert refused(decide(policy, task(), approved_pods=[], running_tasks=1)) is None
    assert refused(decide(policy, task(), approved_pods=[], running_tasks=2)) == (
        RejectReason.POD_BUSY
    )


def test_checks_run_in_the_documented_order() -> None:
    """The order of checks is pinned (docs/pod-policy.md lists it)."""
    assert [str(reason) for reason in CHECK_ORDER] == [
        "USER_NOT_ALLOWED",
        "ROLE_NOT_ALLOWED",
        "PROTOCOL_NOT_ALLOWED",
        "ALGORITHM_NOT_ALLOWED",
        "MODEL_NOT_ALLOWED",
        "POD_NOT_APPROVED",
        "DP_REQUEST_INVALID",
        "DP_TASK_CAP",
        "DP_BUDGET_EXHAUSTED",
        "POD_BUSY",
    ]


def test_first_failing_check_wins() -> None:
    """A request failing every check is refused for the first; fixing it reveals the next."""
    policy = PodPolicy(
        allowed_users=["bob"],
        allowed_roles=["sql"],
        allowed_protocols=["ResultsOnly"],
        allowed_algorithms=["SqlQuery"],
        dp=DPCaps(max_epsilon_per_task=1.0, total_epsilon_per_modeller=2.0),
        max_concurrent_tasks=1,
    )
    summary = TaskSummary(
        modeller="eve",
        roles=("train",),
        protocol="FederatedAveraging",
        algorithms=("ModelTraining",),
        model_hash=HASH_A,
        uses_secure_aggregation=True,
        other_pods=("x/y",),
        dp=DPRequest(math.nan),
    )
    fixes: list[tuple[RejectReason, dict[str, Any]]] = [
        (RejectReason.USER_NOT_ALLOWED, {"modeller": "bob"}),
        (RejectReason.ROLE_NOT_ALLOWED, {"roles": ("sql",)}),
        (RejectReason.PROTOCOL_NOT_ALLOWED, {"protocol": "ResultsOnly"}),
        (RejectReason.ALGORITHM_NOT_ALLOWED, {"algorithms": ("SqlQuery",)}),
        (RejectReason.MODEL_NOT_ALLOWED, {"model_hash": None}),
        (RejectReason.POD_NOT_APPROVED, {"uses_secure_aggregation": False}),
        (RejectReason.DP_REQUEST_INVALID, {"dp": DPRequest(3.0)}),  # over the task cap
        (RejectReason.DP_TASK_CAP, {"dp": DPRequest(1.0)}),  # 1.5 spent + 1.0 > 2.0
        (RejectReason.DP_BUDGET_EXHAUSTED, {"dp": None}),
    ]

    for expected, fix in fixes:
        decision = decide(policy, summary, approved_pods=[], spent_epsilon=1.5, running_tasks=1)
        assert refused(decision) == expected
        summary = replace(summary, **fix)

    assert refused(decide(policy, summary, approved_pods=[], running_tasks=1)) == (
        RejectReason.POD_BUSY
    )
    assert refused(decide(policy, summary, approved_pods=[], running_tasks=0)) is None


# -- properties ------------------------------------------------------------------------------

_names = st.text(min_size=1, max_size=30)


@given(
    modeller=_names,
    roles=st.lists(st.sampled_from(ROLE_NAMES), max_size=4),
    protocol=_names,
    algorithms=st.lists(_names, max_size=4),
    other_pods=st.lists(_names, max_size=4),
    running=st.integers(min_value=0, max_value=3),
)
def test_default_policy_allows_any_request_without_dp_or_custom_code(
    modeller: str,
    roles: list[str],
    protocol: str,
    algorithms: list[str],
    other_pods: list[str],
    running: int,
) -> None:
    """With no policy file, whatever the hub allowed runs (no DP, built-in models)."""
    summary = TaskSummary(modeller, roles, protocol, algorithms, other_pods=other_pods)

    decision = decide(PodPolicy(), summary, approved_pods=[], running_tasks=running)

    assert decision.allowed
    assert decision.reason is None


@given(
    epsilon=st.floats(allow_nan=True, allow_infinity=True),
    spent=st.floats(min_value=0, max_value=10),
)
def test_an_allowed_dp_request_never_passes_the_caps(epsilon: float, spent: float) -> None:
    """Whatever epsilon is asked, an allowed request stays within the cap and the budget."""
    decision = decide(CAPS, task(dp=DPRequest(epsilon)), approved_pods=[], spent_epsilon=spent)

    if decision.allowed:
        assert 0 < epsilon <= 1.0
        assert spent + epsilon <= 5.0 * (1 + 1e-9)
