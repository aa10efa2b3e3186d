"""Crash-safe file writes: the user's files are either the old or the new version, never half."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def atomic_write_bytes(
    path: Path, data: bytes, mode: int | None = None, *, durable: bool = True
) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, rename.

    `mode` defaults to the existing file's mode (or 0o600 for a new file) so that rewriting a
    private file never widens its permissions. Raises OSError (e.g. ENOSPC) with `path` intact.
    `durable=False` skips the two fsyncs (tens of ms on some disks): still atomic for readers
    and against a crash of the app, only a power cut may lose the write. For files the app
    regenerates anyway, on a path the user waits on.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_text(
    path: Path, text: str, mode: int | None = None, *, durable: bool = True
) -> None:
    # newline="" semantics: the text is written exactly as given (CRLF preserved).
    atomic_write_bytes(path, text.encode("utf-8"), mode, durable=durable)


def backup_file(path: Path, suffix: str = "bak") -> Path | None:
    """Copy `path` to `<path>.<suffix>-<UTC timestamp>` (keeping its mode); None if absent."""
    path = Path(path)
    if not path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{suffix}-{stamp}")
    shutil.copy2(path, target)
    return target


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
