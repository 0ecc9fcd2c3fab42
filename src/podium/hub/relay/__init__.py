"""The hub's relay: durable mailboxes that carry sealed frames between modellers and pods."""

from podium.hub.relay.mailbox import InMemoryMailboxStore, Mailbox, MailboxStore, StoredMessage
from podium.hub.relay.mailbox_sql import SqlMailboxStore

__all__ = ["InMemoryMailboxStore", "Mailbox", "MailboxStore", "SqlMailboxStore", "StoredMessage"]
