"""Signing in and out, and approving a device login (RFC 8628) typed in by the user."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from podium.hub.errors import CATALOGUE, ErrorCode, HubError
from podium.hub.web.render import render
from podium.hub.web.route import WebRoute
from podium.hub.web.session import (
    COOKIE,
    CsrfUser,
    SameOrigin,
    WebUser,
    clear_session,
    current_principal,
    get_services,
    safe_next,
    set_session,
)

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

FormText = Annotated[str | None, Form(max_length=1024)]
UserCode = Annotated[str | None, Query(max_length=32)]
NextQuery = Annotated[str | None, Query(alias="next", max_length=2000)]
NextForm = Annotated[str | None, Form(alias="next", max_length=2000)]


@router.get("/")
def home() -> RedirectResponse:
    """The hub's front page is My Pods."""
    return RedirectResponse("/pods", status_code=303)


@router.get("/login")
def login_page(request: Request, next_path: NextQuery = None) -> Response:
    """The sign-in form; a signed-in user goes straight on."""
    target = safe_next(next_path)
    if current_principal(request, get_services(request)) is not None:
        return RedirectResponse(target or "/pods", status_code=303)
    return render(request, "login.html", principal=None, next=target or "", error=None, username="")


@router.post("/login", dependencies=[SameOrigin])
def login(
    request: Request,
    username: FormText = None,
    password: FormText = None,
    next_path: NextForm = None,
) -> Response:
    """Check the password; on success set the session cookie and go to ``next`` (a local
    path) or My Pods. Failures show the form again with the reason."""
    services = get_services(request)
    target = safe_next(next_path)
    try:
        if not username or not password:
            raise HubError(ErrorCode.INVALID_CREDENTIALS)
        user = services.accounts.authenticate_password(username, password, services.now())
    except HubError as exc:
        return render(
            request,
            "login.html",
            principal=None,
            status_code=exc.status,
            next=target or "",
            error=_login_error(exc),
            username=username or "",
        )
    response = RedirectResponse(target or "/pods", status_code=303)
    set_session(response, services, services.accounts.web_session(user, services.now()))
    return response


def _login_error(exc: HubError) -> str:
    title = CATALOGUE[exc.code].title
    if exc.code in {ErrorCode.LOGIN_THROTTLED, ErrorCode.ACCOUNT_LOCKED} and exc.detail:
        return f"{title} ({exc.detail})"
    return title


@router.post("/logout", dependencies=[SameOrigin])
def logout(request: Request, _: CsrfUser) -> Response:
    """End the session: the cookie stops working on the hub and is removed."""
    services = get_services(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        services.accounts.end_web_session(cookie, services.now())
    response = RedirectResponse("/login", status_code=303)
    clear_session(response, services)
    return response


@router.get("/device")
def device_page(request: Request, principal: WebUser, user_code: UserCode = None) -> Response:
    """Enter a device login code, or confirm the one in the link the CLI printed."""
    if not user_code:
        return render(request, "device.html", principal=principal, code=None, error=None)
    services = get_services(request)
    try:
        code = services.accounts.find_device_login(user_code, services.now())
    except HubError as exc:
        return render(
            request,
            "device.html",
            principal=principal,
            status_code=exc.status,
            code=None,
            error="That code is unknown, already used or expired. Check it and try again.",
        )
    return render(request, "device.html", principal=principal, code=code, error=None)


@router.post("/device", dependencies=[SameOrigin])
def device_decide(
    request: Request,
    principal: CsrfUser,
    user_code: Annotated[str, Form(max_length=32)],
    decision: Annotated[Literal["approve", "deny"], Form()],
) -> Response:
    """Approve or deny a pending device login as the signed-in user."""
    services = get_services(request)
    approve = decision == "approve"
    services.accounts.decide_device_login(
        user_code, principal.name, approve=approve, now=services.now()
    )
    return render(request, "device_done.html", principal=principal, approved=approve)
