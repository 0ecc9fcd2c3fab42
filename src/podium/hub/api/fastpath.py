"""The heartbeat's fast path: an ASGI layer in front of FastAPI for the hub's hottest call.

1,000 pods heartbeating every 10 s make 100 requests a second, each of which would pay for
FastAPI's routing, dependency injection and response validation, about as much CPU as the
heartbeat's own work. This layer answers ``POST /api/v1/pods/{owner}/{name}/heartbeat``
itself when the caller sends an API key that, in one statement, proves to be live, its
owner's, and the pod's (:meth:`HubServices.heartbeat_fast`). Everything else, including
every heartbeat that fails that statement (an access token, a revoked key, a missing or
archived pod), goes on to the FastAPI route, which checks step by step and answers with
the precise error. The answer is the route's, byte for byte; the route also documents the
call in the OpenAPI document.
"""

from __future__ import annotations

import json
import re

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from podium.hub.services import HubServices

__all__ = ["HeartbeatFastPath"]

_NAME = r"[a-z0-9][a-z0-9_-]{0,62}"
_PATH = re.compile(rf"/api/v1/pods/({_NAME})/({_NAME})/heartbeat")


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            return credential.strip() if scheme.lower() == "bearer" else None
    return None


class HeartbeatFastPath:
    """Answer API-key heartbeats without entering FastAPI; pass everything else on."""

    def __init__(self, app: ASGIApp, services: HubServices) -> None:
        self.app = app
        self.services = services
        body = {"status": "online", "next_heartbeat_s": services.config.heartbeat_interval_s}
        self._body = json.dumps(body, separators=(",", ":")).encode()
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
            credential = _bearer(scope["headers"]) if match else None
            if match and credential:
                handled: bool = await run_in_threadpool(
                    self.services.heartbeat_fast, credential, match[1], match[2]
                )
                if handled:
                    start = {"type": "http.response.start", "status": 200, "headers": self._headers}
                    await send(start)
                    await send({"type": "http.response.body", "body": self._body})
                    return
        await self.app(scope, receive, send)
