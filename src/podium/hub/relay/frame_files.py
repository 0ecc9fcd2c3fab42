"""Large relay frames as files beside the database, so bulk bodies stay out of its pages.

A 4 MiB chunk written into SQLite goes through its write-ahead log and is copied again
into the database file at the next checkpoint (and freed again at its acknowledgement);
written to a file of its own, it costs one write, one read and one unlink. The mailbox
row keeps everything else (identity, order, acknowledgement) and the file's name.

- A file is written under a temporary name and renamed into place, so a file with a
  final name is always complete; its name is random (it is chosen before the row, whose
  id it cannot know). Files are created with mode 0600 in a folder of mode 0700.
- Durability matches the database's: no ``fsync`` (SQLite runs with
  ``synchronous=NORMAL``), so a stored frame survives the hub process dying, as a
  committed row does.
- The newest frames written (up to ``cache_bytes`` in all) are also kept in memory, so a
  reader connected to this hub gets a frame it just stored without reading it back.
- A file whose row never committed (the hub died in between), or whose row went away
  (acknowledged, expired), is an orphan: :meth:`FrameFiles.sweep` deletes files older than
  a cutoff that no row names.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable
from pathlib import Path

__all__ = ["DEFAULT_CACHE_BYTES", "FrameFiles"]

#: Bytes of recently written frames kept in memory.
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024

_SUFFIX = ".frame"
_PARTIAL = ".partial"


class FrameFiles:
    """Frames in files of one folder (created on first use); thread-safe."""

    def __init__(self, folder: Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._folder = folder
        self._ready = False
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def _remember(self, name: str, frame: bytes) -> None:
        if len(frame) > self._cache_bytes:
            return
        with self._lock:
            self._cache[name] = frame
            self._cached += len(frame)
            while self._cached > self._cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached -= len(old)

    def _forget(self, name: str) -> None:
        with self._lock:
            frame = self._cache.pop(name, None)
            if frame is not None:
                self._cached -= len(frame)

    @property
    def folder(self) -> Path:
        """Where the files are."""
        return self._folder

    def _ensure(self) -> None:
        if not self._ready:
            self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._ready = True

    def write(self, frame: bytes) -> str:
        """Store ``frame`` in a new file; its name."""
        self._ensure()
        name = secrets.token_hex(16) + _SUFFIX
        final = self._folder / name
        partial = final.with_name(name + _PARTIAL)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(frame)
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        self._remember(name, frame)
        return name

    def read(self, name: str) -> bytes | None:
        """The frame in file ``name``, or None if it is gone."""
        path = self._path(name)
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, names: Iterable[str]) -> None:
        """Delete these files (already gone is fine)."""
        for name in names:
            self._forget(name)
            with contextlib.suppress(FileNotFoundError):
                self._path(name).unlink()

    def sweep(self, referenced: Collection[str], older_than_s: float) -> int:
        """Delete files (finished or partial) older than ``older_than_s`` seconds that are
        not in ``referenced``; how many."""
        if not self._folder.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(self._folder):
            name = entry.name
            finished = name.endswith(_SUFFIX)
            if not (finished or name.endswith(_PARTIAL)) or (finished and name in referenced):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def _path(self, name: str) -> Path:
        if "/" in name or "\\" in name or not name.endswith(_SUFFIX) or name.startswith("."):
            raise ValueError(f"{name!r} is not a frame file name")
        return self._folder / name
