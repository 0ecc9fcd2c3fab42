"""What every API handler needs: the services and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from podium.hub.accounts import Principal
from podium.hub.errors import ErrorCode, HubError
from podium.hub.services import HubServices

__all__ = [
    "Caller",
    "Credential",
    "Services",
    "get_services",
    "invalid_token_header",
    "require_admin",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/token, or an API key (pdm_...).",
)


async def get_services(request: Request) -> HubServices:
    """The hub's services, attached to the app when it was built (``async`` so FastAPI
    does not spend a worker-thread hop on it)."""
    services: HubServices = request.app.state.services
    return services


Services = Annotated[HubServices, Depends(get_services)]


async def get_credential(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The bearer credential (token or API key), not yet checked; ``401`` if absent."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HubError(ErrorCode.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return credentials.credentials


Credential = Annotated[str, Depends(get_credential)]


@contextmanager
def invalid_token_header() -> Iterator[None]:
    """Add RFC 6750's ``WWW-Authenticate`` to a 401 raised in the block."""
    try:
        yield
    except HubError as exc:
        if exc.status == 401:  # RFC 6750 section 3.1: say which scheme, and that it failed
            exc.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
        raise


def get_caller(services: Services, credential: Credential) -> Principal:
    """The authenticated caller; ``401`` when there are no or bad credentials."""
    with invalid_token_header():
        return services.accounts.authenticate_bearer(credential, services.now())


Caller = Annotated[Principal, Depends(get_caller)]


def require_admin(caller: Caller) -> Principal:
    """The caller, who must be a hub admin."""
    if not caller.is_admin:
        raise HubError(ErrorCode.ADMIN_REQUIRED)
    return caller
