"""The hub's Alembic migrations and how the SQL store opens its database."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import podium
from podium.hub.models import Pod, User
from podium.hub.store import NewAuditEvent, PodQuery, StoreError
from podium.hub.store._tables import metadata
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from podium.hub.store.sql import open_sql_store
from tests.hub.store.conftest import T0


def hub_tables(engine: sa.Engine) -> set[str]:
    """The hub's tables in the database."""
    return {name for name in sa.inspect(engine).get_table_names() if name.startswith("hub_")}


def test_migrations_ship_inside_the_package() -> None:
    """env.py, the revision template and the first revision live in the podium package."""
    package_dir = Path(podium.__file__).resolve().parent
    assert MIGRATIONS_DIR.is_relative_to(package_dir)
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (MIGRATIONS_DIR / name).is_file(), name
    assert head_revision() == "0005"


def test_upgrading_an_older_hub_keeps_its_data(db_url: str) -> None:
    """A database made by revision 0001 with users and pods in it upgrades to head with
    every record intact and the new table in place."""
    engine = create_hub_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        assert "hub_revoked_sessions" not in hub_tables(engine)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO hub_users (name, password_hash, is_admin, created_at, disabled)"
                    " VALUES ('alice', 'h', false, :t, false)"
                ),
                {"t": T0},
            )
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        assert "hub_revoked_sessions" in hub_tables(engine)
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT name FROM hub_users")).scalars().all()
        assert names == ["alice"]
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_from_an_empty_database(db_url: str) -> None:
    """A fresh database has no revision; upgrading creates every table at head."""
    engine = create_hub_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        assert hub_tables(engine) == set(metadata.tables)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_table_metadata(db_url: str) -> None:
    """Autogenerate finds no difference between the migrations and _tables.py."""
    engine = create_hub_engine(db_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_keeps_data(db_url: str) -> None:
    """Opening an existing database upgrades nothing and loses nothing."""
    store = open_sql_store(db_url)
    store.create_user(User("alice", "h", created_at=T0))
    store.save_pod(Pod("alice", "census", "Census", created_at=T0, updated_at=T0))
    event = store.append_audit(NewAuditEvent(T0, "alice", "login"))
    store.close()

    again = open_sql_store(db_url)
    try:
        upgrade_to_head(again.engine)
        assert current_revision(again.engine) == head_revision()
        assert again.get_user("alice") == User("alice", "h", created_at=T0)
        assert [p.pod_id for p in again.list_pods(PodQuery())] == ["alice/census"]
        assert again.list_audit() == [event]
        assert again.append_audit(NewAuditEvent(T0, "bob", "login")).event_id > event.event_id
    finally:
        again.close()


def test_concurrent_upgrades_of_one_database_both_succeed(db_url: str) -> None:
    """Two hub processes starting together on an empty database both end up at head."""
    engines = [create_hub_engine(db_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(upgrade_to_head, engines))
        assert current_revision(engines[0]) == head_revision()
        assert hub_tables(engines[0]) == set(metadata.tables)
    finally:
        for engine in engines:
            engine.dispose()


def test_downgrade_to_base_drops_the_tables_and_upgrade_restores_them(db_url: str) -> None:
    """The first revision's downgrade removes every hub table; upgrading brings them back."""
    engine = create_hub_engine(db_url)
    try:
        upgrade_to_head(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert hub_tables(engine) == set()
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert hub_tables(engine) == set(metadata.tables)
    finally:
        engine.dispose()


def test_upgrade_leaves_logging_alone(tmp_path: Path) -> None:
    """Running the migrations adds no logging handlers and keeps existing loggers on."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    podium_logger = logging.getLogger("podium.hub")
    engine = create_hub_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    assert root.handlers == handlers
    assert podium_logger.disabled is False


# -- opening the database --------------------------------------------------------------


def test_plain_postgresql_urls_use_psycopg() -> None:
    """``postgresql://`` URLs get the psycopg 3 driver, without connecting."""
    engine = create_hub_engine("postgresql://hub@db.invalid/hub")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://hub@db.invalid/hub", "oracle://db.invalid/hub"])
def test_other_databases_are_refused(url: str) -> None:
    """Only SQLite and PostgreSQL can hold the hub's data."""
    with pytest.raises(StoreError, match="sqlite:/// or postgresql://"):
        create_hub_engine(url)


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """Every SQLite connection runs in WAL mode, waits 5 s on locks and checks foreign keys."""
    engine = create_hub_engine(f"sqlite:///{tmp_path / 'nested' / 'hub.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "hub.db").is_file()


def test_sqlite_foreign_keys_are_enforced(tmp_path: Path) -> None:
    """A project member row cannot name a project that does not exist."""
    store = open_sql_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(
                sa.insert(metadata.tables["hub_project_members"]).values(
                    project="ghost", user="bob"
                )
            )
    finally:
        store.close()


def test_in_memory_sqlite_is_shared_across_threads() -> None:
    """``sqlite://`` gives one in-memory database that every thread sees."""
    store = open_sql_store("sqlite://")
    try:
        store.create_user(User("alice", "h", created_at=T0))
        with ThreadPoolExecutor(max_workers=1) as pool:
            found = pool.submit(store.get_user, "alice").result()
        assert found == User("alice", "h", created_at=T0)
    finally:
        store.close()


def test_opening_a_file_that_is_not_a_database_fails_cleanly(tmp_path: Path) -> None:
    """open_sql_store on a file that is not a database raises and leaves it untouched."""
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(sa.exc.DatabaseError) as caught:
        open_sql_store(f"sqlite:///{path}")
    assert isinstance(caught.value.orig, sqlite3.DatabaseError)
    assert path.read_bytes() == b"this is not SQLite" * 100
