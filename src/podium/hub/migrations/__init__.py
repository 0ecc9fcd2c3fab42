"""Alembic migrations of the hub's database; run them with
:func:`podium.hub.store.migrate.upgrade_to_head`."""
