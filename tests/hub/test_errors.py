"""The error catalogue, the problem documents, and what an unexpected failure shows."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from podium.hub.app import API_PREFIX
from podium.hub.errors import CATALOGUE, ErrorCode, HubError, problem

SECRET_TEXT = "database password is hunter2 at 10.0.0.7"


def test_every_code_has_a_catalogue_entry() -> None:
    """Each error code, and only those, maps to an HTTP error status and a public title."""
    assert set(CATALOGUE) == set(ErrorCode)
    for code, entry in CATALOGUE.items():
        assert 400 <= entry.status <= 599, code
        assert entry.title.strip(), code
        assert entry.title.endswith("."), code


def test_error_codes_are_url_safe_slugs() -> None:
    """Codes go into problem ``type`` URNs: lower-case words joined by hyphens."""
    for code in ErrorCode:
        assert code.value == code.value.lower()
        assert all(part.isalpha() for part in code.value.split("-")), code


def test_oauth_errors_are_rfc_values() -> None:
    """Codes answered on the token endpoint carry RFC 6749 / RFC 8628 ``error`` values."""
    allowed = {
        "invalid_request",
        "invalid_grant",
        "unsupported_grant_type",
        "authorization_pending",
        "slow_down",
        "access_denied",
        "expired_token",
    }
    for entry in CATALOGUE.values():
        assert entry.oauth_error is None or entry.oauth_error in allowed


def test_problem_document_shape() -> None:
    """A problem has type, title, status and code, and the detail only when given."""
    body = problem(ErrorCode.POD_NOT_FOUND, "no pod alice/census")
    assert body == {
        "type": "urn:podium:error:pod-not-found",
        "title": CATALOGUE[ErrorCode.POD_NOT_FOUND].title,
        "status": 404,
        "code": "pod-not-found",
        "detail": "no pod alice/census",
    }
    assert "detail" not in problem(ErrorCode.FORBIDDEN)


def test_problem_carries_oauth_fields() -> None:
    """Token-endpoint codes add ``error`` and ``error_description``."""
    body = problem(ErrorCode.SLOW_DOWN)
    assert body["error"] == "slow_down"
    assert body["error_description"] == CATALOGUE[ErrorCode.SLOW_DOWN].title
    assert "error" not in problem(ErrorCode.NOT_FOUND)


def test_hub_error_takes_status_from_catalogue() -> None:
    """A HubError's status, message and headers come from its code and arguments."""
    error = HubError(ErrorCode.ACCOUNT_LOCKED, "try again in 5 s", headers={"Retry-After": "5"})
    assert error.status == 429
    assert str(error) == "try again in 5 s"
    assert error.headers == {"Retry-After": "5"}
    assert str(HubError(ErrorCode.FORBIDDEN)) == CATALOGUE[ErrorCode.FORBIDDEN].title


@pytest.fixture
async def quiet_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the app's 500 answer instead of the exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
        yield http


async def test_unexpected_exception_is_internal_error(
    app: FastAPI, quiet_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected failure answers 500 ``internal-error``; its text goes only to the log."""

    def boom() -> None:
        raise RuntimeError(SECRET_TEXT)

    app.add_api_route(f"{API_PREFIX}/boom", boom, methods=["GET"])
    with caplog.at_level(logging.ERROR, logger="podium.hub.app"):
        answer = await quiet_client.get(f"{API_PREFIX}/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "internal-error"
    assert "hunter2" not in answer.text
    assert "RuntimeError" not in answer.text
    assert any(SECRET_TEXT in (r.exc_text or "") for r in caplog.records)


async def test_hub_error_becomes_problem(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A HubError raised in a handler answers its catalogue status, detail and headers."""

    def locked() -> None:
        raise HubError(ErrorCode.ACCOUNT_LOCKED, "try again in 7 s", headers={"Retry-After": "7"})

    app.add_api_route(f"{API_PREFIX}/locked", locked, methods=["GET"])
    answer = await client.get(f"{API_PREFIX}/locked")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["code"] == "account-locked"
    assert answer.json()["detail"] == "try again in 7 s"


async def test_unknown_route_is_problem(client: httpx.AsyncClient) -> None:
    """A path with nothing behind it answers a ``not-found`` problem."""
    answer = await client.get(f"{API_PREFIX}/no-such-thing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not-found"


async def test_wrong_method_is_problem(client: httpx.AsyncClient) -> None:
    """A known path with the wrong method answers 405 ``method-not-allowed``."""
    answer = await client.delete(f"{API_PREFIX}/health")
    assert answer.status_code == 405
    assert answer.json()["code"] == "method-not-allowed"


async def test_security_headers_on_answers(client: httpx.AsyncClient) -> None:
    """Every answer forbids sniffing and framing."""
    answer = await client.get(f"{API_PREFIX}/health")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def test_openapi_documents_problem_answers(client: httpx.AsyncClient) -> None:
    """The OpenAPI document says every operation may answer a problem document."""
    document = (await client.get(f"{API_PREFIX}/openapi.json")).json()
    assert "Problem" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = operation["responses"]["4XX"]["content"]
            assert "application/problem+json" in errors, (method, path)
            assert "422" not in operation["responses"], (method, path)
