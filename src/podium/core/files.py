"""Files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], object]) -> None:
    """Write a text file atomically: ``write`` fills a temporary file beside ``path``,
    which is flushed to disk and renamed over ``path``. A reader sees the old file or the
    new one, never a half-written one; on any error the temporary file is removed.

    Raises:
        OSError: The folder is missing or not writable (the caller translates it).
    """
    target = Path(path)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
