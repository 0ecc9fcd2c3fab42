"""The web UI's route class: errors become pages, never problem JSON or tracebacks.

- :class:`LoginRequiredError` becomes a redirect to the login page;
- :class:`HubError` becomes an error page with the catalogue's status and public text;
- a malformed request (a bad path or form field) becomes a 400 page.

Anything else falls through to the app's handler, which logs it and answers 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from podium.hub.errors import CATALOGUE, ErrorCode, HubError
from podium.hub.web.render import render
from podium.hub.web.session import (
    COOKIE,
    LoginRequiredError,
    clear_session,
    get_services,
    login_url,
)

__all__ = ["WebRoute", "error_page"]

_log = logging.getLogger("podium.hub.web")

#: Codes that mean "your session is not good": sign in again.
_SIGN_IN_AGAIN = {ErrorCode.UNAUTHENTICATED, ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED}


def error_page(request: Request, exc: HubError) -> Response:
    """The page for a refused request: status, title and the public detail."""
    entry = CATALOGUE[exc.code]
    detail = exc.detail if exc.detail and exc.detail != entry.title else None
    return render(
        request,
        "error.html",
        principal=getattr(request.state, "principal", None),
        status_code=entry.status,
        headers={k: v for k, v in exc.headers.items() if k.lower() == "retry-after"},
        status=entry.status,
        title=entry.title,
        detail=detail,
    )


def _to_login(request: Request, next_path: str | None) -> Response:
    response = RedirectResponse(login_url(next_path), status_code=303)
    if request.cookies.get(COOKIE):
        clear_session(response, get_services(request))
    return response


class WebRoute(APIRoute):
    """An APIRoute whose errors are answered as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequiredError as exc:
                return _to_login(request, exc.next_path)
            except HubError as exc:
                if exc.code in _SIGN_IN_AGAIN:
                    return _to_login(request, None)
                _log.info("web %s %s: %s", request.method, request.url.path, exc.code)
                return error_page(request, exc)
            except RequestValidationError:
                return error_page(request, HubError(ErrorCode.BAD_REQUEST))

        return handle
