"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium.data.census import CENSUS_CSV_PATH

#: The PostgreSQL server the integration tests use (trust auth on loopback by default).
POSTGRES_URL = os.environ.get(
    "PODIUM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_POSTGRES_HELP = (
    "PostgreSQL is not reachable at {url} ({error}). Start it with "
    "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' "
    "or point PODIUM_TEST_POSTGRES_URL at a server."
)


@pytest.fixture(scope="session")
def census_csv() -> Path:
    """The census-income CSV (gzip) shipped inside the package."""
    return CENSUS_CSV_PATH


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on the real PostgreSQL; fails under CI=true if it is missing."""
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        message = _POSTGRES_HELP.format(url=POSTGRES_URL, error=exc.orig)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_engine: sa.Engine) -> Iterator[str]:
    """A URL on the test PostgreSQL whose ``search_path`` is a fresh, empty schema,
    dropped (with everything in it) afterwards, so tests never see each other's tables."""
    schema = f"podium_test_{uuid.uuid4().hex[:12]}"
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
