"""``/api/v1/pods``: registering, seeing, searching, heartbeats and archiving pods."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.hub.conftest import Account, Clock
from tests.hub.test_api_keys_registry import NOT_A_POINT, b64, encryption_key, signing_key

PODS = "/api/v1/pods"
SCHEMA = {"columns": [{"name": "age", "type": "int64"}, {"name": "income", "type": "float64"}]}


async def put_pod(
    client: httpx.AsyncClient, account: Account, pod_id: str, **body: Any
) -> httpx.Response:
    """Register or update a pod."""
    return await client.put(
        f"{PODS}/{pod_id}", headers=account.headers, json={"display_name": pod_id, **body}
    )


async def pod_ids(client: httpx.AsyncClient, account: Account, **params: Any) -> list[str]:
    """The identifiers of the pods ``account`` lists."""
    answer = await client.get(PODS, headers=account.headers, params=params)
    assert answer.status_code == 200, answer.text
    return [p["pod_id"] for p in answer.json()["pods"]]


async def grant(
    client: httpx.AsyncClient, owner: Account, pod_id: str, user: str, role: str
) -> None:
    """Give ``user`` a role on ``pod_id``."""
    answer = await client.post(
        f"{PODS}/{pod_id}/grants", headers=owner.headers, json={"user": user, "role": role}
    )
    assert answer.status_code == 201, answer.text


async def test_register_then_update(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """The first PUT registers (201), the next updates (200) and keeps ``created_at``."""
    created = await put_pod(
        client, alice, "alice/census", schema=SCHEMA, schema_hash="ab12", number_of_records=500
    )
    assert created.status_code == 201
    body = created.json()
    assert body["pod_id"] == "alice/census"
    assert body["schema"] == SCHEMA
    assert body["number_of_records"] == 500
    assert body["status"] == "offline"

    clock.advance(60)
    updated = await put_pod(client, alice, "alice/census", description="Census 2026")
    assert updated.status_code == 200
    assert updated.json()["description"] == "Census 2026"
    assert updated.json()["created_at"] == body["created_at"]
    assert updated.json()["updated_at"] == "2026-11-22T12:01:00Z"


async def test_number_of_records_hidden(client: httpx.AsyncClient, alice: Account) -> None:
    """A pod that hides its size shows ``number_of_records: null``."""
    answer = await put_pod(client, alice, "alice/census")
    assert answer.json()["number_of_records"] is None
    got = await client.get(f"{PODS}/alice/census", headers=alice.headers)
    assert got.json()["number_of_records"] is None
    assert (await put_pod(client, alice, "alice/census", number_of_records=0)).json()[
        "number_of_records"
    ] == 0


async def test_only_owner_or_admin_registers(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    """Bob cannot register or change a pod under Alice's name; an admin can."""
    refused = await put_pod(client, bob, "alice/census")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not-pod-owner"
    assert (await put_pod(client, admin, "alice/census")).status_code == 201
    assert (await put_pod(client, bob, "alice/census")).status_code == 403
    assert (await put_pod(client, admin, "nobody/census")).status_code == 404


async def test_visibility(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    """Others get the same 404 as for a missing pod; a grantee sees the pod."""
    await put_pod(client, alice, "alice/census")
    hidden = await client.get(f"{PODS}/alice/census", headers=bob.headers)
    missing = await client.get(f"{PODS}/alice/nothing", headers=bob.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"] == "pod-not-found"
    assert await pod_ids(client, bob) == []

    await grant(client, alice, "alice/census", "bob", "viewer")
    seen = await client.get(f"{PODS}/alice/census", headers=bob.headers)
    assert seen.status_code == 200
    assert await pod_ids(client, bob) == ["alice/census"]


async def test_admin_lists_every_pod(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    """An admin sees all pods; filters by owner narrow the list."""
    await put_pod(client, alice, "alice/census")
    await put_pod(client, bob, "bob/trials")
    assert await pod_ids(client, admin) == ["alice/census", "bob/trials"]
    assert await pod_ids(client, admin, owner="bob") == ["bob/trials"]
    assert await pod_ids(client, alice) == ["alice/census"]


async def test_list_pages(client: httpx.AsyncClient, alice: Account) -> None:
    """``limit`` and ``offset`` page through the list in identifier order."""
    for name in ("c", "a", "b"):
        await put_pod(client, alice, f"alice/{name}")
    assert await pod_ids(client, alice, limit=2) == ["alice/a", "alice/b"]
    assert await pod_ids(client, alice, limit=2, offset=2) == ["alice/c"]
    assert (await client.get(PODS, headers=alice.headers, params={"limit": 0})).status_code == 422


SQLISH = "Robert'); DROP TABLE pods; --"


async def test_sql_looking_text_is_data(client: httpx.AsyncClient, alice: Account) -> None:
    """Text that looks like SQL is stored and searched as plain text."""
    answer = await put_pod(
        client, alice, "alice/census", display_name=SQLISH, description="' OR '1'='1"
    )
    assert answer.status_code == 201
    assert answer.json()["display_name"] == SQLISH
    await put_pod(client, alice, "alice/trials", description="clinical trials")
    assert await pod_ids(client, alice, q="DROP TABLE") == ["alice/census"]
    assert await pod_ids(client, alice, q="' OR '1'='1") == ["alice/census"]
    assert await pod_ids(client, alice, q="%") == []
    assert await pod_ids(client, alice, q="_") == []
    assert await pod_ids(client, alice, q="clinical") == ["alice/trials"]
    assert await pod_ids(client, alice) == ["alice/census", "alice/trials"]


async def test_heartbeat_online_then_offline(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """A heartbeat marks the pod online; after three missed intervals it shows offline."""
    await put_pod(client, alice, "alice/census")
    beat = await client.post(f"{PODS}/alice/census/heartbeat", headers=alice.headers)
    assert beat.status_code == 200
    assert beat.json() == {"status": "online", "next_heartbeat_s": 10.0}

    async def status() -> str:
        got = await client.get(f"{PODS}/alice/census", headers=alice.headers)
        value: str = got.json()["status"]
        return value

    assert await status() == "online"
    clock.advance(30)
    assert await status() == "online"
    clock.advance(1)
    assert await status() == "offline"
    await client.post(f"{PODS}/alice/census/heartbeat", headers=alice.headers)
    assert await status() == "online"


async def test_heartbeat_for_others_pod_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Only the pod's owner sends its heartbeats, even a grantee gets 404."""
    await put_pod(client, alice, "alice/census")
    await grant(client, alice, "alice/census", "bob", "admin")
    answer = await client.post(f"{PODS}/alice/census/heartbeat", headers=bob.headers)
    assert answer.status_code == 404
    got = await client.get(f"{PODS}/alice/census", headers=alice.headers)
    assert got.json()["last_heartbeat_at"] is None


async def test_heartbeat_for_missing_pod(client: httpx.AsyncClient, alice: Account) -> None:
    """A heartbeat for a pod never registered is 404."""
    answer = await client.post(f"{PODS}/alice/nothing/heartbeat", headers=alice.headers)
    assert answer.status_code == 404


async def test_archive(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    """Archiving hides a pod and refuses heartbeats; registering it again brings it back."""
    await put_pod(client, alice, "alice/census")
    await grant(client, alice, "alice/census", "bob", "viewer")
    assert (
        await client.post(f"{PODS}/alice/census/archive", headers=bob.headers)
    ).status_code == 403

    archived = await client.post(f"{PODS}/alice/census/archive", headers=alice.headers)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert await pod_ids(client, alice) == []
    assert await pod_ids(client, alice, include_archived="true") == ["alice/census"]
    beat = await client.post(f"{PODS}/alice/census/heartbeat", headers=alice.headers)
    assert beat.status_code == 409
    assert beat.json()["code"] == "pod-archived"

    back = await put_pod(client, alice, "alice/census")
    assert back.status_code == 200
    assert back.json()["status"] == "offline"
    assert await pod_ids(client, alice) == ["alice/census"]
    assert (
        await client.post(f"{PODS}/alice/census/heartbeat", headers=alice.headers)
    ).status_code == 200


async def test_register_with_keys(client: httpx.AsyncClient, alice: Account) -> None:
    """Keys sent with the registration are registered for the pod and shown with it."""
    answer = await put_pod(
        client, alice, "alice/census", signing_key=signing_key(), encryption_key=encryption_key()
    )
    assert answer.status_code == 201
    assert sorted(k["algorithm"] for k in answer.json()["keys"]) == ["Ed25519", "X25519"]
    assert {k["owner"] for k in answer.json()["keys"]} == {"alice/census"}


async def test_bad_key_refuses_whole_registration(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """A registration with an invalid key registers nothing."""
    answer = await put_pod(client, alice, "alice/census", signing_key=b64(NOT_A_POINT))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid-public-key"
    got = await client.get(f"{PODS}/alice/census", headers=alice.headers)
    assert got.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"display_name": "x" * 201},
        {"description": "nul \x00 inside"},
        {"number_of_records": -1},
        {"number_of_records": 2**63},
        {"schema": ["not", "an", "object"]},
        {"owner": "bob"},
    ],
)
async def test_registration_validated(
    client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
) -> None:
    """Out-of-range or unknown fields are refused with 422 and nothing is stored."""
    answer = await client.put(f"{PODS}/alice/census", headers=alice.headers, json=body)
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation-failed"
    assert (await client.get(f"{PODS}/alice/census", headers=alice.headers)).status_code == 404


@pytest.mark.parametrize("path", ["Alice/census", "alice/-census", "alice/a%20b"])
async def test_bad_pod_names(client: httpx.AsyncClient, alice: Account, path: str) -> None:
    """Pod identifiers follow the name rule."""
    answer = await client.put(f"{PODS}/{path}", headers=alice.headers, json={})
    assert answer.status_code == 422
