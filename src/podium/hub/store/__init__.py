"""The hub's store: an interface with an in-memory twin and a SQLAlchemy version."""

from podium.hub.store.base import AlreadyExistsError, HubStore, NewAuditEvent, PodQuery, StoreError
from podium.hub.store.memory import InMemoryHubStore
from podium.hub.store.sql import SqlHubStore, open_sql_store

__all__ = [
    "AlreadyExistsError",
    "HubStore",
    "InMemoryHubStore",
    "NewAuditEvent",
    "PodQuery",
    "SqlHubStore",
    "StoreError",
    "open_sql_store",
]
