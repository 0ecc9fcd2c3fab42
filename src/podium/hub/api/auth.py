"""``/api/v1/auth``: the OAuth 2.0 token endpoint (password, refresh token and device
code grants), device authorization (RFC 8628) and token revocation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from podium.hub.accounts import TokenPair
from podium.hub.api.deps import Services
from podium.hub.errors import ErrorCode, HubError
from podium.hub.schemas import NO_NUL, DeviceAuthorizationOut, TokenOut

router = APIRouter(prefix="/auth", tags=["auth"])

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FormStr = Annotated[str | None, Form(max_length=2048)]
#: RFC 6749 section 5.1: answers that carry tokens must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        username=pair.user.name,
    )


def _required(value: str | None, name: str) -> str:
    if not value:
        raise HubError(ErrorCode.BAD_REQUEST, f"the form field {name!r} is required")
    return value


@router.post("/token", response_model=TokenOut, summary="Get tokens (OAuth 2.0 token endpoint)")
def token(
    services: Services,
    response: Response,
    grant_type: Annotated[str, Form(max_length=200)],
    username: FormStr = None,
    password: FormStr = None,
    refresh_token: FormStr = None,
    device_code: FormStr = None,
    client_id: FormStr = None,
) -> TokenOut:
    """``grant_type`` is ``password`` (with ``username`` and ``password``),
    ``refresh_token`` (with ``refresh_token``; the old one stops working) or
    ``urn:ietf:params:oauth:grant-type:device_code`` (with ``device_code`` and
    ``client_id``). Failed password logins are slowed, then locked for a while."""
    now = services.now()
    accounts = services.accounts
    if grant_type == "password":
        pair = accounts.login(_required(username, "username"), _required(password, "password"), now)
    elif grant_type == "refresh_token":
        pair = accounts.refresh(_required(refresh_token, "refresh_token"), now)
    elif grant_type == DEVICE_GRANT:
        pair = accounts.poll_device_login(
            _required(device_code, "device_code"), _required(client_id, "client_id"), now
        )
    else:
        raise HubError(ErrorCode.UNSUPPORTED_GRANT_TYPE, f"{grant_type!r} is not supported")
    response.headers.update(NO_STORE)
    return _token_out(pair)


@router.post(
    "/device/code",
    response_model=DeviceAuthorizationOut,
    summary="Start a device login (RFC 8628)",
)
def device_code(
    request: Request,
    response: Response,
    services: Services,
    client_id: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
) -> DeviceAuthorizationOut:
    """The CLI shows ``user_code`` and ``verification_uri``; the user approves on the hub's
    web page; the CLI polls the token endpoint every ``interval`` seconds."""
    started = services.accounts.start_device_login(client_id, services.now())
    base = (services.config.public_url or str(request.base_url)).rstrip("/")
    response.headers.update(NO_STORE)
    return DeviceAuthorizationOut(
        device_code=started.device_code,
        user_code=started.user_code,
        verification_uri=f"{base}/device",
        verification_uri_complete=f"{base}/device?user_code={started.user_code}",
        expires_in=started.expires_in,
        interval=started.interval,
    )


@router.post("/revoke", status_code=204, summary="Log out: revoke a refresh token")
def revoke(
    services: Services,
    token: Annotated[str, Form(min_length=1, max_length=2048)],
) -> Response:
    """RFC 7009: the refresh token stops working; unknown tokens are not an error."""
    services.accounts.revoke_refresh(token, services.now())
    return Response(status_code=204)
