"""``/api/v1/auth``: password logins with throttling and locking, refresh rotation,
revocation and the device authorization flow (RFC 8628)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from podium.hub.errors import HubError
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, Account, Clock

TOKEN = "/api/v1/auth/token"
DEVICE = "/api/v1/auth/device/code"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password}
    )


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- password login ----------------------------------------------------------------------


async def test_password_login(client: httpx.AsyncClient, alice: Account) -> None:
    """The right password gives a bearer access token, a refresh token, never cached."""
    answer = await _login(client, "alice", PASSWORD)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["username"] == "alice"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    assert answer.headers["cache-control"] == "no-store"
    me = await client.get("/api/v1/users/me", headers=_bearer(body["access_token"]))
    assert me.json()["name"] == "alice"


async def test_wrong_password(client: httpx.AsyncClient, alice: Account) -> None:
    """A wrong password answers 400 ``invalid-credentials`` (OAuth ``invalid_grant``)."""
    answer = await _login(client, "alice", "not the password")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid-credentials"
    assert answer.json()["error"] == "invalid_grant"
    assert "access_token" not in answer.text


async def test_unknown_user_same_answer(client: httpx.AsyncClient, alice: Account) -> None:
    """An unknown user name gets exactly the answer a wrong password gets."""
    wrong = await _login(client, "alice", "not the password")
    unknown = await _login(client, "mallory", "not the password")
    assert unknown.status_code == wrong.status_code
    assert unknown.json() == wrong.json()


@pytest.mark.parametrize("username", ["Alice", "a\x00b", "x" * 2000, "alice'; --"])
async def test_impossible_user_name_same_answer(
    services: HubServices, client: httpx.AsyncClient, alice: Account, username: str
) -> None:
    """A name no account can have answers like a wrong password and is not recorded."""
    answer = await _login(client, username, "not the password")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid-credentials"
    assert services.store.get_login_failures(username) is None


async def test_throttling_then_lockout(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """3 failures throttle (doubling waits), 6 lock for 600 s; Retry-After says how long."""
    for _ in range(3):
        assert (await _login(client, "alice", "wrong password")).status_code == 400
    throttled = await _login(client, "alice", PASSWORD)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "login-throttled"
    assert throttled.headers["retry-after"] == "1"

    clock.advance(1)
    assert (await _login(client, "alice", "wrong password")).status_code == 400
    again = await _login(client, "alice", "wrong password")
    assert again.status_code == 429
    assert again.headers["retry-after"] == "2"

    clock.advance(2)
    assert (await _login(client, "alice", "wrong password")).status_code == 400
    clock.advance(4)
    assert (await _login(client, "alice", "wrong password")).status_code == 400  # the 6th

    locked = await _login(client, "alice", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "account-locked"
    assert locked.headers["retry-after"] == "600"
    clock.advance(300)
    assert (await _login(client, "alice", PASSWORD)).headers["retry-after"] == "300"


async def test_lock_expires(client: httpx.AsyncClient, alice: Account, clock: Clock) -> None:
    """Once the lock time has passed the right password works, and the count restarts."""
    for step in range(6):
        clock.advance(2**step)
        assert (await _login(client, "alice", "wrong password")).status_code == 400
    assert (await _login(client, "alice", PASSWORD)).status_code == 429
    clock.advance(600)
    assert (await _login(client, "alice", "wrong password")).status_code == 400
    assert (await _login(client, "alice", "wrong password")).status_code == 400  # count 2
    assert (await _login(client, "alice", PASSWORD)).status_code == 200


async def test_success_resets_failures(
    services: HubServices, client: httpx.AsyncClient, alice: Account
) -> None:
    """A successful login forgets earlier failures."""
    for _ in range(2):
        await _login(client, "alice", "wrong password")
    assert (await _login(client, "alice", PASSWORD)).status_code == 200
    assert services.store.get_login_failures("alice") is None


async def test_disabled_user_cannot_log_in(
    services: HubServices, client: httpx.AsyncClient, alice: Account
) -> None:
    """A disabled account's password no longer works."""
    user = services.store.get_user("alice")
    assert user is not None
    services.store.update_user(replace(user, disabled=True))
    assert (await _login(client, "alice", PASSWORD)).status_code == 400


async def test_missing_form_fields(client: httpx.AsyncClient) -> None:
    """A password grant without a password is a malformed request."""
    answer = await client.post(TOKEN, data={"grant_type": "password", "username": "alice"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    missing_type = await client.post(TOKEN, data={"username": "alice"})
    assert missing_type.status_code == 422


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    """Grant types other than password, refresh and device code are refused."""
    answer = await client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "unsupported-grant-type"
    assert answer.json()["error"] == "unsupported_grant_type"


async def test_expired_access_token(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """After 15 minutes the access token answers 401 ``token-expired``."""
    clock.advance(901)
    answer = await client.get("/api/v1/users/me", headers=alice.headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "token-expired"
    assert answer.headers["www-authenticate"].startswith("Bearer")


# -- refresh tokens ----------------------------------------------------------------------


async def test_refresh_rotation(client: httpx.AsyncClient, alice: Account) -> None:
    """A refresh token gives new tokens once; the old one is then refused."""
    first = (await _login(client, "alice", PASSWORD)).json()
    second = await _refresh(client, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["cache-control"] == "no-store"
    assert second.json()["refresh_token"] != first["refresh_token"]
    me = await client.get("/api/v1/users/me", headers=_bearer(second.json()["access_token"]))
    assert me.status_code == 200
    reused = await _refresh(client, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_refresh_reuse_revokes_all(client: httpx.AsyncClient, alice: Account) -> None:
    """Presenting a used refresh token again ends every session of that user."""
    first = (await _login(client, "alice", PASSWORD)).json()
    other_session = (await _login(client, "alice", PASSWORD)).json()
    second = (await _refresh(client, first["refresh_token"])).json()
    assert (await _refresh(client, first["refresh_token"])).status_code == 400
    assert (await _refresh(client, second["refresh_token"])).status_code == 400
    assert (await _refresh(client, other_session["refresh_token"])).status_code == 400


async def test_refresh_token_expires(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """A refresh token older than 30 days is refused."""
    first = (await _login(client, "alice", PASSWORD)).json()
    clock.advance(30 * 24 * 3600)
    assert (await _refresh(client, first["refresh_token"])).status_code == 400


async def test_unknown_refresh_token(client: httpx.AsyncClient) -> None:
    """A made-up refresh token is ``invalid_grant``."""
    answer = await _refresh(client, "made-up")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid-grant"


async def test_revoke_endpoint(client: httpx.AsyncClient, alice: Account) -> None:
    """Logging out revokes the refresh token; unknown tokens are not an error."""
    tokens = (await _login(client, "alice", PASSWORD)).json()
    answer = await client.post("/api/v1/auth/revoke", data={"token": tokens["refresh_token"]})
    assert answer.status_code == 204
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 400
    unknown = await client.post("/api/v1/auth/revoke", data={"token": "never-issued"})
    assert unknown.status_code == 204


# -- device authorization ----------------------------------------------------------------


async def _start_device(client: httpx.AsyncClient, client_id: str = "podium-cli") -> Any:
    answer = await client.post(DEVICE, data={"client_id": client_id})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


async def _poll(
    client: httpx.AsyncClient, device_code: str, client_id: str = "podium-cli"
) -> httpx.Response:
    return await client.post(
        TOKEN,
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id},
    )


async def test_device_authorization_answer(client: httpx.AsyncClient) -> None:
    """The device authorization answer names the hub's approval page and the code."""
    started = await _start_device(client)
    assert started["verification_uri"] == "http://hub.test/device"
    assert started["verification_uri_complete"].endswith(f"user_code={started['user_code']}")
    assert started["interval"] == 5
    assert started["expires_in"] == 600


async def test_device_flow_approved(
    services: HubServices, client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """Pending, slow_down when too fast, tokens once approved, then the code is used up."""
    started = await _start_device(client)
    pending = await _poll(client, started["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    too_fast = await _poll(client, started["device_code"])
    assert too_fast.json()["error"] == "slow_down"
    clock.advance(5)
    assert (await _poll(client, started["device_code"])).json()["error"] == (
        "authorization_pending"
    )

    typed = started["user_code"].lower().replace("-", "")  # as a user might type it
    services.accounts.decide_device_login(typed, "alice", approve=True, now=clock())
    clock.advance(5)
    approved = await _poll(client, started["device_code"])
    assert approved.status_code == 200
    assert approved.json()["username"] == "alice"
    me = await client.get("/api/v1/users/me", headers=_bearer(approved.json()["access_token"]))
    assert me.json()["name"] == "alice"

    clock.advance(5)
    second = await _poll(client, started["device_code"])
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


async def test_device_flow_denied(
    services: HubServices, client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """A denied device login answers ``access_denied``."""
    started = await _start_device(client)
    services.accounts.decide_device_login(started["user_code"], "alice", approve=False, now=clock())
    answer = await _poll(client, started["device_code"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "access_denied"


async def test_device_code_decided_once(
    services: HubServices, client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """A user code cannot be approved after it was denied."""
    started = await _start_device(client)
    services.accounts.decide_device_login(started["user_code"], "alice", approve=False, now=clock())
    with pytest.raises(HubError):
        services.accounts.decide_device_login(
            started["user_code"], "alice", approve=True, now=clock()
        )


async def test_device_code_expires(client: httpx.AsyncClient, clock: Clock) -> None:
    """After ten minutes the device code answers ``expired_token``."""
    started = await _start_device(client)
    clock.advance(600)
    answer = await _poll(client, started["device_code"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "expired_token"


@pytest.mark.parametrize("client_id", ["another-cli", "podium-clï", ""])
async def test_device_code_wrong_client(client: httpx.AsyncClient, client_id: str) -> None:
    """The device code polls only with the client id that started it."""
    started = await _start_device(client)
    answer = await _poll(client, started["device_code"], client_id=client_id)
    assert answer.status_code == 400
    assert answer.json()["error"] in {"invalid_grant", "invalid_request"}


async def test_unknown_device_code(client: httpx.AsyncClient) -> None:
    """A made-up device code is ``invalid_grant``."""
    answer = await _poll(client, "made-up")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_device_client_id_validated(client: httpx.AsyncClient) -> None:
    """The device authorization request needs a client id without NUL characters."""
    assert (await client.post(DEVICE, data={})).status_code == 422
    assert (await client.post(DEVICE, data={"client_id": "cli\x00"})).status_code == 422


async def test_refresh_for_disabled_user(
    services: HubServices, client: httpx.AsyncClient, alice: Account
) -> None:
    """A disabled account's refresh token is an invalid grant (not a missing user)."""
    tokens = (await _login(client, "alice", PASSWORD)).json()
    user = services.store.get_user("alice")
    assert user is not None
    services.store.update_user(replace(user, disabled=True))
    answer = await _refresh(client, tokens["refresh_token"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_expired_device_logins_are_purged(
    client: httpx.AsyncClient, services: HubServices, clock: Clock
) -> None:
    """Anyone can start device logins; expired ones are deleted, not kept forever."""
    first = await client.post("/api/v1/auth/device/code", data={"client_id": "cli"})
    assert first.status_code == 200
    user_code = first.json()["user_code"]
    assert services.store.get_device_code_by_user_code(user_code) is not None
    clock.advance(services.config.device_code_ttl_s + 61)
    second = await client.post("/api/v1/auth/device/code", data={"client_id": "cli"})
    assert second.status_code == 200
    assert services.store.get_device_code_by_user_code(user_code) is None
    assert services.store.get_device_code_by_user_code(second.json()["user_code"]) is not None
