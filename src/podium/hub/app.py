"""The hub's ASGI app: REST API under ``/api/v1``, the web UI at ``/``, the relay's
WebSocket at ``/relay`` (with its housekeeping running while the app is served).

:func:`create_app` takes ready services (no I/O here), so tests mount the app in-process
with an in-memory store, and ``podium hub serve`` builds it over the SQL store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium._version import __version__
from podium.hub.api import access, auth, keys, pods, users
from podium.hub.api.fastpath import HeartbeatFastPath
from podium.hub.errors import ErrorCode, HubError, problem
from podium.hub.relay.endpoint import RELAY_PATH, relay_endpoint
from podium.hub.relay.state import run_housekeeping
from podium.hub.schemas import Health, Problem
from podium.hub.services import HubServices

__all__ = ["API_PREFIX", "create_app"]

_log = logging.getLogger("podium.hub.app")

API_PREFIX = "/api/v1"
_PROBLEM = "application/problem+json"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
]
#: Every operation may answer a problem document (the OpenAPI document says so).
_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {_PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, description in (
        ("4XX", "The request was refused: a problem document says why."),
        ("5XX", "The hub failed: a problem document without internal detail."),
    )
}
_STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
}


def problem_response(
    code: ErrorCode, detail: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem document response for ``code``."""
    body = problem(code, detail)
    return JSONResponse(
        body, status_code=int(str(body["status"])), headers=headers, media_type=_PROBLEM
    )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` (by Content-Length, or while streaming),
    and add security headers to every response."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._refuse(scope, receive, send, bad_length=not value.isdigit())
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException: FastAPI passes it on from its body reader (it turns
                    # any other exception into a 400), and the app answers 413.
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, limited_receive, _with_security_headers(send))

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, bad_length: bool
    ) -> None:
        if bad_length:
            response = problem_response(ErrorCode.BAD_REQUEST, "Content-Length is not a number")
        else:
            response = problem_response(
                ErrorCode.BODY_TOO_LARGE, f"the limit is {self.max_bytes} bytes"
            )
        await response(scope, receive, _with_security_headers(send))


def _with_security_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
        await send(message)

    return send_with_headers


def _validation_detail(exc: RequestValidationError) -> str:
    """Where and what, never the rejected input (it may be a secret)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(x) for x in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)[:1000]


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(_: Request, exc: HubError) -> JSONResponse:
        return problem_response(exc.code, exc.detail, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(ErrorCode.VALIDATION_FAILED, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
        return problem_response(code, None, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %r", request.method, request.url.path)
        return problem_response(ErrorCode.INTERNAL_ERROR)


def _document_problems(app: FastAPI) -> None:
    """Add the problem document's schema, which every operation's error answers name."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", Problem.model_json_schema())
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this hook


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the relay's housekeeping and its notifier while the app is served."""
    services: HubServices = app.state.services
    await services.relay.notifier.start()
    housekeeping = asyncio.create_task(run_housekeeping(services.relay))
    try:
        yield
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        await services.relay.notifier.stop()


def create_app(services: HubServices, *, web: bool = True) -> FastAPI:
    """The hub app over ready ``services``; ``web=False`` leaves out the web UI."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Podium hub",
        version=__version__,
        summary="Users, pods, public keys and access for a Podium federation.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        responses=_PROBLEM_RESPONSES,
    )
    _document_problems(app)
    app.state.services = services
    _install_handlers(app)

    @app.get(f"{API_PREFIX}/health", response_model=Health, tags=["health"], summary="Health")
    def health() -> Health:
        """Answers without authentication while the hub is up."""
        return Health(status="ok", version=__version__)

    for module in (auth, users, keys, pods, access):
        app.include_router(module.router, prefix=API_PREFIX)
    app.add_api_websocket_route(RELAY_PATH, relay_endpoint, name="relay")
    if web:
        from podium.hub.web import build_web  # noqa: PLC0415 - Jinja2 only when serving pages

        build_web(app, pods_refresh_s=services.config.web_refresh_s)
    app.add_middleware(HeartbeatFastPath, services=services)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.config.max_body_bytes)
    return app
