"""Opening the SQLite pod DB: the private file, the engine's pragmas, the schema version.

SQLite is set up by :func:`podium.core.sqlite.sqlite_engine` (WAL, ``synchronous=NORMAL``,
a busy timeout, ``BEGIN IMMEDIATE`` for writers marked with :data:`WRITE_OPTION`).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import sqlalchemy as sa

from podium.core.sqlite import sqlite_engine
from podium.pod.store import _tables as t
from podium.pod.store.base import PodStoreError, SchemaVersionError

__all__ = ["WRITE_OPTION", "connect"]

logger = logging.getLogger("podium.pod.store")

#: Execution option marking a transaction as a writer (``BEGIN IMMEDIATE``).
WRITE_OPTION = "podium_pod_write"


def connect(path: Path) -> sa.Engine:
    """Create the folder (0700) and file (0600) if needed, and an engine on the file whose
    schema is checked and created; the caller disposes of the engine."""
    _prepare_file(path)
    engine = _sqlite_engine(path)
    try:
        _ensure_schema(engine, path)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and an empty file (0600) unless they exist; tighten the
    mode of an existing file that others could read."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                logger.warning(
                    "pod DB %s was readable by others (mode %o): set to 0600", path, mode
                )
                path.chmod(0o600)
        else:
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
    except OSError as exc:
        raise PodStoreError(
            f"cannot create the pod DB at {path}: {exc.strerror or exc}; "
            "check that its folder is writable, or point pod_db at another path"
        ) from exc


def _sqlite_engine(path: Path) -> sa.Engine:
    return sqlite_engine(sa.URL.create("sqlite", database=str(path)), write_option=WRITE_OPTION)


def _ensure_schema(engine: sa.Engine, path: Path) -> None:
    """Create the tables and record the schema version, in one write transaction."""
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
            if version > t.SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the pod DB at {path} has schema version {version}, newer than the "
                    f"{t.SCHEMA_VERSION} this Podium knows: it was written by a newer "
                    "Podium; upgrade Podium, or point pod_db at another file"
                )
            if version < t.SCHEMA_VERSION:
                t.metadata.create_all(conn)
                conn.exec_driver_sql(f"PRAGMA user_version = {t.SCHEMA_VERSION}")
    except sa.exc.DBAPIError as exc:
        raise PodStoreError(
            f"cannot open the pod DB at {path}: {exc.orig}; is it a Podium pod DB? "
            "Move it aside or point pod_db at another file"
        ) from exc
