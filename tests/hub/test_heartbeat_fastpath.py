"""The heartbeat's fast path answers exactly as the FastAPI route does, and only when the
one-statement check passes; every refusal comes from the route with its precise error."""

from __future__ import annotations

import httpx
import pytest

from podium.hub.services import HubServices
from tests.hub.conftest import Account

PODS = "/api/v1/pods"


async def _api_key(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    created = await client.post("/api/v1/api-keys", headers=account.headers, json={"name": "p"})
    assert created.status_code == 201
    return {"Authorization": f"Bearer {created.json()['key']}"}


@pytest.fixture
async def census(client: httpx.AsyncClient, alice: Account) -> str:
    """Alice's registered pod."""
    answer = await client.put(f"{PODS}/alice/census", headers=alice.headers, json={})
    assert answer.status_code == 201
    return f"{PODS}/alice/census/heartbeat"


async def test_api_key_heartbeat_is_answered_like_the_route(
    client: httpx.AsyncClient, alice: Account, services: HubServices, census: str
) -> None:
    """An API-key heartbeat (fast path) and a token heartbeat (route) give the same answer."""
    fast = await client.post(census, headers=await _api_key(client, alice))
    routed = await client.post(census, headers=alice.headers)
    assert fast.status_code == routed.status_code == 200
    assert fast.json() == routed.json() == {"status": "online", "next_heartbeat_s": 10.0}
    assert fast.headers["content-type"] == routed.headers["content-type"]
    assert fast.headers["x-content-type-options"] == "nosniff"
    pod = services.store.get_pod("alice", "census")
    assert pod is not None
    assert pod.last_heartbeat_at == services.now()


async def test_fast_path_records_the_keys_use(
    client: httpx.AsyncClient, alice: Account, services: HubServices, census: str
) -> None:
    """A heartbeat through the fast path still marks the API key as used."""
    headers = await _api_key(client, alice)
    await client.post(census, headers=headers)
    (key,) = services.store.list_api_keys("alice")
    assert key.last_used_at == services.now()


async def test_revoked_key_gets_the_routes_precise_error(
    client: httpx.AsyncClient, alice: Account, census: str
) -> None:
    """A revoked key is not let through by the fast path; the route says it is revoked."""
    headers = await _api_key(client, alice)
    keys = await client.get("/api/v1/api-keys", headers=alice.headers)
    key_id = keys.json()[0]["key_id"]
    assert (await client.delete(f"/api/v1/api-keys/{key_id}", headers=alice.headers)).is_success
    answer = await client.post(census, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "api-key-revoked"
    assert "invalid_token" in answer.headers["www-authenticate"]


async def test_another_users_key_cannot_beat_for_a_pod(
    client: httpx.AsyncClient, alice: Account, bob: Account, services: HubServices, census: str
) -> None:
    """Bob's valid API key does not mark Alice's pod online: 404 from the route."""
    answer = await client.post(census, headers=await _api_key(client, bob))
    assert answer.status_code == 404
    assert answer.json()["code"] == "pod-not-found"
    pod = services.store.get_pod("alice", "census")
    assert pod is not None
    assert pod.last_heartbeat_at is None


async def test_forged_secret_is_refused(
    client: httpx.AsyncClient, alice: Account, census: str
) -> None:
    """A real key id with a made-up secret is refused as an invalid token."""
    headers = await _api_key(client, alice)
    key = headers["Authorization"].removeprefix("Bearer ")
    forged = key[: key.rindex("_") + 1] + "A" * 43
    answer = await client.post(census, headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid-token"


async def test_other_methods_and_paths_pass_through(
    client: httpx.AsyncClient, alice: Account, census: str
) -> None:
    """GET on the heartbeat path and lookalike paths are FastAPI's to answer."""
    headers = await _api_key(client, alice)
    assert (await client.get(census, headers=headers)).status_code == 405
    lookalike = await client.post(f"{PODS}/alice/census/heartbeat/x", headers=headers)
    assert lookalike.status_code == 404
