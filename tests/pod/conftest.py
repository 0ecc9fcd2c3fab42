"""Fixtures for the pod suites: one ``pod_store`` fixture over every version of the pod DB
(in memory, and SQLite in a temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.pod.store import InMemoryPodStore, PodStore, open_pod_store

#: A fixed instant with microseconds, so round trips show any lost precision.
T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["memory", "sqlite"])
def pod_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PodStore]:
    """Each version of the pod DB, empty."""
    if request.param == "memory":
        yield InMemoryPodStore()
        return
    store = open_pod_store(tmp_path / "pod" / "pod.db")
    try:
        yield store
    finally:
        store.close()
