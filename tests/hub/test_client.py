"""``HubClient`` against the hub app in-process: every endpoint, its errors, the device
login's polling, and the refresh of expired access tokens."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from podium._version import __version__
from podium.core.errors import ExitCode
from podium.hub.client import HubClient, HubClientError, HubUnreachableError, split_pod_id
from podium.hub.schemas import DecisionIn, PodIn, TokenOut
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, Clock

BASE = "http://hub.test"
SCHEMA = {
    "name": "census",
    "num_records": 3,
    "columns": [{"name": "age", "stype": "continuous", "dtype": "integer"}],
}
TASK_HASH = "ab" * 16


def _raw_key(private: Ed25519PrivateKey | X25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def transport(app: FastAPI) -> httpx.ASGITransport:
    """A transport into the hub app, no socket."""
    return httpx.ASGITransport(app=app)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Closes the clients a test opens."""
    async with AsyncExitStack() as exits:
        yield exits


async def _logged_in(
    services: HubServices,
    transport: httpx.AsyncBaseTransport,
    stack: AsyncExitStack,
    name: str,
    *,
    is_admin: bool = False,
    on_tokens: Callable[[TokenOut], object] | None = None,
) -> HubClient:
    services.accounts.create_user(name, PASSWORD, is_admin=is_admin, now=services.now())
    hub = await stack.enter_async_context(HubClient(BASE, transport=transport, on_tokens=on_tokens))
    await hub.login_password(name, PASSWORD)
    return hub


@pytest.fixture
async def alice(
    services: HubServices, transport: httpx.ASGITransport, stack: AsyncExitStack
) -> HubClient:
    """Alice, logged in: she owns pods."""
    return await _logged_in(services, transport, stack, "alice")


@pytest.fixture
async def bob(
    services: HubServices, transport: httpx.ASGITransport, stack: AsyncExitStack
) -> HubClient:
    """Bob, logged in: a modeller."""
    return await _logged_in(services, transport, stack, "bob")


@pytest.fixture
async def census(alice: HubClient) -> str:
    """Alice's pod ``alice/census``, registered with a schema."""
    await alice.register_pod(
        "alice/census", PodIn(display_name="Census", schema_=SCHEMA, number_of_records=3)
    )
    return "alice/census"


# -- opening, health and errors ---------------------------------------------------------


async def test_constructor_does_no_io_and_requires_opening() -> None:
    """A client is built without I/O; a request before ``async with`` is a clear error."""
    hub = HubClient("http://nowhere.invalid/", token="t")
    assert hub.base_url == "http://nowhere.invalid"
    with pytest.raises(RuntimeError, match="async with"):
        await hub.health()


async def test_health_needs_no_login(transport: httpx.ASGITransport) -> None:
    """``health`` answers without a token and gives the hub's version."""
    async with HubClient(BASE, transport=transport) as hub:
        health = await hub.health()
    assert health.status == "ok"
    assert health.version == __version__


async def test_problem_becomes_hub_client_error(alice: HubClient) -> None:
    """A refusal raises HubClientError with the status, code, title and detail."""
    with pytest.raises(HubClientError) as caught:
        await alice.get_pod("alice/missing")
    error = caught.value
    assert (error.status, error.code) == (404, "pod-not-found")
    assert str(error).startswith("No such pod, or you cannot see it")
    assert error.detail is not None
    assert error.detail in str(error)
    assert error.exit_code == ExitCode.HUB


async def test_no_token_is_unauthenticated(transport: httpx.ASGITransport) -> None:
    """A call that needs a login, without a token, is refused 401 ``unauthenticated``."""
    async with HubClient(BASE, transport=transport) as hub:
        with pytest.raises(HubClientError) as caught:
            await hub.me()
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")


async def test_wrong_password(services: HubServices, transport: httpx.ASGITransport) -> None:
    """A wrong password raises ``invalid-credentials`` and leaves the client without tokens."""
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=services.now())
    async with HubClient(BASE, transport=transport) as hub:
        with pytest.raises(HubClientError) as caught:
            await hub.login_password("alice", "not the password")
        assert hub.token is None
    assert caught.value.code == "invalid-credentials"
    assert str(caught.value) == "Wrong user name or password."


def _failing(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


async def test_unreachable_hub_names_the_url() -> None:
    """A refused connection raises HubUnreachableError naming the URL and the fix."""
    transport = _failing(httpx.ConnectError("Connection refused"))
    async with HubClient("http://127.0.0.1:9", transport=transport) as hub:
        with pytest.raises(HubUnreachableError) as caught:
            await hub.health()
    message = str(caught.value)
    assert "cannot reach the hub at http://127.0.0.1:9" in message
    assert "podium hub serve" in message
    assert caught.value.exit_code == ExitCode.HUB_UNREACHABLE


async def test_timeout_is_unreachable() -> None:
    """A timeout raises HubUnreachableError saying how long the client waited."""
    transport = _failing(httpx.ReadTimeout("timed out"))
    async with HubClient("http://hub.test", transport=transport, timeout=2.5) as hub:
        with pytest.raises(HubUnreachableError, match=r"did not answer within 2\.5 s"):
            await hub.health()


async def test_a_server_that_is_not_a_hub() -> None:
    """An HTML 404 or a 200 that is not the expected body raises a clear error."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/health"):
            return httpx.Response(200, json={"hello": "world"})
        return httpx.Response(404, text="<html>not here</html>")

    async with HubClient("http://web.test", transport=httpx.MockTransport(handler)) as hub:
        with pytest.raises(HubClientError) as not_found:
            await hub.me()
        with pytest.raises(HubClientError) as odd:
            await hub.health()
    assert (not_found.value.status, not_found.value.code) == (404, "http-error")
    assert "is this a Podium hub?" in str(not_found.value)
    assert odd.value.code == "unexpected-answer"


def test_split_pod_id() -> None:
    """Pod ids are OWNER/NAME; anything else is a ValueError saying so."""
    assert split_pod_id("alice/census") == ("alice", "census")
    for bad in ("alice", "alice/", "/census", "a/b/c"):
        with pytest.raises(ValueError, match="OWNER/NAME"):
            split_pod_id(bad)


async def test_path_segments_are_encoded(alice: HubClient, census: str) -> None:
    """A role or key id with '/' or '..' stays one path segment: it cannot reach another
    route."""
    with pytest.raises(HubClientError) as caught:
        await alice.revoke_grant(census, "bob", "../../../users/me")
    assert caught.value.status in (404, 422)
    with pytest.raises(HubClientError) as missing_key:
        await alice.get_key("../users/me")
    assert missing_key.value.status == 404


# -- tokens -------------------------------------------------------------------------------


async def test_login_adopts_and_reports_tokens(
    services: HubServices, transport: httpx.ASGITransport, stack: AsyncExitStack
) -> None:
    """After a login the client sends the new token, and ``on_tokens`` saw the pair."""
    seen: list[TokenOut] = []
    hub = await _logged_in(services, transport, stack, "alice", on_tokens=seen.append)
    assert [t.username for t in seen] == ["alice"]
    assert hub.token == seen[0].access_token
    assert hub.refresh_token == seen[0].refresh_token
    assert (await hub.me()).name == "alice"


async def test_expired_access_token_is_refreshed_once(
    services: HubServices,
    transport: httpx.ASGITransport,
    stack: AsyncExitStack,
    clock: Clock,
) -> None:
    """An expired access token is refreshed, the request retried, the new pair saved."""
    seen: list[TokenOut] = []
    hub = await _logged_in(services, transport, stack, "alice", on_tokens=seen.append)
    clock.advance(services.config.access_token_ttl_s + 1)
    me = await hub.me()
    assert me.name == "alice"
    assert len(seen) == 2
    assert hub.token == seen[1].access_token != seen[0].access_token


async def test_fresh_token_refreshes_only_an_expired_token(
    services: HubServices,
    transport: httpx.ASGITransport,
    stack: AsyncExitStack,
    clock: Clock,
) -> None:
    """fresh_token (a relay transport's credential function) keeps a live token and
    replaces an expired one with a token the hub accepts."""
    seen: list[TokenOut] = []
    hub = await _logged_in(services, transport, stack, "alice", on_tokens=seen.append)
    first = await hub.fresh_token()
    assert first == seen[0].access_token
    clock.advance(services.config.access_token_ttl_s + 1)
    second = await hub.fresh_token()
    assert second == seen[1].access_token != first
    assert services.accounts.authenticate_bearer(second, clock()).name == "alice"


async def test_concurrent_expired_requests_refresh_once(
    services: HubServices,
    transport: httpx.ASGITransport,
    stack: AsyncExitStack,
    clock: Clock,
) -> None:
    """Requests that find the token expired at the same time share one refresh (the
    refresh token rotates, so a second refresh would fail)."""
    seen: list[TokenOut] = []
    hub = await _logged_in(services, transport, stack, "alice", on_tokens=seen.append)
    clock.advance(services.config.access_token_ttl_s + 1)
    answers = await asyncio.gather(hub.me(), hub.list_api_keys(), hub.roles(), hub.me())
    assert answers[0].name == "alice"
    assert len(seen) == 2


async def test_expired_token_without_refresh_token_fails(
    services: HubServices, transport: httpx.ASGITransport, stack: AsyncExitStack, clock: Clock
) -> None:
    """With only an access token, expiry raises ``token-expired``."""
    first = await _logged_in(services, transport, stack, "alice")
    hub = await stack.enter_async_context(HubClient(BASE, token=first.token, transport=transport))
    clock.advance(services.config.access_token_ttl_s + 1)
    with pytest.raises(HubClientError) as caught:
        await hub.me()
    assert (caught.value.status, caught.value.code) == (401, "token-expired")


async def test_failed_refresh_reports_the_expiry(
    services: HubServices, transport: httpx.ASGITransport, stack: AsyncExitStack, clock: Clock
) -> None:
    """When the refresh token no longer works, the original ``token-expired`` is raised."""
    hub = await _logged_in(services, transport, stack, "alice")
    assert hub.refresh_token is not None
    services.accounts.revoke_refresh(hub.refresh_token, services.now())
    clock.advance(services.config.access_token_ttl_s + 1)
    with pytest.raises(HubClientError) as caught:
        await hub.me()
    assert caught.value.code == "token-expired"


async def test_revoke_logs_out(alice: HubClient) -> None:
    """After ``revoke`` the old refresh token no longer refreshes."""
    old = alice.refresh_token
    await alice.revoke()
    assert alice.refresh_token is None
    with pytest.raises(HubClientError) as caught:
        await alice.refresh(old)
    assert caught.value.code == "invalid-grant"


# -- device login -----------------------------------------------------------------------


async def test_device_login_polls_until_approved(
    services: HubServices, transport: httpx.ASGITransport, clock: Clock
) -> None:
    """The client waits ``interval`` between polls and gets tokens once approved."""
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=services.now())
    slept: list[float] = []
    async with HubClient(BASE, transport=transport) as hub:
        authorization = await hub.start_device_login()

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)
            if len(slept) == 3:
                services.accounts.decide_device_login(
                    authorization.user_code, "alice", approve=True, now=clock()
                )

        tokens = await hub.poll_device_login(authorization, sleep=sleep)
        assert tokens.username == "alice"
        assert (await hub.me()).name == "alice"
    assert authorization.verification_uri == f"{BASE}/device"
    assert slept == [authorization.interval] * 3


async def test_device_login_slows_down(
    services: HubServices, transport: httpx.ASGITransport, clock: Clock
) -> None:
    """On ``slow_down`` the client polls 5 seconds less often, as RFC 8628 says."""
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=services.now())
    slept: list[float] = []
    async with HubClient(BASE, transport=transport) as hub:
        authorization = await hub.start_device_login()

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == 2:
                return  # the hub's clock stands still: the next poll is too fast
            clock.advance(seconds)
            if len(slept) == 3:
                services.accounts.decide_device_login(
                    authorization.user_code, "alice", approve=True, now=clock()
                )

        await hub.poll_device_login(authorization, sleep=sleep)
    interval = authorization.interval
    assert slept == [interval, interval, interval + 5]


async def test_device_login_denied(
    services: HubServices, transport: httpx.ASGITransport, clock: Clock
) -> None:
    """A denied device login raises ``access-denied``."""
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=services.now())
    async with HubClient(BASE, transport=transport) as hub:
        authorization = await hub.start_device_login()
        services.accounts.decide_device_login(
            authorization.user_code, "alice", approve=False, now=clock()
        )

        async def sleep(seconds: float) -> None:
            clock.advance(seconds)

        with pytest.raises(HubClientError) as caught:
            await hub.poll_device_login(authorization, sleep=sleep)
    assert caught.value.code == "access-denied"


async def test_device_login_expires(transport: httpx.ASGITransport, clock: Clock) -> None:
    """Nobody approving: polling ends with ``expired-device-code``."""
    polls: list[float] = []
    async with HubClient(BASE, transport=transport) as hub:
        authorization = await hub.start_device_login()

        async def sleep(seconds: float) -> None:
            polls.append(seconds)
            clock.advance(seconds)

        with pytest.raises(HubClientError) as caught:
            await hub.poll_device_login(authorization, sleep=sleep)
    assert caught.value.code == "expired-device-code"
    assert sum(polls) <= authorization.expires_in + authorization.interval


# -- users and API keys -----------------------------------------------------------------


async def test_users_admin_only(
    services: HubServices,
    transport: httpx.ASGITransport,
    stack: AsyncExitStack,
    alice: HubClient,
) -> None:
    """An admin lists and creates users; anyone else gets ``admin-required``."""
    root = await _logged_in(services, transport, stack, "root", is_admin=True)
    created = await root.create_user("carol", "a long password")
    assert (created.name, created.is_admin) == ("carol", False)
    assert {u.name for u in await root.users()} == {"alice", "root", "carol"}
    with pytest.raises(HubClientError) as caught:
        await alice.users()
    assert caught.value.code == "admin-required"


async def test_api_key_lifecycle(alice: HubClient, transport: httpx.ASGITransport) -> None:
    """A new API key works as a bearer token until revoked, then ``api-key-revoked``."""
    created = await alice.create_api_key("ci")
    assert created.key.startswith("pdm_")
    listed = await alice.list_api_keys()
    assert [(k.key_id, k.name) for k in listed] == [(created.key_id, "ci")]
    async with HubClient(BASE, token=created.key, transport=transport) as automation:
        assert (await automation.me()).name == "alice"
        await alice.revoke_api_key(created.key_id)
        with pytest.raises(HubClientError) as caught:
            await automation.me()
    assert (caught.value.status, caught.value.code) == (401, "api-key-revoked")
    assert (await alice.list_api_keys())[0].revoked_at is not None


# -- keys and pods ----------------------------------------------------------------------


async def test_public_key_registry(alice: HubClient, census: str) -> None:
    """Keys register, list by owner and purpose, look up by id, and revoke."""
    signing = await alice.register_key("alice", "signing", _raw_key(Ed25519PrivateKey.generate()))
    sealing = await alice.register_key(census, "encryption", _raw_key(X25519PrivateKey.generate()))
    assert signing.algorithm == "Ed25519"
    assert sealing.algorithm == "X25519"
    assert [k.key_id for k in await alice.list_keys("alice", purpose="signing")] == [signing.key_id]
    assert (await alice.get_key(sealing.key_id)).owner == census
    revoked = await alice.revoke_key(signing.key_id)
    assert revoked.revoked_at is not None
    assert await alice.list_keys("alice") == []
    assert len(await alice.list_keys("alice", include_revoked=True)) == 1


async def test_pod_registry(alice: HubClient, census: str, clock: Clock) -> None:
    """Pods register, list, search, show, heartbeat online, and archive."""
    pod = await alice.get_pod(census)
    assert (pod.display_name, pod.schema_, pod.status) == ("Census", SCHEMA, "offline")
    beat = await alice.heartbeat(census)
    assert beat.status == "online"
    assert (await alice.get_pod(census)).status == "online"
    await alice.register_pod("alice/trials", PodIn(description="clinical trials"))
    assert [p.pod_id for p in await alice.list_pods(search="clinical")] == ["alice/trials"]
    assert {p.pod_id for p in await alice.list_pods()} == {census, "alice/trials"}
    archived = await alice.archive_pod("alice/trials")
    assert archived.status == "archived"
    assert [p.pod_id for p in await alice.list_pods()] == [census]
    assert len(await alice.list_pods(include_archived=True)) == 2


async def test_another_users_pod_is_refused(alice: HubClient, bob: HubClient, census: str) -> None:
    """Bob cannot update Alice's pod: ``not-pod-owner``, 403."""
    with pytest.raises(HubClientError) as caught:
        await bob.register_pod(census, PodIn(description="mine now"))
    assert (caught.value.status, caught.value.code) == (403, "not-pod-owner")


# -- access -----------------------------------------------------------------------------


async def test_grants_limits_and_decisions(alice: HubClient, bob: HubClient, census: str) -> None:
    """Alice grants Bob a preset, caps his inference, and the pod's decision accepts him."""
    change = await alice.grant(census, "bob", "general-modeller")
    assert "sql" in change.changed
    on_pod = await alice.list_grants(pod_id=census)
    assert {g.role for g in on_pod} == set(change.changed)
    assert {g.role for g in await bob.list_grants()} == set(change.changed)
    limit = await alice.set_limit(census, "bob", 100)
    assert (limit.model, limit.max_inferences) == ("*", 100)
    assert [x.user for x in await alice.list_limits(census)] == ["bob"]
    decision = await alice.decide(
        DecisionIn(
            modeller="bob",
            pod=census,
            protocol="ResultsOnly",
            algorithms=["SqlQuery"],
            task_hash=TASK_HASH,
        )
    )
    assert decision.decision == "ACCEPT"
    assert [x.max_inferences for x in decision.limits] == [100]
    await alice.remove_limit(census, "bob")
    assert await alice.list_limits(census) == []
    removed = await alice.revoke_grant(census, "bob", "sql")
    assert removed.changed == ["sql"]
    page = await alice.audit(pod_id=census)
    assert {"grant", "decision"} <= {e.action for e in page.events}


async def test_roles(alice: HubClient) -> None:
    """The roles and presets come back as the hub defines them."""
    roles = await alice.roles()
    assert "private-sql" in roles.roles
    assert "viewer" in roles.presets["dp-modeller"]


async def test_projects(alice: HubClient, bob: HubClient, census: str) -> None:
    """A project gathers members, pods and approved tasks; each can be taken out again."""
    created = await alice.create_project("study", display_name="A study")
    assert created.owner == "alice"
    await alice.add_project_member("study", "bob")
    await alice.add_project_pod("study", census)
    await alice.approve_task("study", TASK_HASH, description="counts")
    detail = await bob.get_project("study")
    assert (detail.members, detail.pods) == (["bob"], [census])
    assert [t.task_hash for t in detail.tasks] == [TASK_HASH]
    assert [p.name for p in await bob.list_projects()] == ["study"]
    await alice.revoke_task("study", TASK_HASH)
    await alice.remove_project_pod("study", census)
    await alice.remove_project_member("study", "bob")
    after = await alice.get_project("study")
    assert (after.members, after.pods, after.tasks) == ([], [], [])
    with pytest.raises(HubClientError) as caught:
        await bob.get_project("study")
    assert caught.value.code == "project-not-found"
