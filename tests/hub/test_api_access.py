"""The access manager over HTTP: grants, limits, projects, decisions and the audit log."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from podium.hub.access import PRESETS
from podium.hub.services import HubServices
from tests.hub.conftest import Account, make_account

PODS = "/api/v1/pods"
CENSUS = "alice/census"
TASK = "0123456789abcdef" * 4


@pytest.fixture
async def census(client: httpx.AsyncClient, alice: Account) -> str:
    """Alice's pod."""
    answer = await client.put(f"{PODS}/{CENSUS}", headers=alice.headers, json={})
    assert answer.status_code == 201
    return CENSUS


@pytest.fixture
async def carol(services: HubServices, client: httpx.AsyncClient) -> Account:
    """A third user."""
    return await make_account(services, client, "carol")


async def grant(
    client: httpx.AsyncClient, by: Account, user: str, role: str, pod: str = CENSUS
) -> httpx.Response:
    """POST a grant."""
    return await client.post(
        f"{PODS}/{pod}/grants", headers=by.headers, json={"user": user, "role": role}
    )


async def revoke(
    client: httpx.AsyncClient, by: Account, user: str, role: str, pod: str = CENSUS
) -> httpx.Response:
    """DELETE a grant."""
    return await client.delete(f"{PODS}/{pod}/grants/{user}/{role}", headers=by.headers)


async def decide(
    client: httpx.AsyncClient,
    by: Account,
    modeller: str,
    *,
    pod: str = CENSUS,
    protocol: str = "ResultsOnly",
    algorithms: tuple[str, ...] = ("SqlQuery",),
    project: str | None = None,
    task_hash: str = TASK,
) -> dict[str, Any]:
    """Ask the access manager; the answer's body."""
    body: dict[str, Any] = {
        "modeller": modeller,
        "pod": pod,
        "protocol": protocol,
        "algorithms": list(algorithms),
        "task_hash": task_hash,
    }
    if project is not None:
        body["project"] = project
    answer = await client.post("/api/v1/access/decide", headers=by.headers, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def audit(client: httpx.AsyncClient, by: Account, **params: Any) -> httpx.Response:
    """GET the audit log."""
    return await client.get("/api/v1/audit", headers=by.headers, params=params)


# -- grants ------------------------------------------------------------------------------


async def test_grant_and_revoke_role(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A grant lists the roles that were new; revoking lists the roles removed."""
    first = await grant(client, alice, "bob", "sql")
    assert first.status_code == 201
    assert first.json() == {"pod_id": census, "user": "bob", "changed": ["sql"]}
    assert (await grant(client, alice, "bob", "sql")).json()["changed"] == []
    listed = (await client.get(f"{PODS}/{census}/grants", headers=alice.headers)).json()
    assert [(g["user"], g["role"], g["granted_by"]) for g in listed] == [("bob", "sql", "alice")]

    removed = await revoke(client, alice, "bob", "sql")
    assert removed.status_code == 200
    assert removed.json()["changed"] == ["sql"]
    assert (await revoke(client, alice, "bob", "sql")).json()["changed"] == []
    assert (await client.get(f"{PODS}/{census}/grants", headers=alice.headers)).json() == []


async def test_grant_preset(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A preset grants (and revokes) each of its roles."""
    added = await grant(client, alice, "bob", "dp-modeller")
    assert sorted(added.json()["changed"]) == sorted(PRESETS["dp-modeller"])
    removed = await revoke(client, alice, "bob", "dp-modeller")
    assert sorted(removed.json()["changed"]) == sorted(PRESETS["dp-modeller"])


async def test_unknown_role(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A role that does not exist is 422 ``unknown-role``."""
    answer = await grant(client, alice, "bob", "superuser")
    assert answer.status_code == 422
    assert answer.json()["code"] == "unknown-role"
    assert (await revoke(client, alice, "bob", "superuser")).status_code == 422


async def test_grant_to_unknown_user(
    client: httpx.AsyncClient, alice: Account, census: str
) -> None:
    """Roles go only to existing users."""
    answer = await grant(client, alice, "nobody", "sql")
    assert answer.status_code == 404
    assert answer.json()["code"] == "user-not-found"


async def test_bob_cannot_grant_himself(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Bob cannot grant himself: 404 without a role, 403 with ``viewer``; nothing changes."""
    hidden = await grant(client, bob, "bob", "sql")
    assert hidden.status_code == 404
    await grant(client, alice, "bob", "viewer")
    refused = await grant(client, bob, "bob", "sql")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not-pod-owner"
    assert (await revoke(client, bob, "bob", "viewer")).status_code == 403
    listed = (await client.get(f"{PODS}/{census}/grants", headers=alice.headers)).json()
    assert [g["role"] for g in listed] == ["viewer"]
    assert (await client.get(f"{PODS}/{census}/grants", headers=bob.headers)).status_code == 403


async def test_pod_admin_manages(
    client: httpx.AsyncClient, alice: Account, bob: Account, carol: Account, census: str
) -> None:
    """A grantee holding ``admin`` on the pod may grant and revoke there."""
    await grant(client, alice, "bob", "admin")
    assert (await grant(client, bob, "carol", "sql")).status_code == 201
    assert (await client.get(f"{PODS}/{census}/grants", headers=bob.headers)).status_code == 200
    assert (await revoke(client, bob, "carol", "sql")).json()["changed"] == ["sql"]


async def test_hub_admin_manages(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, census: str
) -> None:
    """A hub admin may manage grants on any pod."""
    assert (await grant(client, admin, "bob", "sql")).status_code == 201


async def test_list_my_grants(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, census: str
) -> None:
    """``/grants`` lists the caller's roles; only an admin asks about someone else."""
    await grant(client, alice, "bob", "sql")
    await grant(client, alice, "bob", "viewer")
    mine = (await client.get("/api/v1/grants", headers=bob.headers)).json()
    assert sorted(g["role"] for g in mine) == ["sql", "viewer"]
    assert (await client.get("/api/v1/grants", headers=alice.headers)).json() == []
    refused = await client.get("/api/v1/grants", headers=alice.headers, params={"user": "bob"})
    assert refused.status_code == 403
    by_admin = await client.get("/api/v1/grants", headers=admin.headers, params={"user": "bob"})
    assert len(by_admin.json()) == 2


async def test_roles_endpoint(client: httpx.AsyncClient, bob: Account) -> None:
    """The roles and presets are listed for any user."""
    body = (await client.get("/api/v1/roles", headers=bob.headers)).json()
    assert "admin" in body["roles"]
    assert body["presets"]["dp-modeller"] == list(PRESETS["dp-modeller"])


# -- limits ------------------------------------------------------------------------------


async def test_limits(client: httpx.AsyncClient, alice: Account, bob: Account, census: str) -> None:
    """Limits are set, listed, returned with ACCEPT decisions, and removed."""
    await grant(client, alice, "bob", "infer")
    answer = await client.put(
        f"{PODS}/{census}/limits/bob",
        headers=alice.headers,
        json={"model": "resnet", "max_inferences": 100},
    )
    assert answer.status_code == 200
    assert answer.json()["set_by"] == "alice"
    listed = (await client.get(f"{PODS}/{census}/limits", headers=alice.headers)).json()
    assert [(x["user"], x["model"], x["max_inferences"]) for x in listed] == [
        ("bob", "resnet", 100)
    ]

    decision = await decide(client, alice, "bob", algorithms=("ModelInference",))
    assert decision["decision"] == "ACCEPT"
    assert [x["max_inferences"] for x in decision["limits"]] == [100]

    removed = await client.delete(f"{PODS}/{census}/limits/bob/resnet", headers=alice.headers)
    assert removed.status_code == 204
    assert (await client.get(f"{PODS}/{census}/limits", headers=alice.headers)).json() == []
    assert (await decide(client, alice, "bob", algorithms=("ModelInference",)))["limits"] == []


async def test_limits_managed_by_owner_only(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Bob cannot set his own limit; limits only go to existing users."""
    await grant(client, alice, "bob", "infer")
    body = {"max_inferences": 10**6}
    refused = await client.put(f"{PODS}/{census}/limits/bob", headers=bob.headers, json=body)
    assert refused.status_code == 403
    unknown = await client.put(f"{PODS}/{census}/limits/nobody", headers=alice.headers, json=body)
    assert unknown.status_code == 404
    negative = await client.put(
        f"{PODS}/{census}/limits/bob", headers=alice.headers, json={"max_inferences": -1}
    )
    assert negative.status_code == 422


# -- decisions ---------------------------------------------------------------------------


async def test_owner_accepted(client: httpx.AsyncClient, alice: Account, census: str) -> None:
    """The pod's owner is accepted as modeller, via ``owner``."""
    decision = await decide(client, alice, "alice", algorithms=("ModelTraining",))
    assert (decision["decision"], decision["via"]) == ("ACCEPT", "owner")
    assert decision["roles_required"] == ["train"]


async def test_role_holder_accepted(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Holding every needed role accepts, via ``roles``."""
    await grant(client, alice, "bob", "sql")
    decision = await decide(client, alice, "bob", algorithms=("sql_query",))
    assert decision["decision"] == "ACCEPT"
    assert decision["via"] == "roles"
    assert decision["reason"] is None
    assert decision["roles_required"] == ["sql"]
    assert decision["roles_held"] == ["sql"]


async def test_protocol_role_needed(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A protocol's own role is needed on top of its algorithms' roles."""
    await grant(client, alice, "bob", "evaluate")
    decision = await decide(
        client, alice, "bob", protocol="FederatedAveraging", algorithms=("ModelEvaluation",)
    )
    assert decision["reason"] == "missing-role"
    assert "train" in decision["message"]


async def test_missing_role_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A modeller with some roles but not the needed one is refused ``missing-role``."""
    await grant(client, alice, "bob", "viewer")
    decision = await decide(client, alice, "bob", algorithms=("ModelTraining", "SqlQuery"))
    assert decision["decision"] == "REFUSE"
    assert decision["reason"] == "missing-role"
    assert decision["roles_required"] == ["sql", "train"]
    assert decision["roles_held"] == ["viewer"]
    assert decision["limits"] == []


async def test_pod_admin_role_covers_all(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """``admin`` on a pod counts as every role."""
    await grant(client, alice, "bob", "admin")
    decision = await decide(client, alice, "bob", algorithms=("ModelTraining", "PSI"))
    assert decision["decision"] == "ACCEPT"


async def test_no_grant_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """A modeller without any role is refused ``no-access``."""
    decision = await decide(client, alice, "bob")
    assert (decision["decision"], decision["reason"]) == ("REFUSE", "no-access")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"algorithms": ("RunShellCommand",)}, "unknown-algorithm"),
        ({"protocol": "Teleport"}, "unknown-protocol"),
        ({"pod": "alice/nothing"}, "pod-not-found"),
    ],
)
async def test_unknown_things_refused(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    census: str,
    kwargs: dict[str, Any],
    reason: str,
) -> None:
    """Unknown algorithms, protocols and pods are refused, even for a pod admin."""
    await grant(client, alice, "bob", "admin")
    decision = await decide(client, alice, "bob", **kwargs)
    assert (decision["decision"], decision["reason"]) == ("REFUSE", reason)


async def test_unknown_modeller_refused(
    client: httpx.AsyncClient, alice: Account, census: str
) -> None:
    """A modeller who is not a user is refused ``unknown-modeller``."""
    decision = await decide(client, alice, "mallory")
    assert decision["reason"] == "unknown-modeller"


async def test_archived_pod_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Nothing runs on an archived pod, not even for its owner."""
    await grant(client, alice, "bob", "sql")
    await client.post(f"{PODS}/{census}/archive", headers=alice.headers)
    for modeller in ("alice", "bob"):
        assert (await decide(client, alice, modeller))["reason"] == "pod-archived"


async def test_only_pod_owner_asks(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, census: str
) -> None:
    """Bob (even with a role) cannot ask about Alice's pod; an admin can."""
    await grant(client, alice, "bob", "admin")
    answer = await client.post(
        "/api/v1/access/decide",
        headers=bob.headers,
        json={
            "modeller": "bob",
            "pod": census,
            "protocol": "ResultsOnly",
            "algorithms": ["SqlQuery"],
            "task_hash": TASK,
        },
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "not-pod-owner"
    assert (await decide(client, admin, "bob"))["decision"] == "ACCEPT"


async def test_hub_admin_gets_no_data_access_without_a_grant(
    client: httpx.AsyncClient, alice: Account, admin: Account, census: str
) -> None:
    """Running a task on another owner's pod takes a grant, even for a hub admin."""
    refused = await decide(client, alice, "root")
    assert refused["decision"] == "REFUSE"
    assert refused["reason"] == "no-access"
    await grant(client, alice, "root", "sql")
    assert (await decide(client, alice, "root"))["decision"] == "ACCEPT"


# -- projects ----------------------------------------------------------------------------


@pytest.fixture
async def study(
    client: httpx.AsyncClient, alice: Account, bob: Account, carol: Account, census: str
) -> str:
    """Alice's project with Bob as member, the census pod, and TASK approved."""
    h = alice.headers
    created = await client.post("/api/v1/projects", headers=h, json={"name": "study"})
    assert created.status_code == 201
    assert (await client.put("/api/v1/projects/study/members/bob", headers=h)).status_code == 204
    assert (await client.put(f"/api/v1/projects/study/pods/{census}", headers=h)).status_code == 204
    approved = await client.post(
        "/api/v1/projects/study/tasks", headers=h, json={"task_hash": TASK}
    )
    assert approved.status_code == 204
    await client.put(f"{PODS}/alice/other", headers=h, json={})
    return "study"


async def test_project_member_accepted(
    client: httpx.AsyncClient, alice: Account, study: str
) -> None:
    """A member's approved task on a project pod is accepted via ``project``, without roles."""
    decision = await decide(client, alice, "bob", project=study, algorithms=("ModelTraining",))
    assert (decision["decision"], decision["via"]) == ("ACCEPT", "project")


@pytest.mark.parametrize(
    ("modeller", "kwargs", "reason"),
    [
        ("carol", {}, "not-project-member"),
        ("bob", {"pod": "alice/other"}, "pod-not-in-project"),
        ("bob", {"task_hash": "f" * 64}, "task-not-approved"),
        ("bob", {"project": "nothing"}, "project-not-found"),
    ],
)
async def test_project_refusals(
    client: httpx.AsyncClient,
    alice: Account,
    study: str,
    modeller: str,
    kwargs: dict[str, Any],
    reason: str,
) -> None:
    """Outside the project's members, pods or approved tasks the answer is a refusal."""
    options: dict[str, Any] = {"project": study, **kwargs}
    decision = await decide(client, alice, modeller, **options)
    assert (decision["decision"], decision["reason"]) == ("REFUSE", reason)


async def test_project_detail(client: httpx.AsyncClient, bob: Account, study: str) -> None:
    """A member sees the project's members, pods and tasks; others do not see it."""
    detail = (await client.get(f"/api/v1/projects/{study}", headers=bob.headers)).json()
    assert detail["members"] == ["bob"]
    assert detail["pods"] == [CENSUS]
    assert [t["task_hash"] for t in detail["tasks"]] == [TASK]


async def test_project_changes_by_owner_only(
    client: httpx.AsyncClient, alice: Account, bob: Account, carol: Account, study: str
) -> None:
    """Only the owner changes a project; strangers don't see it; only pod owners add pods."""
    add = await client.put(f"/api/v1/projects/{study}/members/carol", headers=bob.headers)
    assert add.status_code == 403
    approve = await client.post(
        f"/api/v1/projects/{study}/tasks", headers=bob.headers, json={"task_hash": "a" * 32}
    )
    assert approve.status_code == 403
    assert (await client.get(f"/api/v1/projects/{study}", headers=carol.headers)).status_code == 404
    await client.post("/api/v1/projects", headers=bob.headers, json={"name": "grab"})
    grab = await client.put(f"/api/v1/projects/grab/pods/{CENSUS}", headers=bob.headers)
    assert grab.status_code == 404


# -- the audit log -----------------------------------------------------------------------


async def test_audit_records_grants_and_decisions(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Every grant change, limit change and decision is in the pod's audit log."""
    await grant(client, alice, "bob", "sql")
    await decide(client, alice, "bob")
    await revoke(client, alice, "bob", "sql")
    await decide(client, alice, "bob")
    await client.put(
        f"{PODS}/{census}/limits/bob", headers=alice.headers, json={"max_inferences": 5}
    )
    page = (await audit(client, alice, pod=census)).json()
    events = page["events"]
    assert [e["action"] for e in events] == ["set-limit", "decision", "revoke", "decision", "grant"]
    assert [e["outcome"] for e in events if e["action"] == "decision"] == ["no-access", "accept"]
    assert all(e["pod_id"] == census and e["actor"] == "alice" for e in events)
    assert events[-1]["subject"] == "bob"
    assert events[-1]["detail"] == {"role": "sql"}
    assert page["next_before"] is None


async def test_audit_visibility(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Bob cannot read the audit of Alice's pod, and his own log leaves out her events."""
    await grant(client, alice, "bob", "viewer")
    await decide(client, alice, "bob")
    refused = await audit(client, bob, pod=census)
    assert refused.status_code == 403
    assert (await audit(client, bob)).json()["events"] == []
    assert len((await audit(client, alice)).json()["events"]) == 2


async def test_audit_paging(client: httpx.AsyncClient, alice: Account, census: str) -> None:
    """Pages of ``limit`` events, newest first; ``before`` gives the older ones."""
    for _ in range(5):
        await decide(client, alice, "alice")
    first = (await audit(client, alice, pod=census, limit=2)).json()
    ids = [e["event_id"] for e in first["events"]]
    assert ids == sorted(ids, reverse=True)
    assert first["next_before"] == ids[-1]
    second = (await audit(client, alice, pod=census, limit=2, before=first["next_before"])).json()
    third = (await audit(client, alice, pod=census, limit=2, before=second["next_before"])).json()
    seen = ids + [e["event_id"] for e in second["events"] + third["events"]]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)
    assert third["next_before"] is None


async def test_audit_parameters_validated(client: httpx.AsyncClient, alice: Account) -> None:
    """Malformed pod identifiers and out-of-range paging are 422."""
    for params in ({"pod": "alice"}, {"pod": "a/b/c"}, {"limit": 0}, {"before": 0}):
        assert (await audit(client, alice, **params)).status_code == 422, params
    assert (await audit(client, alice, before=2**63)).status_code == 422


async def test_bitfount_prefixed_names_are_known(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Names from Bitfount task files (``bitfount.SqlQuery``) are the same algorithms and
    protocols; another prefix is not."""
    await grant(client, alice, "bob", "general-modeller")
    decision = await decide(
        client, alice, "bob", protocol="bitfount.ResultsOnly", algorithms=("bitfount.SqlQuery",)
    )
    assert decision["decision"] == "ACCEPT"
    assert decision["roles_required"] == ["sql"]
    other = await decide(client, alice, "bob", algorithms=("acme.SqlQuery",))
    assert (other["decision"], other["reason"]) == ("REFUSE", "unknown-algorithm")
