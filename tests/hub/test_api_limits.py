"""Bad input at the API's edge: oversized bodies, missing or malformed credentials on
every protected route, and validation answers that never echo what was sent."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from podium.hub.app import create_app
from podium.hub.services import HubServices
from tests.hub.conftest import Account, Clock, make_account, make_services

LIMIT = 1024
#: Routes that answer without credentials.
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/device/code"),
    ("POST", "/api/v1/auth/revoke"),
}
#: Fits every path parameter's pattern: names, hex key ids and task hashes.
PATH_VALUE = "abcdef0123456789"


@pytest.fixture
def small_services(tmp_path: Path, clock: Clock) -> HubServices:
    """Hub services that accept request bodies of at most 1 KiB."""
    return make_services(tmp_path, clock, max_body_bytes=LIMIT)


@pytest.fixture
def small_app(small_services: HubServices) -> FastAPI:
    """The API with the 1 KiB body limit."""
    return create_app(small_services, web=False)


@pytest.fixture
async def small_client(small_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``small_app``."""
    transport = httpx.ASGITransport(app=small_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
        yield http


@pytest.fixture
async def small_alice(small_services: HubServices, small_client: httpx.AsyncClient) -> Account:
    """Alice on the small hub."""
    return await make_account(small_services, small_client, "alice")


async def raw_request(
    app: FastAPI,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    chunks: Iterable[bytes],
) -> tuple[int, dict[str, str], Any]:
    """Drive the ASGI app directly, with exactly these headers and body chunks."""
    pending = list(chunks) or [b""]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 1234),
        "server": ("hub.test", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(body) if body else None


# -- body size ---------------------------------------------------------------------------


async def test_oversized_by_content_length(
    small_app: FastAPI, small_client: httpx.AsyncClient, small_alice: Account
) -> None:
    """A declared body over the limit is refused with 413 before it is read."""
    body = json.dumps({"description": "x" * (2 * LIMIT)}).encode()
    answer = await small_client.put(
        "/api/v1/pods/alice/census",
        headers={**small_alice.headers, "content-type": "application/json"},
        content=body,
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "body-too-large"
    assert answer.headers["x-content-type-options"] == "nosniff"
    missing = await small_client.get("/api/v1/pods/alice/census", headers=small_alice.headers)
    assert missing.status_code == 404


async def test_oversized_streamed_without_length(small_app: FastAPI, small_alice: Account) -> None:
    """A chunked body with no Content-Length is cut off once it passes the limit: 413."""
    chunks = [b'{"description": "', *([b"x" * 512] * 4), b'"}']
    headers = [("authorization", small_alice.headers["Authorization"])]
    headers.append(("content-type", "application/json"))
    status, _, body = await raw_request(
        small_app, "PUT", "/api/v1/pods/alice/census", headers, chunks
    )
    assert status == 413
    assert body["code"] == "body-too-large"


async def test_oversized_streamed_form(
    small_client: httpx.AsyncClient, small_alice: Account
) -> None:
    """A streamed form (the token endpoint) over the limit is 413 as well."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"grant_type=password&username=alice&password="
        for _ in range(4):
            yield b"x" * 512

    answer = await small_client.post(
        "/api/v1/auth/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        content=stream(),
    )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413


async def test_body_under_limit_accepted(small_app: FastAPI, small_alice: Account) -> None:
    """A streamed body under the limit goes through."""
    headers = [
        ("authorization", small_alice.headers["Authorization"]),
        ("content-type", "application/json"),
    ]
    chunks = [b'{"description": "', b"x" * 100, b'"}']
    status, _, body = await raw_request(
        small_app, "PUT", "/api/v1/pods/alice/census", headers, chunks
    )
    assert status == 201
    assert body["description"] == "x" * 100


async def test_malformed_content_length(small_app: FastAPI, small_alice: Account) -> None:
    """A Content-Length that is not a number is a bad request."""
    headers = [
        ("authorization", small_alice.headers["Authorization"]),
        ("content-type", "application/json"),
        ("content-length", "-5"),
    ]
    status, _, body = await raw_request(
        small_app, "PUT", "/api/v1/pods/alice/census", headers, [b"{}"]
    )
    assert status == 400
    assert body["code"] == "bad-request"


# -- credentials -------------------------------------------------------------------------


def _protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every API operation but the public ones, with path parameters filled in. (Taken
    from the OpenAPI document: this FastAPI nests included routers in ``app.routes``.)"""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if (method.upper(), path) not in PUBLIC:
                routes.append((method.upper(), re.sub(r"\{[^}]+\}", PATH_VALUE, path)))
    return routes


async def test_every_protected_route_needs_credentials(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Every non-public API route answers 401 with WWW-Authenticate when uncredentialed."""
    routes = _protected_routes(app)
    assert len(routes) >= 30
    for method, path in routes:
        answer = await client.request(method, path)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["code"] == "unauthenticated", (method, path)
        assert answer.headers["www-authenticate"] == "Bearer", (method, path)


async def test_public_routes_answer_without_credentials(client: httpx.AsyncClient) -> None:
    """The public routes are reachable without a token."""
    assert (await client.get("/api/v1/health")).json()["status"] == "ok"
    for method, path in PUBLIC - {("GET", "/api/v1/health")}:
        assert (await client.request(method, path)).status_code != 401, path


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer", "unauthenticated"),
        ("Bearer ", "unauthenticated"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "unauthenticated"),
        ("Token abc", "unauthenticated"),
        ("Bearer not-a-token", "invalid-token"),
        ("Bearer a.b.c", "invalid-token"),
        ("Bearer pdm_0123456789ab_secret", "invalid-token"),
    ],
)
async def test_malformed_authorization(
    client: httpx.AsyncClient, alice: Account, authorization: str, code: str
) -> None:
    """Malformed or unknown credentials answer 401 with WWW-Authenticate."""
    answer = await client.get("/api/v1/users/me", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["code"] == code
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_token_with_extra_words_refused(client: httpx.AsyncClient, alice: Account) -> None:
    """A valid token followed by junk is not a valid token."""
    answer = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"{alice.headers['Authorization']} junk"}
    )
    assert answer.status_code == 401


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, alice: Account) -> None:
    """``bearer`` works like ``Bearer`` (RFC 7235: schemes are case-insensitive)."""
    token = alice.headers["Authorization"].split(" ", 1)[1]
    answer = await client.get("/api/v1/users/me", headers={"Authorization": f"bearer {token}"})
    assert answer.status_code == 200


# -- validation answers ------------------------------------------------------------------

SECRET = "Sup3r-Secret-Passw0rd-Value"


async def test_validation_does_not_echo_password(client: httpx.AsyncClient, admin: Account) -> None:
    """A 422 says which field is wrong, never what was sent in it."""
    answer = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"name": "Not A Name", "password": SECRET, "is_admin": SECRET},
    )
    assert answer.status_code == 422
    assert "name" in answer.json()["detail"]
    assert "is_admin" in answer.json()["detail"]
    assert SECRET not in answer.text
    assert "Not A Name" not in answer.text


async def test_validation_does_not_echo_form_secret(client: httpx.AsyncClient) -> None:
    """An over-long password on the token endpoint is refused without echoing it."""
    long_secret = SECRET * 100
    answer = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "alice", "password": long_secret},
    )
    assert answer.status_code == 422
    assert "password" in answer.json()["detail"]
    assert SECRET not in answer.text


async def test_broken_json_not_echoed(client: httpx.AsyncClient, admin: Account) -> None:
    """A body that is not JSON is refused without quoting it."""
    answer = await client.post(
        "/api/v1/users",
        headers={**admin.headers, "content-type": "application/json"},
        content=f'{{"name": "carol", "password": "{SECRET}'.encode(),
    )
    assert answer.status_code == 422
    assert SECRET not in answer.text
