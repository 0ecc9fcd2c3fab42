"""Who is signed in to the web UI, and the checks every form post passes.

The session is a signed token (:meth:`AccountService.web_session`) in the ``podium_session``
cookie: HttpOnly, SameSite=Strict, Path=/, Secure when the hub says so or its public URL is
HTTPS. Every POST form carries a hidden ``csrf`` field bound to the session
(:meth:`TokenSigner.csrf_token`), and every POST must come from the hub's own origin (its
``Origin`` or ``Referer`` header).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Form, Request, Response

from podium.hub.accounts import Principal
from podium.hub.errors import ErrorCode, HubError
from podium.hub.services import HubServices

__all__ = [
    "COOKIE",
    "CsrfUser",
    "LoginRequiredError",
    "SameOrigin",
    "WebUser",
    "clear_session",
    "csrf_for",
    "current_principal",
    "get_services",
    "login_url",
    "safe_next",
    "secure_cookies",
    "set_session",
]

_log = logging.getLogger("podium.hub.web.session")

COOKIE = "podium_session"
#: Longest ``next`` path accepted after login.
_MAX_NEXT = 2000


class LoginRequiredError(Exception):
    """Raised by a page that needs a signed-in user; answered with a redirect to /login."""

    def __init__(self, next_path: str | None) -> None:
        super().__init__("sign-in required")
        self.next_path = next_path


def get_services(request: Request) -> HubServices:
    """The hub's services, attached to the app when it was built."""
    services: HubServices = request.app.state.services
    return services


def current_principal(request: Request, services: HubServices) -> Principal | None:
    """The signed-in user, or None (no cookie, or a bad or expired one)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        principal = services.accounts.authenticate_session(cookie, services.now())
    except HubError as exc:
        _log.debug("session cookie refused: %s", exc.code)
        return None
    request.state.principal = principal
    return principal


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a local path (one leading ``/``, no scheme, host or backslash),
    else None: a login must never send the user to another site."""
    if not value or len(value) > _MAX_NEXT or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def login_url(next_path: str | None) -> str:
    """The login page, coming back to ``next_path`` afterwards."""
    target = safe_next(next_path)
    if target is None or target in {"/", "/pods"}:
        return "/login"
    return f"/login?next={quote(target, safe='')}"


def require_user(request: Request) -> Principal:
    """The signed-in user; otherwise a redirect to the login page (coming back here for
    page views)."""
    principal = current_principal(request, get_services(request))
    if principal is None:
        here = request.url.path
        if request.url.query:
            here = f"{here}?{request.url.query}"
        raise LoginRequiredError(here if request.method == "GET" else None)
    return principal


WebUser = Annotated[Principal, Depends(require_user)]


def _host_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.netloc.lower()


def _allowed_hosts(request: Request, services: HubServices) -> set[str]:
    """The hub's own host: as the request names it, and as ``public_url`` does (behind a
    proxy the scheme may differ, so only the host and port are compared)."""
    allowed = {request.headers.get("host", "").lower()}
    if services.config.public_url:
        public = _host_of(services.config.public_url)
        if public:
            allowed.add(public)
    return allowed


def check_same_origin(request: Request) -> None:
    """Refuse a POST whose ``Origin`` (or, failing that, ``Referer``) names another host.

    Browsers send ``Origin`` on every form post (the pages set a same-origin referrer
    policy so it is the real origin, not ``null``); clients that send neither are not
    browsers, so there is no ambient cookie to abuse and they pass.
    """
    header = request.headers.get("origin") or request.headers.get("referer")
    if header is None:
        return
    host = _host_of(header)
    if host is None or host not in _allowed_hosts(request, get_services(request)):
        _log.warning("refused a cross-origin form post to %r", request.url.path)
        raise HubError(ErrorCode.FORBIDDEN, "this form was sent from another site")


SameOrigin = Depends(check_same_origin)


def require_csrf(
    request: Request,
    principal: WebUser,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Principal:
    """The signed-in user of a form post that carries this session's anti-forgery token."""
    signer = get_services(request).signer
    if (
        not csrf
        or principal.session_id is None
        or not signer.check_csrf(principal.session_id, csrf)
    ):
        _log.warning("refused a form post to %r without a valid csrf token", request.url.path)
        raise HubError(ErrorCode.FORBIDDEN, "the form has expired: reload the page and retry")
    return principal


CsrfUser = Annotated[Principal, Depends(require_csrf)]


def csrf_for(services: HubServices, principal: Principal | None) -> str:
    """The anti-forgery token for ``principal``'s forms ('' when signed out)."""
    if principal is None or principal.session_id is None:
        return ""
    return services.signer.csrf_token(principal.session_id)


def secure_cookies(services: HubServices) -> bool:
    """Whether the session cookie is Secure: when the hub says so, or when users reach it
    over HTTPS (its ``public_url``), so the cookie never travels in clear text."""
    public = (services.config.public_url or "").lower()
    return services.config.secure_cookies or public.startswith("https://")


def set_session(response: Response, services: HubServices, token: str) -> None:
    """Put the session token in its cookie."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=services.config.web_session_ttl_s,
        path="/",
        secure=secure_cookies(services),
        httponly=True,
        samesite="strict",
    )


def clear_session(response: Response, services: HubServices) -> None:
    """Remove the session cookie."""
    response.delete_cookie(
        COOKIE,
        path="/",
        secure=secure_cookies(services),
        httponly=True,
        samesite="strict",
    )
