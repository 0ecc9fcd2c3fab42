"""Alembic's entry point for the hub's migrations.

:func:`podium.hub.store.migrate.upgrade_to_head` passes an open connection in
``config.attributes["connection"]`` and the migrations run inside its transaction. Run
from the ``alembic`` command instead, it connects to ``sqlalchemy.url``. Logging is left
to the caller (no ``fileConfig``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from podium.hub.store._tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, sa.Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url set for the migrations")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("the hub's migrations run online only, on a connection")
_run_online()
