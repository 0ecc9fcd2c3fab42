"""Accounts: users, password logins with throttling, tokens, API keys, device login.

This is the hub's identity logic, independent of HTTP: the API and the web UI call it.
"""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from podium.hub.config import HubConfig
from podium.hub.errors import ErrorCode, HubError
from podium.hub.models import (
    ApiKey,
    DeviceCode,
    DeviceCodeStatus,
    LoginFailures,
    RefreshToken,
    User,
    is_valid_name,
)
from podium.hub.security import (
    PasswordHasher,
    TokenSigner,
    new_api_key,
    new_opaque_token,
    new_user_code,
    parse_api_key,
    sha256_hex,
)
from podium.hub.store import AlreadyExistsError, HubStore

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "AccountService",
    "DeviceAuthorization",
    "Principal",
    "TokenPair",
]

_log = logging.getLogger("podium.hub.accounts")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
ACCESS = "access"
WEB = "web"
#: Record an API key's use at most this often (a write per heartbeat would be waste).
_TOUCH_EVERY = timedelta(seconds=60)
#: Purge expired device codes, refresh tokens and stale failed logins at most this often.
_PURGE_EVERY = timedelta(seconds=60)
#: Forget failed logins of names that have not been tried for this long (and are unlocked).
_FORGET_FAILURES_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request, and how they proved it."""

    name: str
    is_admin: bool
    via: str  # "token", "api-key" or "session"
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login returns."""

    access_token: str
    expires_in: int
    refresh_token: str
    user: User


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """The answer to an RFC 8628 device authorization request."""

    device_code: str
    user_code: str
    expires_in: int
    interval: int


def check_password_rules(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise HubError(
            ErrorCode.VALIDATION_FAILED,
            f"a password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )


class AccountService:
    """Users and their credentials."""

    def __init__(
        self,
        store: HubStore,
        config: HubConfig,
        passwords: PasswordHasher,
        signer: TokenSigner,
    ) -> None:
        self.store = store
        self.config = config
        self.passwords = passwords
        self.signer = signer
        self._touched: dict[str, datetime] = {}
        self._purged_at: datetime | None = None

    def housekeep(self, now: datetime) -> None:
        """Drop expired device codes and refresh tokens and stale failed-login records, at
        most once a minute. Called where anyone, signed in or not, can add such records."""
        if self._purged_at is not None and now - self._purged_at < _PURGE_EVERY:
            return
        self._purged_at = now
        removed = self.store.purge_expired(now, failures_older_than=now - _FORGET_FAILURES_AFTER)
        if removed:
            _log.info("purged %d expired records", removed)

    # -- users -------------------------------------------------------------------------

    def create_user(self, name: str, password: str, *, is_admin: bool, now: datetime) -> User:
        """A new account; ``validation-failed`` for a bad name or password."""
        if not is_valid_name(name):
            raise HubError(
                ErrorCode.VALIDATION_FAILED,
                "a user name is 1-63 lower-case letters, digits, '-' or '_', starting "
                "with a letter or digit",
            )
        check_password_rules(password)
        user = User(
            name=name,
            password_hash=self.passwords.hash(password),
            is_admin=is_admin,
            created_at=now,
        )
        try:
            self.store.create_user(user)
        except AlreadyExistsError as exc:
            raise HubError(ErrorCode.ALREADY_EXISTS, f"user {name!r} already exists") from exc
        _log.info("created user %s (admin=%s)", name, is_admin)
        return user

    def require_user(self, name: str) -> User:
        """The live user ``name``; ``user-not-found`` otherwise."""
        user = self.store.get_user(name)
        if user is None or user.disabled:
            raise HubError(ErrorCode.USER_NOT_FOUND, f"no user {name!r}")
        return user

    # -- password login ----------------------------------------------------------------

    def _check_not_throttled(self, username: str, now: datetime) -> None:
        failures = self.store.get_login_failures(username)
        if failures is None:
            return
        if failures.locked_until is not None and now < failures.locked_until:
            wait = math.ceil((failures.locked_until - now).total_seconds())
            raise HubError(
                ErrorCode.ACCOUNT_LOCKED,
                f"try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        policy = self.config.login
        if failures.count >= policy.throttle_after:
            delay = min(
                policy.backoff_base_s * 2 ** (failures.count - policy.throttle_after),
                policy.backoff_max_s,
            )
            ready = failures.last_failed_at + timedelta(seconds=delay)
            if now < ready:
                wait = max(1, math.ceil((ready - now).total_seconds()))
                raise HubError(
                    ErrorCode.LOGIN_THROTTLED,
                    f"try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )

    def _record_failure(self, username: str, now: datetime) -> LoginFailures:
        self.housekeep(now)
        previous = self.store.get_login_failures(username)
        expired_lock = (
            previous is not None
            and previous.locked_until is not None
            and now >= previous.locked_until
        )
        count = 1 if previous is None or expired_lock else previous.count + 1
        policy = self.config.login
        locked_until = (
            now + timedelta(seconds=policy.lock_for_s) if count >= policy.lock_after else None
        )
        failures = LoginFailures(
            username=username, count=count, last_failed_at=now, locked_until=locked_until
        )
        self.store.put_login_failures(failures)
        return failures

    def authenticate_password(self, username: str, password: str, now: datetime) -> User:
        """The user if the password is right; throttles and locks repeated failures."""
        if not is_valid_name(username):
            # No account can have this name: answer as for a wrong password, in the same
            # time, and keep arbitrary strings (NUL bytes, megabytes) out of the store.
            self.passwords.verify(None, password)
            raise HubError(ErrorCode.INVALID_CREDENTIALS)
        self._check_not_throttled(username, now)
        # Count the attempt before the slow hash, so that guesses sent in parallel each
        # see the others and cannot all slip past the throttle while their hashes run.
        failures = self._record_failure(username, now)
        user = self.store.get_user(username)
        usable = user is not None and not user.disabled
        ok = self.passwords.verify(user.password_hash if user and usable else None, password)
        if not ok or user is None:
            if failures.locked_until is not None:
                _log.warning("login locked for %r after %d failures", username, failures.count)
            raise HubError(ErrorCode.INVALID_CREDENTIALS)
        self.store.clear_login_failures(username)
        if self.passwords.needs_rehash(user.password_hash):
            self.store.update_user(replace(user, password_hash=self.passwords.hash(password)))
        return user

    def login(self, username: str, password: str, now: datetime) -> TokenPair:
        """Password login: an access token and a refresh token."""
        return self.issue_tokens(self.authenticate_password(username, password, now), now)

    # -- tokens ------------------------------------------------------------------------

    def issue_tokens(self, user: User, now: datetime) -> TokenPair:
        """A fresh access token and refresh token for ``user``."""
        access, _ = self.signer.issue(
            user.name,
            is_admin=user.is_admin,
            token_type=ACCESS,
            now=now,
            ttl_s=self.config.access_token_ttl_s,
        )
        refresh = new_opaque_token()
        self.store.add_refresh_token(
            RefreshToken(
                token_hash=sha256_hex(refresh),
                owner=user.name,
                expires_at=now + timedelta(seconds=self.config.refresh_token_ttl_s),
                created_at=now,
            )
        )
        return TokenPair(access, self.config.access_token_ttl_s, refresh, user)

    def refresh(self, refresh_token: str, now: datetime) -> TokenPair:
        """Swap a refresh token for new tokens; the old one stops working (rotation)."""
        token_hash = sha256_hex(refresh_token)
        stored = self.store.get_refresh_token(token_hash)
        if stored is None or stored.expires_at <= now:
            raise HubError(ErrorCode.INVALID_GRANT, "the refresh token is unknown or expired")
        if not self.store.revoke_refresh_token(token_hash, now):
            # A revoked token presented again: it may have leaked. End every session.
            self.store.revoke_refresh_tokens_of(stored.owner, now)
            _log.warning("refresh token reuse for %s: revoked all its sessions", stored.owner)
            raise HubError(ErrorCode.INVALID_GRANT, "the refresh token was already used")
        return self.issue_tokens(self._grant_user(stored.owner), now)

    def _grant_user(self, name: str) -> User:
        """The live user a grant was made for; on the token endpoint a disabled or removed
        account is an invalid grant (OAuth's answer), not a missing resource."""
        user = self.store.get_user(name)
        if user is None or user.disabled:
            raise HubError(ErrorCode.INVALID_GRANT, "the account is not active")
        return user

    def revoke_refresh(self, refresh_token: str, now: datetime) -> None:
        """Log out: the refresh token stops working (unknown tokens are ignored)."""
        self.store.revoke_refresh_token(sha256_hex(refresh_token), now)

    def web_session(self, user: User, now: datetime) -> str:
        """A signed session token for the web UI's cookie."""
        token, _ = self.signer.issue(
            user.name,
            is_admin=user.is_admin,
            token_type=WEB,
            now=now,
            ttl_s=self.config.web_session_ttl_s,
        )
        return token

    def end_web_session(self, cookie: str, now: datetime) -> None:
        """Log out of the web UI: the session's cookie stops working now, not when it
        expires (an invalid or expired cookie needs nothing)."""
        try:
            claims = self.signer.verify(cookie, token_type=WEB, now=now)
        except HubError:
            return
        self.store.revoke_session(claims.token_id, datetime.fromtimestamp(claims.expires_at, UTC))

    # -- authenticating requests -------------------------------------------------------

    def authenticate_bearer(self, credential: str, now: datetime) -> Principal:
        """The principal behind an ``Authorization: Bearer`` value: an API key or a JWT."""
        parts = parse_api_key(credential)
        if parts is not None:
            return self._authenticate_api_key(parts.key_id, parts.secret, now)
        claims = self.signer.verify(credential, token_type=ACCESS, now=now)
        return Principal(claims.subject, claims.is_admin, "token")

    def authenticate_session(self, cookie: str, now: datetime) -> Principal:
        """The principal behind the web UI's session cookie."""
        claims = self.signer.verify(cookie, token_type=WEB, now=now)
        if self.store.is_session_revoked(claims.token_id):
            raise HubError(ErrorCode.INVALID_TOKEN)
        user = self.store.get_user(claims.subject)
        if user is None or user.disabled:
            raise HubError(ErrorCode.INVALID_TOKEN)
        return Principal(user.name, user.is_admin, "session", session_id=claims.token_id)

    def _authenticate_api_key(self, key_id: str, secret: str, now: datetime) -> Principal:
        key = self.store.get_api_key(key_id)
        if key is None or not hmac.compare_digest(key.secret_hash, sha256_hex(secret)):
            raise HubError(ErrorCode.INVALID_TOKEN)
        if key.revoked_at is not None:
            raise HubError(ErrorCode.API_KEY_REVOKED)
        user = self.store.get_user(key.owner)
        if user is None or user.disabled:
            raise HubError(ErrorCode.INVALID_TOKEN)
        if key.last_used_at is None or now - key.last_used_at >= _TOUCH_EVERY:
            self.store.touch_api_key(key_id, now)
            self._touched[key_id] = now
        return Principal(user.name, user.is_admin, "api-key")

    def touch_if_due(self, key_id: str, now: datetime) -> None:
        """Record an API key's use when this process has not done so for a minute (for
        paths that checked the key inside another statement)."""
        last = self._touched.get(key_id)
        if last is None or now - last >= _TOUCH_EVERY:
            self._touched[key_id] = now
            self.store.touch_api_key(key_id, now)

    # -- API keys ----------------------------------------------------------------------

    def create_api_key(self, owner: str, name: str, now: datetime) -> tuple[ApiKey, str]:
        """A new API key for ``owner``: the record and the full key, shown only now."""
        parts = new_api_key()
        key = ApiKey(
            key_id=parts.key_id,
            owner=owner,
            name=name,
            secret_hash=sha256_hex(parts.secret),
            created_at=now,
        )
        self.store.add_api_key(key)
        _log.info("API key %s created for %s", key.key_id, owner)
        return key, parts.full

    def revoke_api_key(self, principal: Principal, key_id: str, now: datetime) -> None:
        """Revoke one of the caller's keys (an admin may revoke anyone's)."""
        key = self.store.get_api_key(key_id)
        if key is None or (key.owner != principal.name and not principal.is_admin):
            raise HubError(ErrorCode.API_KEY_NOT_FOUND, f"no API key {key_id!r}")
        self.store.revoke_api_key(key_id, now)

    # -- device authorization (RFC 8628) ----------------------------------------------

    def start_device_login(self, client_id: str, now: datetime) -> DeviceAuthorization:
        """Begin a device login: the CLI shows the user code and polls with the device code."""
        self.housekeep(now)
        device_code = new_opaque_token()
        for _ in range(5):
            user_code = new_user_code()
            try:
                self.store.add_device_code(
                    DeviceCode(
                        device_code_hash=sha256_hex(device_code),
                        user_code=user_code,
                        client_id=client_id,
                        expires_at=now + timedelta(seconds=self.config.device_code_ttl_s),
                        interval_s=self.config.device_poll_interval_s,
                        created_at=now,
                    )
                )
            except AlreadyExistsError:
                continue
            return DeviceAuthorization(
                device_code,
                user_code,
                self.config.device_code_ttl_s,
                self.config.device_poll_interval_s,
            )
        raise HubError(ErrorCode.SERVICE_UNAVAILABLE, "could not pick a free user code")

    def find_device_login(self, user_code: str, now: datetime) -> DeviceCode:
        """The pending device login for a user code typed on the web page."""
        normalized = user_code.strip().upper().replace(" ", "")
        if len(normalized) == 8 and "-" not in normalized:
            normalized = f"{normalized[:4]}-{normalized[4:]}"
        code = self.store.get_device_code_by_user_code(normalized)
        if code is None or code.status != DeviceCodeStatus.PENDING or code.expires_at <= now:
            raise HubError(ErrorCode.INVALID_GRANT, "the code is unknown, used or expired")
        return code

    def decide_device_login(
        self, user_code: str, user: str, *, approve: bool, now: datetime
    ) -> None:
        """The signed-in user approves (or denies) a pending device login."""
        code = self.find_device_login(user_code, now)
        new = DeviceCodeStatus.APPROVED if approve else DeviceCodeStatus.DENIED
        if not self.store.transition_device_code(
            code.device_code_hash, DeviceCodeStatus.PENDING, new, user=user
        ):
            raise HubError(ErrorCode.INVALID_GRANT, "the code is no longer pending")
        _log.info("device login %s %s by %s", code.user_code, new.value, user)

    def poll_device_login(self, device_code: str, client_id: str, now: datetime) -> TokenPair:
        """The CLI's poll: tokens once approved, else RFC 8628's errors."""
        code_hash = sha256_hex(device_code)
        code = self.store.get_device_code(code_hash)
        if code is None or not hmac.compare_digest(code.client_id.encode(), client_id.encode()):
            raise HubError(ErrorCode.INVALID_GRANT, "unknown device code")
        if code.expires_at <= now:
            raise HubError(ErrorCode.EXPIRED_DEVICE_CODE)
        too_fast = (
            code.last_polled_at is not None
            and (now - code.last_polled_at).total_seconds() < code.interval_s - 0.5
        )
        self.store.mark_device_code_polled(code_hash, now)
        if code.status == DeviceCodeStatus.DENIED:
            raise HubError(ErrorCode.ACCESS_DENIED)
        if code.status == DeviceCodeStatus.USED:
            raise HubError(ErrorCode.INVALID_GRANT, "the device code was already used")
        if code.status == DeviceCodeStatus.PENDING:
            raise HubError(ErrorCode.SLOW_DOWN if too_fast else ErrorCode.AUTHORIZATION_PENDING)
        if code.user is None or not self.store.transition_device_code(
            code_hash, DeviceCodeStatus.APPROVED, DeviceCodeStatus.USED
        ):
            raise HubError(ErrorCode.INVALID_GRANT, "the device code was already used")
        return self.issue_tokens(self._grant_user(code.user), now)
