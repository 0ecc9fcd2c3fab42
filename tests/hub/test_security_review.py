"""Regression tests from the hub's security review: pod-admin escalation, withdrawing a
pod from a project, the decision endpoint as an oracle, login throttling under parallel
guesses, deeply nested schemas, cache headers on secrets, and token confusion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from podium.hub.accounts import AccountService
from podium.hub.config import PasswordCost
from podium.hub.errors import ErrorCode, HubError
from podium.hub.schemas import MAX_SCHEMA_DEPTH
from podium.hub.security import PasswordHasher
from podium.hub.services import HubServices
from tests.hub.conftest import FAST_PASSWORDS, PASSWORD, Account, make_account

PODS = "/api/v1/pods"
CENSUS = "alice/census"
TASK = "0123456789abcdef" * 4


@pytest.fixture
async def carol(services: HubServices, client: httpx.AsyncClient) -> Account:
    """A third user."""
    return await make_account(services, client, "carol")


@pytest.fixture
async def census(client: httpx.AsyncClient, alice: Account) -> str:
    """Alice's pod."""
    answer = await client.put(f"{PODS}/{CENSUS}", headers=alice.headers, json={})
    assert answer.status_code == 201
    return CENSUS


async def _grant(client: httpx.AsyncClient, by: Account, user: str, role: str) -> httpx.Response:
    return await client.post(
        f"{PODS}/{CENSUS}/grants", headers=by.headers, json={"user": user, "role": role}
    )


async def _revoke(client: httpx.AsyncClient, by: Account, user: str, role: str) -> httpx.Response:
    return await client.delete(f"{PODS}/{CENSUS}/grants/{user}/{role}", headers=by.headers)


def _roles(services: HubServices, user: str) -> set[str]:
    return {g.role for g in services.store.list_grants(pod_id=CENSUS, user=user)}


# -- pod admins --------------------------------------------------------------------------


async def test_pod_admin_cannot_appoint_another_admin(
    client: httpx.AsyncClient,
    services: HubServices,
    alice: Account,
    bob: Account,
    carol: Account,
    census: str,
) -> None:
    """A pod ``admin`` grantee cannot grant ``admin``: only the owner appoints admins."""
    assert (await _grant(client, alice, "bob", "admin")).status_code == 201
    answer = await _grant(client, bob, "carol", "admin")
    assert answer.status_code == 403
    assert answer.json()["code"] == "not-pod-owner"
    assert _roles(services, "carol") == set()


async def test_pod_admin_cannot_remove_another_admin(
    client: httpx.AsyncClient,
    services: HubServices,
    alice: Account,
    bob: Account,
    carol: Account,
    census: str,
) -> None:
    """A pod admin cannot revoke the ``admin`` the owner gave someone else."""
    await _grant(client, alice, "bob", "admin")
    await _grant(client, alice, "carol", "admin")
    answer = await _revoke(client, carol, "bob", "admin")
    assert answer.status_code == 403
    assert _roles(services, "bob") == {"admin"}


async def test_pod_admin_may_give_up_their_own_admin(
    client: httpx.AsyncClient, services: HubServices, alice: Account, bob: Account, census: str
) -> None:
    """A pod admin may still drop their own ``admin``; the owner may revoke anyone's."""
    await _grant(client, alice, "bob", "admin")
    answer = await _revoke(client, bob, "bob", "admin")
    assert answer.json()["changed"] == ["admin"]
    await _grant(client, alice, "bob", "admin")
    assert (await _revoke(client, alice, "bob", "admin")).json()["changed"] == ["admin"]
    assert _roles(services, "bob") == set()


# -- projects and decisions ------------------------------------------------------------


async def _decide(
    client: httpx.AsyncClient, by: Account, modeller: str, pod: str, project: str
) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/access/decide",
        headers=by.headers,
        json={
            "modeller": modeller,
            "pod": pod,
            "protocol": "ResultsOnly",
            "algorithms": ["SqlQuery"],
            "task_hash": TASK,
            "project": project,
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
async def bobs_project(client: httpx.AsyncClient, alice: Account, bob: Account, census: str) -> str:
    """Bob's project, with alice as a member who put her census pod in it, and TASK
    approved."""
    h = bob.headers
    assert (await client.post("/api/v1/projects", headers=h, json={"name": "p"})).status_code == 201
    assert (await client.put("/api/v1/projects/p/members/alice", headers=h)).status_code == 204
    added = await client.put(f"/api/v1/projects/p/pods/{census}", headers=alice.headers)
    assert added.status_code == 204
    task = await client.post("/api/v1/projects/p/tasks", headers=h, json={"task_hash": TASK})
    assert task.status_code == 204
    return "p"


async def test_pod_owner_removed_from_a_project_can_still_withdraw_the_pod(
    client: httpx.AsyncClient,
    services: HubServices,
    alice: Account,
    bob: Account,
    bobs_project: str,
) -> None:
    """Removing a pod's owner from a project does not trap the pod there: the owner can
    take it out, and the project's tasks stop being accepted on it."""
    kicked = await client.delete("/api/v1/projects/p/members/alice", headers=bob.headers)
    assert kicked.status_code == 204
    answer = await client.delete(f"/api/v1/projects/p/pods/{CENSUS}", headers=alice.headers)
    assert answer.status_code == 204
    assert services.store.list_project_pods("p") == []
    refused = await _decide(client, alice, "bob", CENSUS, "p")
    assert refused["reason"] == "pod-not-in-project"


async def test_only_the_pods_owner_withdraws_it(
    client: httpx.AsyncClient,
    services: HubServices,
    alice: Account,
    carol: Account,
    bobs_project: str,
) -> None:
    """Someone else (outside the project) cannot take the pod out, nor learn the project
    exists."""
    answer = await client.delete(f"/api/v1/projects/p/pods/{CENSUS}", headers=carol.headers)
    assert answer.status_code == 404
    assert answer.json()["code"] == "project-not-found"
    assert services.store.list_project_pods("p") == [CENSUS]


async def test_decisions_do_not_reveal_who_belongs_to_other_projects(
    client: httpx.AsyncClient,
    services: HubServices,
    carol: Account,
    bobs_project: str,
) -> None:
    """A pod outside a project gets the same refusal for members and non-members, so its
    owner cannot probe who belongs to someone else's project."""
    services.accounts.create_user("dave", PASSWORD, is_admin=False, now=services.now())
    assert (await client.put(f"{PODS}/carol/c1", headers=carol.headers, json={})).status_code == 201
    member = await _decide(client, carol, "alice", "carol/c1", "p")
    stranger = await _decide(client, carol, "dave", "carol/c1", "p")
    assert member["reason"] == stranger["reason"] == "pod-not-in-project"


# -- login throttling --------------------------------------------------------------------


class _RacingHasher(PasswordHasher):
    """While each password check runs, another guess at the same user arrives, as
    parallel requests would; records how many guesses reached the password check."""

    def __init__(self, cost: PasswordCost, *, parallel: int, now: datetime) -> None:
        super().__init__(cost)
        self.accounts: AccountService | None = None
        self.pending = parallel - 1
        self.checked = 0
        self.refusals: list[ErrorCode] = []
        self.now = now

    def verify(self, password_hash: str | None, password: str) -> bool:
        self.checked += 1
        if self.pending > 0 and self.accounts is not None:
            self.pending -= 1
            try:
                self.accounts.authenticate_password("alice", "another guess", self.now)
            except HubError as exc:
                self.refusals.append(exc.code)
        return super().verify(password_hash, password)


def test_parallel_guesses_cannot_slip_past_the_throttle(services: HubServices) -> None:
    """Ten guesses in flight at once: no more reach the password check than the
    throttle lets through one after another."""
    now = services.now()
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=now)
    hasher = _RacingHasher(FAST_PASSWORDS, parallel=10, now=now)
    accounts = AccountService(services.store, services.config, hasher, services.signer)
    hasher.accounts = accounts
    with pytest.raises(HubError):
        accounts.authenticate_password("alice", "first guess", now)
    assert hasher.checked <= services.config.login.throttle_after
    assert set(hasher.refusals) <= {ErrorCode.INVALID_CREDENTIALS, ErrorCode.LOGIN_THROTTLED}


async def test_name_variants_do_not_bypass_a_lock(
    client: httpx.AsyncClient, services: HubServices, alice: Account
) -> None:
    """Once ``alice`` is locked, upper-case or padded variants of the name do not log in
    (names are exact), and ``alice`` stays locked."""
    for _ in range(services.config.login.lock_after):
        services.clock.advance(120)  # type: ignore[attr-defined]  # the tests' Clock
        await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "alice", "password": "wrong guess"},
        )
    for variant in ("Alice", "ALICE", " alice", "alice ", "alice\n"):
        answer = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": variant, "password": PASSWORD},
        )
        assert answer.status_code != 200, variant
    locked = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert locked.json()["code"] == "account-locked"


# -- schemas -----------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    """A schema whose objects and arrays nest ``depth`` levels (the schema itself is one)."""
    inner: list[Any] = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"columns": inner}


async def test_a_too_deeply_nested_schema_is_refused(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    """A schema nested past what the hub can serialise back is refused (422), so it
    cannot break the pod listings of everyone who sees the pod."""
    answer = await client.put(
        f"{PODS}/{CENSUS}", headers=alice.headers, json={"schema": _nested(250)}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation-failed"
    listed = await client.get(PODS, headers=admin.headers)
    assert listed.status_code == 200


async def test_schema_depth_limit_is_exact(client: httpx.AsyncClient, alice: Account) -> None:
    """A schema exactly at the depth limit is stored and shown; one level more is not."""
    deepest = await client.put(
        f"{PODS}/{CENSUS}", headers=alice.headers, json={"schema": _nested(MAX_SCHEMA_DEPTH)}
    )
    assert deepest.status_code == 201
    assert (await client.get(f"{PODS}/{CENSUS}", headers=alice.headers)).status_code == 200
    too_deep = await client.put(
        f"{PODS}/{CENSUS}", headers=alice.headers, json={"schema": _nested(MAX_SCHEMA_DEPTH + 1)}
    )
    assert too_deep.status_code == 422


# -- secrets in answers, token confusion ---------------------------------------------------


async def test_a_new_api_key_is_not_cached(client: httpx.AsyncClient, alice: Account) -> None:
    """The one answer that shows an API key says no cache may keep it."""
    answer = await client.post("/api/v1/api-keys", headers=alice.headers, json={"name": "ci"})
    assert answer.status_code == 201
    assert answer.headers["cache-control"] == "no-store"


async def test_tokens_of_one_kind_are_not_accepted_as_another(
    client: httpx.AsyncClient, services: HubServices, alice: Account
) -> None:
    """A web session token or a refresh token is not an API credential, and an access
    token is not a refresh token."""
    login = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    refresh = login.json()["refresh_token"]
    user = services.accounts.require_user("alice")
    session = services.accounts.web_session(user, services.now())
    for credential in (session, refresh):
        answer = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {credential}"}
        )
        assert answer.status_code == 401
    swapped = await client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": alice.token}
    )
    assert swapped.json()["code"] == "invalid-grant"
