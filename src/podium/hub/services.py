"""The hub's services, built once per process and shared by the API and the web UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from podium.hub.access import AccessManager
from podium.hub.accounts import AccountService
from podium.hub.config import HubConfig
from podium.hub.models import utcnow
from podium.hub.registry import Registry
from podium.hub.relay.mailbox import InMemoryMailboxStore, MailboxStore
from podium.hub.relay.notify import InProcessNotifier, MailboxNotifier
from podium.hub.relay.state import RelayState
from podium.hub.security import (
    PasswordHasher,
    TokenSigner,
    load_or_create_signing_key,
    parse_api_key,
    sha256_hex,
)
from podium.hub.store import HubStore

__all__ = ["HubServices"]


@dataclass(slots=True)
class HubServices:
    """Store, accounts, registry and access manager over one store and one clock, and the
    relay's state over its mailbox store (in memory unless given; :meth:`open` puts it on
    the hub's database) and notifier (this process only unless given)."""

    config: HubConfig
    store: HubStore
    signer: TokenSigner
    passwords: PasswordHasher
    clock: Callable[[], datetime] = utcnow
    mailboxes: MailboxStore = field(default_factory=InMemoryMailboxStore)
    notifier: MailboxNotifier = field(default_factory=InProcessNotifier)
    accounts: AccountService = field(init=False)
    registry: Registry = field(init=False)
    access: AccessManager = field(init=False)
    relay: RelayState = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = AccountService(self.store, self.config, self.passwords, self.signer)
        self.registry = Registry(self.store, self.config)
        self.access = AccessManager(self.store, self.registry)
        self.relay = RelayState(
            self.mailboxes, self.config.relay, self.clock, notifier=self.notifier
        )

    @classmethod
    def open(cls, config: HubConfig) -> HubServices:
        """Open the configured store (migrating it to the latest schema), the blob folder
        and the signing key (created on first start). On PostgreSQL the relay's readers
        are woken across replicas with LISTEN/NOTIFY."""
        # SQLAlchemy and psycopg only here
        from podium.hub.relay.mailbox_sql import SqlMailboxStore  # noqa: PLC0415
        from podium.hub.relay.notify_pg import (  # noqa: PLC0415
            CHANNEL,
            PostgresNotifier,
            conninfo_from_url,
        )
        from podium.hub.store.sql import open_sql_store  # noqa: PLC0415

        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.blob_dir.mkdir(parents=True, exist_ok=True)
        signer = TokenSigner(load_or_create_signing_key(config.signing_key_path))
        store = open_sql_store(config.database_url)
        postgres = store.engine.dialect.name == "postgresql"
        notifier: MailboxNotifier = (
            PostgresNotifier(conninfo_from_url(config.database_url))
            if postgres
            else InProcessNotifier()
        )
        return cls(
            config,
            store,
            signer,
            PasswordHasher(config.password_cost),
            mailboxes=SqlMailboxStore(
                store.engine,
                notify_channel=CHANNEL if postgres else None,
                frame_dir=config.relay_frame_dir,
                file_threshold=config.relay.file_threshold,
            ),
            notifier=notifier,
        )

    def heartbeat_fast(self, credential: str, owner: str, name: str) -> bool:
        """A pod's heartbeat in one statement, when ``credential`` is an API key that is
        live, belongs to ``owner``, and ``owner/name`` is a live pod (the hash of the key's
        secret is compared in SQL: a SHA-256, so nothing secret-dependent is timed).
        False when any of that fails: :meth:`heartbeat` then finds out which."""
        parts = parse_api_key(credential)
        if parts is None:
            return False
        now = self.now()
        if not self.store.record_heartbeat_with_api_key(
            owner, name, parts.key_id, sha256_hex(parts.secret), now
        ):
            return False
        self.accounts.touch_if_due(parts.key_id, now)
        return True

    def heartbeat(self, credential: str, owner: str, name: str) -> None:
        """A pod's heartbeat, authenticated by ``credential`` (an API key or an access
        token), checked step by step so a refusal says exactly why. The fast path
        (:class:`podium.hub.api.fastpath.HeartbeatFastPath`) has already tried
        :meth:`heartbeat_fast` for this request, so it is not run a second time here."""
        now = self.now()
        principal = self.accounts.authenticate_bearer(credential, now)
        self.registry.heartbeat(principal, owner, name, now)

    def now(self) -> datetime:
        """The current time, from the services' clock."""
        return self.clock()

    def close(self) -> None:
        """Close the store (the SQL mailbox store shares its engine)."""
        self.store.close()
