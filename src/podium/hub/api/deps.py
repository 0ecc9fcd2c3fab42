"""What every API handler needs: the services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from podium.hub.accounts import Principal
from podium.hub.errors import ErrorCode, HubError
from podium.hub.services import HubServices

__all__ = ["Caller", "Services", "get_services", "require_admin"]

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/token, or an API key (pdm_...).",
)


def get_services(request: Request) -> HubServices:
    """The hub's services, attached to the app when it was built."""
    services: HubServices = request.app.state.services
    return services


Services = Annotated[HubServices, Depends(get_services)]


def get_caller(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; ``401`` when there are no or bad credentials."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HubError(ErrorCode.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    try:
        return services.accounts.authenticate_bearer(credentials.credentials, services.now())
    except HubError as exc:
        if exc.status == 401:  # RFC 6750 section 3.1: say which scheme, and that it failed
            exc.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
        raise


Caller = Annotated[Principal, Depends(get_caller)]


def require_admin(caller: Caller) -> Principal:
    """The caller, who must be a hub admin."""
    if not caller.is_admin:
        raise HubError(ErrorCode.ADMIN_REQUIRED)
    return caller
