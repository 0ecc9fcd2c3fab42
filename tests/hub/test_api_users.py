"""``/api/v1/users`` and ``/api/v1/api-keys``: who am I, admin-only accounts, API keys."""

from __future__ import annotations

import httpx

from podium.hub.services import HubServices
from tests.hub.conftest import Account, Clock


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _new_key(client: httpx.AsyncClient, account: Account, name: str) -> dict[str, str]:
    answer = await client.post("/api/v1/api-keys", headers=account.headers, json={"name": name})
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    return body


async def test_me(client: httpx.AsyncClient, alice: Account) -> None:
    """``/users/me`` names the caller, without any secret."""
    answer = await client.get("/api/v1/users/me", headers=alice.headers)
    assert answer.status_code == 200
    assert answer.json()["name"] == "alice"
    assert answer.json()["is_admin"] is False
    assert "password" not in answer.text
    assert "argon2" not in answer.text


async def test_users_list_is_admin_only(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    """Only an admin lists the accounts; others get 403 ``admin-required``."""
    refused = await client.get("/api/v1/users", headers=alice.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "admin-required"
    listed = await client.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    assert {u["name"] for u in listed.json()} == {"alice", "root"}
    assert "argon2" not in listed.text


async def test_create_user_is_admin_only(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    """Only an admin creates accounts; the new user can log in."""
    body = {"name": "carol", "password": "a long password"}
    refused = await client.post("/api/v1/users", headers=alice.headers, json=body)
    assert refused.status_code == 403
    created = await client.post("/api/v1/users", headers=admin.headers, json=body)
    assert created.status_code == 201
    assert created.json()["name"] == "carol"
    login = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "carol", "password": "a long password"},
    )
    assert login.status_code == 200
    again = await client.post("/api/v1/users", headers=admin.headers, json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "already-exists"


async def test_create_user_validates(client: httpx.AsyncClient, admin: Account) -> None:
    """Bad names and short passwords are refused with 422."""
    for body in (
        {"name": "Carol", "password": "a long password"},
        {"name": "carol", "password": "short"},
        {"name": "carol", "password": "a long password", "extra": 1},
    ):
        answer = await client.post("/api/v1/users", headers=admin.headers, json=body)
        assert answer.status_code == 422, body


async def test_api_key_create_and_use(
    services: HubServices, client: httpx.AsyncClient, alice: Account
) -> None:
    """A new API key is shown once and authenticates as its owner; only its hash is kept."""
    created = await _new_key(client, alice, "laptop")
    assert created["key"].startswith("pdm_")
    assert created["name"] == "laptop"
    me = await client.get("/api/v1/users/me", headers=_bearer(created["key"]))
    assert me.status_code == 200
    assert me.json()["name"] == "alice"
    stored = services.store.get_api_key(created["key_id"])
    assert stored is not None
    assert created["key"].split("_", 2)[2] not in stored.secret_hash


async def test_api_key_never_listed(client: httpx.AsyncClient, alice: Account) -> None:
    """The list shows ids, names and dates, never the key or its hash."""
    created = await _new_key(client, alice, "laptop")
    listed = await client.get("/api/v1/api-keys", headers=alice.headers)
    assert listed.status_code == 200
    assert [k["key_id"] for k in listed.json()] == [created["key_id"]]
    secret = created["key"].split("_", 2)[2]
    assert secret not in listed.text
    assert all("key" not in k and "secret_hash" not in k for k in listed.json())


async def test_api_key_last_used(client: httpx.AsyncClient, alice: Account, clock: Clock) -> None:
    """Using a key records when it was last used."""
    created = await _new_key(client, alice, "laptop")
    clock.advance(10)
    await client.get("/api/v1/users/me", headers=_bearer(created["key"]))
    listed = (await client.get("/api/v1/api-keys", headers=alice.headers)).json()
    assert listed[0]["last_used_at"] == "2026-11-22T12:00:10Z"


async def test_revoked_api_key_refused(client: httpx.AsyncClient, alice: Account) -> None:
    """A revoked key answers 401 ``api-key-revoked`` and is listed as revoked."""
    created = await _new_key(client, alice, "laptop")
    revoked = await client.delete(f"/api/v1/api-keys/{created['key_id']}", headers=alice.headers)
    assert revoked.status_code == 204
    answer = await client.get("/api/v1/users/me", headers=_bearer(created["key"]))
    assert answer.status_code == 401
    assert answer.json()["code"] == "api-key-revoked"
    assert "www-authenticate" in answer.headers
    listed = (await client.get("/api/v1/api-keys", headers=alice.headers)).json()
    assert listed[0]["revoked_at"] is not None


async def test_wrong_api_key_secret_refused(client: httpx.AsyncClient, alice: Account) -> None:
    """A key id with the wrong secret is ``invalid-token``."""
    created = await _new_key(client, alice, "laptop")
    forged = f"pdm_{created['key_id']}_{'A' * 43}"
    answer = await client.get("/api/v1/users/me", headers=_bearer(forged))
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid-token"


async def test_other_users_key_cannot_be_revoked(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Bob cannot revoke Alice's key (it does not exist, for him); it keeps working."""
    created = await _new_key(client, alice, "laptop")
    answer = await client.delete(f"/api/v1/api-keys/{created['key_id']}", headers=bob.headers)
    assert answer.status_code == 404
    assert answer.json()["code"] == "api-key-not-found"
    me = await client.get("/api/v1/users/me", headers=_bearer(created["key"]))
    assert me.status_code == 200
    assert (await client.get("/api/v1/api-keys", headers=bob.headers)).json() == []


async def test_admin_may_revoke_any_key(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    """A hub admin can revoke anyone's key."""
    created = await _new_key(client, alice, "laptop")
    answer = await client.delete(f"/api/v1/api-keys/{created['key_id']}", headers=admin.headers)
    assert answer.status_code == 204
    me = await client.get("/api/v1/users/me", headers=_bearer(created["key"]))
    assert me.status_code == 401


async def test_unknown_api_key_id(client: httpx.AsyncClient, alice: Account) -> None:
    """Revoking a key id that does not exist (or is not hex) is refused, not an error."""
    assert (
        await client.delete("/api/v1/api-keys/0123456789ab", headers=alice.headers)
    ).status_code == 404
    assert (
        await client.delete("/api/v1/api-keys/NOT-HEX", headers=alice.headers)
    ).status_code == 422


async def test_api_key_name_validated(client: httpx.AsyncClient, alice: Account) -> None:
    """A key needs a name of 1 to 100 characters without NUL."""
    for name in ("", "x" * 101, "a\x00b"):
        answer = await client.post("/api/v1/api-keys", headers=alice.headers, json={"name": name})
        assert answer.status_code == 422, name
