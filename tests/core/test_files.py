"""Atomic file writes."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pytest

from podium.core.files import atomic_write


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    """The new content replaces the old, and no temporary file stays behind."""
    target = tmp_path / "out.txt"
    target.write_text("old")

    atomic_write(target, lambda handle: handle.write("new"))

    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    """A writer that fails half-way leaves the old content and no temporary file."""
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half(handle: IO[str]) -> None:
        handle.write("partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, half)

    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    """Writing into a folder that does not exist raises OSError for the caller to translate."""
    with pytest.raises(OSError, match="No such file"):
        atomic_write(tmp_path / "nope" / "out.txt", lambda handle: handle.write("x"))
