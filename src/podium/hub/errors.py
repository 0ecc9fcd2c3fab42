"""The hub's error codes, the catalogue that maps them to HTTP, and the one translator.

Handlers raise :class:`HubError` with a code (and, where it helps the caller fix the
request, a public detail that the code's author chose to show). The app turns it into a
problem document (RFC 9457, ``application/problem+json``)::

    {"type": "urn:podium:error:pod-not-found", "title": "...", "status": 404,
     "code": "pod-not-found", "detail": "..."}

Anything else raised inside a handler is logged with its traceback and answered with
``internal-error`` and nothing more. A test checks that every code has an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from podium.core.errors import ExitCode, PodiumError

__all__ = ["CATALOGUE", "CatalogueEntry", "ErrorCode", "HubError", "problem"]


class ErrorCode(StrEnum):
    """Every error the hub's API can answer with."""

    BAD_REQUEST = "bad-request"
    VALIDATION_FAILED = "validation-failed"
    BODY_TOO_LARGE = "body-too-large"
    UNAUTHENTICATED = "unauthenticated"
    TOKEN_EXPIRED = "token-expired"  # noqa: S105 - an error code, not a secret
    INVALID_TOKEN = "invalid-token"  # noqa: S105
    INVALID_CREDENTIALS = "invalid-credentials"
    ACCOUNT_LOCKED = "account-locked"
    LOGIN_THROTTLED = "login-throttled"
    API_KEY_REVOKED = "api-key-revoked"
    FORBIDDEN = "forbidden"
    ADMIN_REQUIRED = "admin-required"
    NOT_POD_OWNER = "not-pod-owner"
    NOT_FOUND = "not-found"
    USER_NOT_FOUND = "user-not-found"
    POD_NOT_FOUND = "pod-not-found"
    POD_ARCHIVED = "pod-archived"
    KEY_NOT_FOUND = "key-not-found"
    API_KEY_NOT_FOUND = "api-key-not-found"
    PROJECT_NOT_FOUND = "project-not-found"
    ALREADY_EXISTS = "already-exists"
    INVALID_PUBLIC_KEY = "invalid-public-key"
    UNKNOWN_ROLE = "unknown-role"
    UNSUPPORTED_GRANT_TYPE = "unsupported-grant-type"
    AUTHORIZATION_PENDING = "authorization-pending"
    SLOW_DOWN = "slow-down"
    ACCESS_DENIED = "access-denied"
    EXPIRED_DEVICE_CODE = "expired-device-code"
    INVALID_GRANT = "invalid-grant"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    INTERNAL_ERROR = "internal-error"
    SERVICE_UNAVAILABLE = "service-unavailable"


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """How one code is answered: HTTP status, public title, and, for the OAuth token
    endpoint, the RFC 6749 / RFC 8628 ``error`` value."""

    status: int
    title: str
    oauth_error: str | None = None


CATALOGUE: dict[ErrorCode, CatalogueEntry] = {
    ErrorCode.BAD_REQUEST: CatalogueEntry(400, "The request is malformed.", "invalid_request"),
    ErrorCode.VALIDATION_FAILED: CatalogueEntry(
        422, "The request body or parameters are not valid.", "invalid_request"
    ),
    ErrorCode.BODY_TOO_LARGE: CatalogueEntry(413, "The request body is too large."),
    ErrorCode.UNAUTHENTICATED: CatalogueEntry(
        401, "Authentication is required: send a bearer token or an API key."
    ),
    ErrorCode.TOKEN_EXPIRED: CatalogueEntry(
        401, "The access token has expired: refresh it or log in again."
    ),
    ErrorCode.INVALID_TOKEN: CatalogueEntry(401, "The token or API key is not valid."),
    ErrorCode.INVALID_CREDENTIALS: CatalogueEntry(
        400, "Wrong user name or password.", "invalid_grant"
    ),
    ErrorCode.ACCOUNT_LOCKED: CatalogueEntry(
        429, "Too many failed logins: the account is locked for a while.", "invalid_grant"
    ),
    ErrorCode.LOGIN_THROTTLED: CatalogueEntry(
        429, "Too many failed logins: wait before trying again.", "slow_down"
    ),
    ErrorCode.API_KEY_REVOKED: CatalogueEntry(401, "The API key has been revoked."),
    ErrorCode.FORBIDDEN: CatalogueEntry(403, "You are not allowed to do this."),
    ErrorCode.ADMIN_REQUIRED: CatalogueEntry(403, "Only a hub administrator can do this."),
    ErrorCode.NOT_POD_OWNER: CatalogueEntry(
        403, "Only the pod's owner or an administrator can do this."
    ),
    ErrorCode.NOT_FOUND: CatalogueEntry(404, "There is nothing at this address."),
    ErrorCode.USER_NOT_FOUND: CatalogueEntry(404, "No such user."),
    ErrorCode.POD_NOT_FOUND: CatalogueEntry(404, "No such pod, or you cannot see it."),
    ErrorCode.POD_ARCHIVED: CatalogueEntry(409, "The pod is archived."),
    ErrorCode.KEY_NOT_FOUND: CatalogueEntry(404, "No such public key."),
    ErrorCode.API_KEY_NOT_FOUND: CatalogueEntry(404, "No such API key."),
    ErrorCode.PROJECT_NOT_FOUND: CatalogueEntry(404, "No such project, or you cannot see it."),
    ErrorCode.ALREADY_EXISTS: CatalogueEntry(409, "It already exists."),
    ErrorCode.INVALID_PUBLIC_KEY: CatalogueEntry(
        422, "The public key is not a valid raw 32-byte key in base64url."
    ),
    ErrorCode.UNKNOWN_ROLE: CatalogueEntry(422, "No such role or preset."),
    ErrorCode.UNSUPPORTED_GRANT_TYPE: CatalogueEntry(
        400, "The grant type is not supported.", "unsupported_grant_type"
    ),
    ErrorCode.AUTHORIZATION_PENDING: CatalogueEntry(
        400, "The user has not approved the device yet.", "authorization_pending"
    ),
    ErrorCode.SLOW_DOWN: CatalogueEntry(400, "Polling too fast: slow down.", "slow_down"),
    ErrorCode.ACCESS_DENIED: CatalogueEntry(
        400, "The user denied the device login.", "access_denied"
    ),
    ErrorCode.EXPIRED_DEVICE_CODE: CatalogueEntry(
        400, "The device code has expired: start the login again.", "expired_token"
    ),
    ErrorCode.INVALID_GRANT: CatalogueEntry(
        400, "The grant is invalid, expired or already used.", "invalid_grant"
    ),
    ErrorCode.METHOD_NOT_ALLOWED: CatalogueEntry(405, "This method is not allowed here."),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: CatalogueEntry(415, "Unsupported content type."),
    ErrorCode.INTERNAL_ERROR: CatalogueEntry(500, "Internal error: the hub's log has the details."),
    ErrorCode.SERVICE_UNAVAILABLE: CatalogueEntry(503, "The hub cannot serve this right now."),
}


class HubError(PodiumError):
    """An error the API answers with the catalogue's status and title.

    ``detail`` is shown to the caller: put in it only what the caller may know (which
    field, which role is missing), never internal state. ``headers`` go on the response
    (``Retry-After``, ``WWW-Authenticate``).
    """

    exit_code = ExitCode.HUB

    def __init__(
        self,
        code: ErrorCode,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        super().__init__(detail or CATALOGUE[code].title)

    @property
    def status(self) -> int:
        """The HTTP status of this error's code."""
        return CATALOGUE[self.code].status


def problem(code: ErrorCode, detail: str | None = None) -> dict[str, object]:
    """The problem document for ``code``; OAuth's ``error`` fields where the code has one."""
    entry = CATALOGUE[code]
    body: dict[str, object] = {
        "type": f"urn:podium:error:{code.value}",
        "title": entry.title,
        "status": entry.status,
        "code": code.value,
    }
    if detail:
        body["detail"] = detail
    if entry.oauth_error is not None:
        body["error"] = entry.oauth_error
        body["error_description"] = detail or entry.title
    return body
