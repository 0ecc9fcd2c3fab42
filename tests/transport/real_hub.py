"""The ``real-hub`` harness: :class:`WebSocketTransport` against the hub's ``/relay``.

uvicorn serves ``create_app`` over test services in a background thread on a free
loopback port (:func:`tests.hub.relay.hub_server.running_hub`); users and their API keys
come from ``services.accounts`` (a pod runs with its owner's key). Clients dial through a
:class:`CuttingProxy`, which labels each connection with its user, so :meth:`drop` cuts one
user's connections as a lost network would. A real hub cannot lose receipts on purpose:
:attr:`can_lose_receipts` is false and the cases that need it skip on this harness only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from podium.hub.config import RelaySettings
from podium.hub.models import utcnow
from podium.hub.relay.mailbox import InMemoryMailboxStore, StoredMessage
from podium.hub.security import parse_api_key
from podium.hub.services import HubServices
from podium.transport import Transport, WebSocketTransport
from tests.hub.conftest import PASSWORD, make_services
from tests.hub.relay.hub_server import running_hub
from tests.transport.cutting_proxy import CuttingProxy, bearer_of, cutting_proxy
from tests.transport.harness import RelayHarness

#: How often this hub re-checks a connection's credential (fast, for the revoke cases).
REAUTH_INTERVAL_S = 0.05


class CountingMailboxStore(InMemoryMailboxStore):
    """The in-memory store, remembering the ids ever stored per mailbox."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, set[int]] = {}

    def append(
        self, mailbox: str, *, sender: str, task_id: str, seq: int, frame: bytes, now: datetime
    ) -> StoredMessage:
        stored = super().append(
            mailbox, sender=sender, task_id=task_id, seq=seq, frame=frame, now=now
        )
        self.ids.setdefault(mailbox, set()).add(stored.message_id)
        return stored

    def ever_stored(self, mailbox: str) -> int:
        return len(self.ids.get(mailbox, ()))


class ApiKeys:
    """Hub users made on demand, each with one API key."""

    def __init__(self, services: HubServices) -> None:
        self._services = services
        self._keys: dict[str, str] = {}  # user -> API key
        self._users: dict[str, str] = {}  # API key -> user

    def credential(self, user: str) -> str:
        """``user``'s API key, creating the account and the key on first use."""
        if user not in self._keys:
            now = utcnow()
            self._services.accounts.create_user(user, PASSWORD, is_admin=False, now=now)
            _, key = self._services.accounts.create_api_key(user, "relay-tests", now)
            self._keys[user] = key
            self._users[key] = user
        return self._keys[user]

    def renew(self, user: str) -> None:
        """Revoke ``user``'s API key and make a new one."""
        old = self.credential(user)
        parts = parse_api_key(old)
        assert parts is not None
        now = utcnow()
        self._services.store.revoke_api_key(parts.key_id, now)
        _, key = self._services.accounts.create_api_key(user, "relay-tests", now)
        self._keys[user] = key
        self._users[key] = user

    def user_of(self, head: bytes) -> str:
        """The user whose API key a request head carries ("" for a key not made here)."""
        return self._users.get(bearer_of(head), "")


class RealHubHarness(RelayHarness):
    """A hub over in-memory stores behind a cutting proxy."""

    can_lose_receipts = False

    def __init__(
        self, keys: ApiKeys, store: CountingMailboxStore, hub_url: str, proxy: CuttingProxy
    ) -> None:
        self._keys = keys
        self._store = store
        self._hub_url = hub_url
        self._proxy_url = f"http://127.0.0.1:{proxy.port}"
        self._proxy = proxy

    def transport(self, user: str) -> Transport:
        return WebSocketTransport(self._proxy_url, self._keys.credential(user))

    def bad_transport(self) -> Transport:
        return WebSocketTransport(self._hub_url, "not-a-credential")

    def drop(self, user: str) -> None:
        assert self._proxy.cut(user) > 0

    def connections(self, user: str) -> int:
        return self._proxy.connections(user)

    def stored(self, mailbox: str) -> int:
        return self._store.ever_stored(mailbox)

    def pending(self, mailbox: str) -> int:
        return self._store.count(mailbox)

    def lose_receipts(self, lose: bool) -> None:
        raise NotImplementedError("a real hub always sends receipts")

    def renewing_transport(self, user: str) -> Transport:
        credential = self.provider(user, lambda: self._keys.credential(user))
        return WebSocketTransport(self._proxy_url, credential)

    def revoke(self, user: str) -> None:
        self._keys.renew(user)


@asynccontextmanager
async def real_hub(tmp_path: Path) -> AsyncIterator[RelayHarness]:
    """A real hub and its proxy, stopped (bounded) on exit."""
    store = CountingMailboxStore()
    relay = RelaySettings(reauth_interval_s=REAUTH_INTERVAL_S)
    services = dataclasses.replace(make_services(tmp_path, utcnow, relay=relay), mailboxes=store)
    keys = ApiKeys(services)
    with running_hub(services) as url:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        async with cutting_proxy(parts.hostname, parts.port, keys.user_of) as proxy:
            yield RealHubHarness(keys, store, url, proxy)
