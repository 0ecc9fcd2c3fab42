"""``HubClient``: the hub's REST API from Python, for the CLI, pods and modellers.

An asyncio client over :class:`httpx.AsyncClient`. The constructor does no I/O; open it
with ``async with``. Answers are parsed into the same pydantic models the hub builds its
OpenAPI document from (:mod:`podium.hub.schemas`)::

    async with HubClient("http://127.0.0.1:8700") as hub:
        await hub.login_password("alice", password)
        for pod in await hub.list_pods():
            print(pod.pod_id, pod.status)

Tests pass ``transport=httpx.ASGITransport(app=create_app(services))`` to talk to a hub
in-process, without a socket.

Errors (both :class:`~podium.core.errors.PodiumError`)::

    HubClientError          exit 5  the hub answered with a problem (``.status``, ``.code``)
    └── HubUnreachableError exit 6  no answer: the hub is down, the URL is wrong, a timeout

An access token that expired is refreshed once, when the client holds a refresh token,
and the request retried; the hub then rotates the refresh token, so pass ``on_tokens`` to
save the new pair.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from podium._version import __version__
from podium.core.errors import ExitCode, PodiumError
from podium.hub.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    AuditPage,
    DecisionIn,
    DecisionOut,
    DeviceAuthorizationOut,
    GrantChange,
    GrantOut,
    Health,
    HeartbeatOut,
    LimitOut,
    PodIn,
    PodList,
    PodOut,
    ProjectDetail,
    ProjectOut,
    PublicKeyOut,
    RolesOut,
    TokenOut,
    UserOut,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEVICE_GRANT",
    "HubClient",
    "HubClientError",
    "HubUnreachableError",
    "split_pod_id",
]

_log = logging.getLogger("podium.hub.client")

API_PREFIX = "/api/v1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_TIMEOUT_S = 30.0
#: RFC 8628 section 3.5: on ``slow_down`` the interval grows by 5 seconds.
_SLOW_DOWN_STEP_S = 5
_M = TypeVar("_M", bound=BaseModel)
Sleep = Callable[[float], Awaitable[object]]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of this process: building one loads the system's
    CA certificates, which costs more than a whole request to a hub on loopback."""
    return ssl.create_default_context()


class HubClientError(PodiumError):
    """The hub refused a request: ``status`` is the HTTP status, ``code`` the hub's error
    code (``pod-not-found``, ``token-expired``, ...), the message its title and detail."""

    exit_code = ExitCode.HUB

    def __init__(self, status: int, code: str, title: str, detail: str | None = None) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        message = title if not detail or detail == title else f"{title.rstrip('.')}: {detail}"
        super().__init__(message)


class HubUnreachableError(HubClientError):
    """No answer from the hub: it is not running, the URL is wrong, or it timed out."""

    exit_code = ExitCode.HUB_UNREACHABLE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, "unreachable", reason)
        self.url = url


def split_pod_id(pod_id: str) -> tuple[str, str]:
    """``"owner/name"`` as ``(owner, name)``; ValueError for anything else."""
    owner, slash, name = pod_id.strip().partition("/")
    if not slash or not owner or not name or "/" in name:
        raise ValueError(f"{pod_id!r} is not a pod identifier: write it as OWNER/NAME")
    return owner, name


def _seg(value: str) -> str:
    """One path segment, percent-encoded (a '/' or '..' cannot change the route)."""
    return quote(value, safe="")


def _pod_path(pod_id: str) -> str:
    owner, name = split_pod_id(pod_id)
    return f"/pods/{_seg(owner)}/{_seg(name)}"


def _problem(response: httpx.Response) -> HubClientError:
    """The error for a non-2xx answer: the hub's problem document, or the bare status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        detail = body.get("detail")
        return HubClientError(
            response.status_code,
            body["code"],
            str(body.get("title") or f"HTTP {response.status_code}"),
            detail if isinstance(detail, str) else None,
        )
    return HubClientError(
        response.status_code,
        "http-error",
        f"The server at {response.request.url} answered HTTP {response.status_code} "
        f"{response.reason_phrase}: is this a Podium hub?",
    )


class HubClient:
    """An async client of one hub.

    Args:
        base_url: The hub's address, e.g. ``http://127.0.0.1:8700``.
        token: An access token or an API key (``pdm_...``), sent as a bearer token.
        refresh_token: Lets the client refresh an expired access token once per request.
        on_tokens: Called with every new token pair (login, refresh), to save it.
        transport: An httpx transport, e.g. ``httpx.ASGITransport(app=...)`` in tests.
        timeout: Seconds to wait for the hub on each request.
        client_id: The OAuth client id sent with device logins.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        on_tokens: Callable[[TokenOut], object] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        client_id: str = "podium-cli",
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self._token = token
        self._refresh_token = refresh_token
        self._on_tokens = on_tokens
        self._transport = transport
        self._timeout = timeout
        self._client_id = client_id
        self._http: httpx.AsyncClient | None = None
        self._refresh_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> HubClient:
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self._transport,
            verify=_tls_context(),
            timeout=self._timeout,
            headers={"User-Agent": f"podium/{__version__}", "Accept": "application/json"},
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (the transport too, unless one was passed in)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    @property
    def token(self) -> str | None:
        """The access token or API key the client sends."""
        return self._token

    @property
    def refresh_token(self) -> str | None:
        """The refresh token of the last login or refresh, if any."""
        return self._refresh_token

    # -- plumbing --------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, object] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        if self._http is None:
            raise RuntimeError("open the HubClient first: `async with HubClient(url) as hub:`")
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in (1, 2):
            token = self._token if auth else None
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await self._send(
                method, path, json=json, data=data, params=query, headers=headers
            )
            if response.is_success:
                return response
            error = _problem(response)
            expired = attempt == 1 and token is not None and error.code == "token-expired"
            if expired and await self._refreshed(token or ""):
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: object,
        data: Mapping[str, str] | None,
        params: Mapping[str, object],
        headers: dict[str, str],
    ) -> httpx.Response:
        assert self._http is not None
        url = API_PREFIX + path
        try:
            return await self._http.request(
                method,
                url,
                json=json,
                data=data,
                params=params,  # type: ignore[arg-type]  # httpx takes any primitive
                headers=headers,
            )
        except httpx.TimeoutException as exc:
            raise HubUnreachableError(
                self.base_url,
                f"the hub at {self.base_url} did not answer within {self._timeout:g} s "
                f"({type(exc).__name__}): is it overloaded, or is the URL right?",
            ) from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise HubUnreachableError(
                self.base_url,
                f"cannot reach the hub at {self.base_url} ({reason}): "
                "is `podium hub serve` running, and is the URL right?",
            ) from exc

    async def _refreshed(self, expired: str) -> bool:
        """Refresh once after ``expired`` was refused; whether a retry may succeed."""
        async with self._refresh_lock:
            if self._token != expired:
                return True  # another request refreshed meanwhile
            if not self._refresh_token:
                return False
            try:
                await self.refresh()
            except HubUnreachableError:
                raise
            except HubClientError as exc:
                _log.info("could not refresh the access token: %s", exc)
                return False
            return True

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        try:
            return model.model_validate(response.json())
        except ValueError as exc:
            raise self._unexpected(response, model.__name__) from exc

    def _parse_list(self, model: type[_M], response: httpx.Response) -> list[_M]:
        try:
            return TypeAdapter(list[model]).validate_python(response.json())  # type: ignore[valid-type]
        except ValueError as exc:
            raise self._unexpected(response, f"a list of {model.__name__}") from exc

    def _unexpected(self, response: httpx.Response, expected: str) -> HubClientError:
        return HubClientError(
            response.status_code,
            "unexpected-answer",
            f"The answer of {self.base_url} to {response.request.method} "
            f"{response.request.url.path} is not a {expected}: is this a Podium hub of "
            f"a matching version (this client is {__version__})?",
        )

    def _adopt(self, tokens: TokenOut) -> TokenOut:
        self._token = tokens.access_token
        self._refresh_token = tokens.refresh_token
        if self._on_tokens is not None:
            self._on_tokens(tokens)
        return tokens

    async def _token_grant(self, form: dict[str, str]) -> TokenOut:
        response = await self._request("POST", "/auth/token", data=form, auth=False)
        return self._adopt(self._parse(TokenOut, response))

    # -- health and authentication ---------------------------------------------------

    async def health(self) -> Health:
        """The hub's health and version (no authentication)."""
        return self._parse(Health, await self._request("GET", "/health", auth=False))

    async def login_password(self, username: str, password: str) -> TokenOut:
        """Log in with a password; the client uses the new tokens from now on."""
        return await self._token_grant(
            {"grant_type": "password", "username": username, "password": password}
        )

    async def refresh(self, refresh_token: str | None = None) -> TokenOut:
        """New tokens for a refresh token (default: the client's); the old one stops
        working."""
        token = refresh_token or self._refresh_token
        if not token:
            raise HubClientError(0, "no-refresh-token", "There is no refresh token: log in.")
        return await self._token_grant({"grant_type": "refresh_token", "refresh_token": token})

    async def start_device_login(self) -> DeviceAuthorizationOut:
        """Start a device login (RFC 8628): show the user ``user_code`` and
        ``verification_uri_complete``, then :meth:`poll_device_login`."""
        response = await self._request(
            "POST", "/auth/device/code", data={"client_id": self._client_id}, auth=False
        )
        return self._parse(DeviceAuthorizationOut, response)

    async def poll_device_login(
        self, authorization: DeviceAuthorizationOut, *, sleep: Sleep = asyncio.sleep
    ) -> TokenOut:
        """Wait until the user approves the device login, then adopt the tokens.

        Polls every ``interval`` seconds, 5 more after each ``slow_down``; raises
        :class:`HubClientError` when the user denies it (``access-denied``) or the code
        expires (``expired-device-code``).
        """
        interval = max(1, authorization.interval)
        waited = 0.0
        form = {
            "grant_type": DEVICE_GRANT,
            "device_code": authorization.device_code,
            "client_id": self._client_id,
        }
        while True:
            if waited >= authorization.expires_in:
                raise HubClientError(
                    400,
                    "expired-device-code",
                    "The device code has expired: start the login again.",
                )
            await sleep(interval)
            waited += interval
            try:
                return await self._token_grant(form)
            except HubUnreachableError:
                raise
            except HubClientError as exc:
                if exc.code == "slow-down":
                    interval += _SLOW_DOWN_STEP_S
                elif exc.code != "authorization-pending":
                    raise

    async def revoke(self, refresh_token: str | None = None) -> None:
        """Log out: the refresh token (default: the client's) stops working."""
        token = refresh_token or self._refresh_token
        if token:
            await self._request("POST", "/auth/revoke", data={"token": token}, auth=False)
        if token == self._refresh_token:
            self._refresh_token = None

    # -- users and API keys ----------------------------------------------------------

    async def me(self) -> UserOut:
        """The authenticated user."""
        return self._parse(UserOut, await self._request("GET", "/users/me"))

    async def fresh_token(self) -> str:
        """A credential the hub accepts now: the current access token (or API key), after
        one cheap authenticated request that refreshes an expired token first.

        Pass the method itself as a relay connection's credential, so a connection the hub
        closed for an expired token (``4440``) dials again with a fresh one:
        ``WebSocketTransport(hub_url, client.fresh_token)``.

        Raises:
            HubClientError: The token expired and cannot be refreshed (log in again).
        """
        await self.me()
        if self._token is None:  # pragma: no cover - me() above needs a token
            raise HubClientError(401, "not-authenticated", "Not signed in")
        return self._token

    async def users(self) -> list[UserOut]:
        """Every account (hub admins only)."""
        return self._parse_list(UserOut, await self._request("GET", "/users"))

    async def create_user(self, name: str, password: str, *, is_admin: bool = False) -> UserOut:
        """A new account (hub admins only)."""
        body = {"name": name, "password": password, "is_admin": is_admin}
        return self._parse(UserOut, await self._request("POST", "/users", json=body))

    async def create_api_key(self, name: str) -> ApiKeyCreated:
        """A new API key; its ``key`` is in this answer only."""
        response = await self._request("POST", "/api-keys", json={"name": name})
        return self._parse(ApiKeyCreated, response)

    async def list_api_keys(self) -> list[ApiKeyOut]:
        """Your API keys (without the keys)."""
        return self._parse_list(ApiKeyOut, await self._request("GET", "/api-keys"))

    async def revoke_api_key(self, key_id: str) -> None:
        """The key stops working at once."""
        await self._request("DELETE", f"/api-keys/{_seg(key_id)}")

    # -- public keys -----------------------------------------------------------------

    async def register_key(
        self, owner: str, purpose: Literal["signing", "encryption"], public_key: str
    ) -> PublicKeyOut:
        """Register a raw 32-byte public key (base64url) of yourself or your pod."""
        body = {"owner": owner, "purpose": purpose, "public_key": public_key}
        return self._parse(PublicKeyOut, await self._request("POST", "/keys", json=body))

    async def list_keys(
        self,
        owner: str,
        *,
        purpose: Literal["signing", "encryption"] | None = None,
        include_revoked: bool = False,
    ) -> list[PublicKeyOut]:
        """An owner's keys (``alice`` or ``alice/census``), newest first."""
        params = {"owner": owner, "purpose": purpose, "include_revoked": include_revoked}
        return self._parse_list(PublicKeyOut, await self._request("GET", "/keys", params=params))

    async def get_key(self, key_id: str) -> PublicKeyOut:
        """One key by id, revoked or not."""
        return self._parse(PublicKeyOut, await self._request("GET", f"/keys/{_seg(key_id)}"))

    async def revoke_key(self, key_id: str) -> PublicKeyOut:
        """Revoke one of your keys."""
        response = await self._request("DELETE", f"/keys/{_seg(key_id)}")
        return self._parse(PublicKeyOut, response)

    # -- pods ------------------------------------------------------------------------

    async def register_pod(self, pod_id: str, pod: PodIn) -> PodOut:
        """Register or update a pod ``owner/name``."""
        body = pod.model_dump(mode="json", by_alias=True)
        response = await self._request("PUT", _pod_path(pod_id), json=body)
        return self._parse(PodOut, response)

    async def list_pods(
        self,
        *,
        search: str | None = None,
        owner: str | None = None,
        include_archived: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[PodOut]:
        """Pods you own or hold a role on (every pod, for an admin)."""
        params = {
            "q": search,
            "owner": owner,
            "include_archived": include_archived,
            "limit": limit,
            "offset": offset,
        }
        response = await self._request("GET", "/pods", params=params)
        return self._parse(PodList, response).pods

    async def get_pod(self, pod_id: str) -> PodOut:
        """A pod's details, schema and current public keys."""
        return self._parse(PodOut, await self._request("GET", _pod_path(pod_id)))

    async def heartbeat(self, pod_id: str) -> HeartbeatOut:
        """Mark a pod online; the answer says when to send the next heartbeat."""
        response = await self._request("POST", f"{_pod_path(pod_id)}/heartbeat")
        return self._parse(HeartbeatOut, response)

    async def archive_pod(self, pod_id: str) -> PodOut:
        """Hide a pod; registering it again brings it back."""
        return self._parse(PodOut, await self._request("POST", f"{_pod_path(pod_id)}/archive"))

    # -- access ----------------------------------------------------------------------

    async def list_grants(
        self, *, pod_id: str | None = None, user: str | None = None
    ) -> list[GrantOut]:
        """Who holds which role on ``pod_id``; without it, your roles on every pod (an
        admin may name another ``user``)."""
        if pod_id is not None:
            response = await self._request("GET", f"{_pod_path(pod_id)}/grants")
        else:
            response = await self._request("GET", "/grants", params={"user": user})
        return self._parse_list(GrantOut, response)

    async def grant(self, pod_id: str, user: str, role: str) -> GrantChange:
        """Give ``user`` a role, or a preset's roles, on a pod you manage."""
        response = await self._request(
            "POST", f"{_pod_path(pod_id)}/grants", json={"user": user, "role": role}
        )
        return self._parse(GrantChange, response)

    async def revoke_grant(self, pod_id: str, user: str, role: str) -> GrantChange:
        """Take a role (or a preset's roles) away."""
        path = f"{_pod_path(pod_id)}/grants/{_seg(user)}/{_seg(role)}"
        return self._parse(GrantChange, await self._request("DELETE", path))

    async def list_limits(self, pod_id: str) -> list[LimitOut]:
        """Model inference limits on a pod."""
        response = await self._request("GET", f"{_pod_path(pod_id)}/limits")
        return self._parse_list(LimitOut, response)

    async def set_limit(
        self, pod_id: str, user: str, max_inferences: int, *, model: str = "*"
    ) -> LimitOut:
        """Cap ``user``'s inference of ``model`` (``*``: every model) on a pod."""
        body = {"model": model, "max_inferences": max_inferences}
        path = f"{_pod_path(pod_id)}/limits/{_seg(user)}"
        return self._parse(LimitOut, await self._request("PUT", path, json=body))

    async def remove_limit(self, pod_id: str, user: str, model: str = "*") -> None:
        """Remove a limit (no error when none was set)."""
        await self._request("DELETE", f"{_pod_path(pod_id)}/limits/{_seg(user)}/{_seg(model)}")

    async def roles(self) -> RolesOut:
        """The roles and presets the hub knows."""
        return self._parse(RolesOut, await self._request("GET", "/roles"))

    async def decide(self, request: DecisionIn) -> DecisionOut:
        """Ask the access manager whether a modeller may run a task on a pod."""
        body = request.model_dump(mode="json")
        response = await self._request("POST", "/access/decide", json=body)
        return self._parse(DecisionOut, response)

    async def audit(
        self, *, pod_id: str | None = None, limit: int = 100, before: int | None = None
    ) -> AuditPage:
        """Audit events, newest first; pass ``next_before`` as ``before`` for older ones."""
        params: dict[str, Any] = {"pod": pod_id, "limit": limit, "before": before}
        return self._parse(AuditPage, await self._request("GET", "/audit", params=params))

    # -- projects --------------------------------------------------------------------

    async def create_project(
        self, name: str, *, display_name: str = "", description: str = ""
    ) -> ProjectOut:
        """A project owned by you."""
        body = {"name": name, "display_name": display_name, "description": description}
        return self._parse(ProjectOut, await self._request("POST", "/projects", json=body))

    async def list_projects(self) -> list[ProjectOut]:
        """Projects you own or belong to."""
        return self._parse_list(ProjectOut, await self._request("GET", "/projects"))

    async def get_project(self, name: str) -> ProjectDetail:
        """A project with its members, pods and approved tasks."""
        response = await self._request("GET", f"/projects/{_seg(name)}")
        return self._parse(ProjectDetail, response)

    async def add_project_member(self, project: str, user: str) -> None:
        """Add a member (project owner only)."""
        await self._request("PUT", f"/projects/{_seg(project)}/members/{_seg(user)}")

    async def remove_project_member(self, project: str, user: str) -> None:
        """Remove a member (project owner only)."""
        await self._request("DELETE", f"/projects/{_seg(project)}/members/{_seg(user)}")

    async def add_project_pod(self, project: str, pod_id: str) -> None:
        """Add a pod you own to a project."""
        await self._request("PUT", f"/projects/{_seg(project)}{_pod_path(pod_id)}")

    async def remove_project_pod(self, project: str, pod_id: str) -> None:
        """Take a pod you own out of a project."""
        await self._request("DELETE", f"/projects/{_seg(project)}{_pod_path(pod_id)}")

    async def approve_task(self, project: str, task_hash: str, *, description: str = "") -> None:
        """Approve a task definition by hash (project owner only)."""
        body = {"task_hash": task_hash, "description": description}
        await self._request("POST", f"/projects/{_seg(project)}/tasks", json=body)

    async def revoke_task(self, project: str, task_hash: str) -> None:
        """Withdraw a task approval (project owner only)."""
        await self._request("DELETE", f"/projects/{_seg(project)}/tasks/{_seg(task_hash)}")
