"""The web UI's route class: errors become pages, never problem JSON or tracebacks.

- :class:`LoginRequiredError` becomes a redirect to the login page;
- :class:`HubError` becomes an error page with the catalogue's status and public text;
- a malformed request (a bad path, form field or body) becomes a 4xx page.

- anything else is logged with its traceback and answered with the internal-error page
  (the page is the boundary: nothing internal reaches the browser).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

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

#: FastAPI's own refusals (a body it cannot parse, say), by status.
_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
}
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


def _refused(request: Request, exc: HubError) -> Response:
    if exc.code in _SIGN_IN_AGAIN:
        return _to_login(request, None)
    _log.info("web %s %r: %s", request.method, request.url.path, exc.code)
    return error_page(request, exc)


def _malformed(exc: RequestValidationError | HTTPException) -> ErrorCode:
    if isinstance(exc, HTTPException):
        return _HTTP_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    return ErrorCode.BAD_REQUEST


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
                return _refused(request, exc)
            except (RequestValidationError, HTTPException) as exc:
                return error_page(request, HubError(_malformed(exc)))
            except Exception:  # noqa: BLE001 - the page boundary: logged, then a plain page
                _log.exception("unhandled error on web %s %r", request.method, request.url.path)
                return error_page(request, HubError(ErrorCode.INTERNAL_ERROR))

        return handle
