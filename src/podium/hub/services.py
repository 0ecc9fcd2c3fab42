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
from podium.hub.security import PasswordHasher, TokenSigner, load_or_create_signing_key
from podium.hub.store import HubStore

__all__ = ["HubServices"]


@dataclass(slots=True)
class HubServices:
    """Store, accounts, registry and access manager over one store and one clock."""

    config: HubConfig
    store: HubStore
    signer: TokenSigner
    passwords: PasswordHasher
    clock: Callable[[], datetime] = utcnow
    accounts: AccountService = field(init=False)
    registry: Registry = field(init=False)
    access: AccessManager = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = AccountService(self.store, self.config, self.passwords, self.signer)
        self.registry = Registry(self.store, self.config)
        self.access = AccessManager(self.store, self.registry)

    @classmethod
    def open(cls, config: HubConfig) -> HubServices:
        """Open the configured store (migrating it to the latest schema), the blob folder
        and the signing key (created on first start)."""
        from podium.hub.store.sql import open_sql_store  # noqa: PLC0415 - SQLAlchemy only here

        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.blob_dir.mkdir(parents=True, exist_ok=True)
        signer = TokenSigner(load_or_create_signing_key(config.signing_key_path))
        store = open_sql_store(config.database_url)
        return cls(config, store, signer, PasswordHasher(config.password_cost))

    def now(self) -> datetime:
        """The current time, from the services' clock."""
        return self.clock()

    def close(self) -> None:
        """Close the store."""
        self.store.close()
