"""The hub's settings: one explicit object, built by the CLI from its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from podium.core.messages import DEFAULT_MAX_FRAME_BYTES

__all__ = ["HubConfig", "LoginPolicy", "PasswordCost", "RelaySettings"]


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How failed password logins are slowed, then locked, per user name.

    After ``throttle_after`` failures in a row, the next attempt must wait
    ``backoff_base_s * 2 ** (failures - throttle_after)`` seconds (at most
    ``backoff_max_s``); after ``lock_after`` failures the name is locked for ``lock_for_s``.
    A successful login resets the count.
    """

    throttle_after: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    lock_after: int = 10
    lock_for_s: float = 900.0


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """argon2id parameters (RFC 9106's second recommended option by default)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Limits and housekeeping of the relay (``/relay``).

    ``max_frame_bytes`` is the largest frame a client may send (uvicorn's own WebSocket
    limit, 16 MiB by default, must stay above it). ``window`` is how many deliveries a
    connection may hold unacknowledged before the hub stops reading more for it;
    ``send_queue`` bounds the frames waiting to be written to one connection.
    ``max_subscriptions`` bounds the mailboxes one connection reads.
    Every ``housekeeping_interval_s`` the hub deletes task mailboxes idle for
    ``task_mailbox_idle_s`` and forgets acknowledged messages older than
    ``ack_retention_s`` (the window in which a retried send is still recognised), and
    frame files older than ``orphan_file_age_s`` that no pending message names. A hub
    process remembers a task's participants for ``participants_ttl_s``. A connection's
    credential is checked again every ``reauth_interval_s``.
    Frames of ``file_threshold`` bytes or more are kept in files under ``frame_dir``
    rather than in the database: by default ``<data_dir>/relay-frames`` on SQLite, and
    none (frames in the database) on PostgreSQL, where every replica would have to share
    the folder.
    """

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    window: int = 64
    send_queue: int = 16
    max_subscriptions: int = 256
    task_mailbox_idle_s: float = 7 * 24 * 3600.0
    ack_retention_s: float = 24 * 3600.0
    housekeeping_interval_s: float = 300.0
    close_timeout_s: float = 5.0
    frame_dir: Path | None = None
    file_threshold: int = 64 * 1024
    orphan_file_age_s: float = 3600.0
    participants_ttl_s: float = 60.0
    reauth_interval_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Everything a hub needs to run.

    ``data_dir`` holds the SQLite database (unless ``db_url`` names another), the blob
    folder and the token-signing key. ``public_url`` is the address users reach the hub at
    (for device-login links); by default it is taken from each request.
    ``secure_cookies`` marks the web session cookie Secure (set it behind TLS);
    ``web_refresh_s`` is how often the web UI's My Pods page reloads itself.
    ``relay`` holds the relay's limits (:class:`RelaySettings`).
    """

    data_dir: Path
    db_url: str | None = None
    public_url: str | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    web_session_ttl_s: int = 8 * 3600
    heartbeat_interval_s: float = 10.0
    missed_heartbeats_offline: int = 3
    max_body_bytes: int = 4 * 1024 * 1024
    device_code_ttl_s: int = 600
    device_poll_interval_s: int = 5
    login: LoginPolicy = field(default_factory=LoginPolicy)
    password_cost: PasswordCost = field(default_factory=PasswordCost)
    secure_cookies: bool = False
    web_refresh_s: int = 5
    relay: RelaySettings = field(default_factory=RelaySettings)

    @property
    def database_url(self) -> str:
        """The store's SQLAlchemy URL: ``db_url`` or ``sqlite:///DATA_DIR/hub.db``."""
        return self.db_url or f"sqlite:///{self.data_dir / 'hub.db'}"

    @property
    def relay_frame_dir(self) -> Path | None:
        """Where the relay keeps large frames: ``relay.frame_dir`` if set, else
        ``<data_dir>/relay-frames`` on SQLite and None (in the database) otherwise."""
        if self.relay.frame_dir is not None:
            return self.relay.frame_dir
        if self.database_url.startswith("sqlite"):
            return self.data_dir / "relay-frames"
        return None

    @property
    def blob_dir(self) -> Path:
        """Where large payloads are kept."""
        return self.data_dir / "blobs"

    @property
    def signing_key_path(self) -> Path:
        """The hub's Ed25519 private key for signing tokens (mode 0600)."""
        return self.data_dir / "hub-signing-key.pem"

    @property
    def offline_after_s(self) -> float:
        """Seconds without a heartbeat after which a pod shows as offline."""
        return self.heartbeat_interval_s * self.missed_heartbeats_offline
