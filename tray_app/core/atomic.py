"""Crash-safe file writes: the user's files are either the old or the new version, never half."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
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

    A symlink stays a symlink: the file it points to is replaced (dotfiles managed by stow or a
    dotfiles repository keep working). A target that is not a regular file (a FIFO, a device)
    is refused with OSError instead of being replaced.
    """
    path = resolve_link(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    if mode is None:
        mode = stat.S_IMODE(info.st_mode) if info is not None else 0o600
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


def resolve_link(path: Path) -> Path:
    """Where writing `path` should go: the final target of a symlink (even a dangling one)."""
    if not path.is_symlink():
        return path
    return Path(os.path.realpath(path))


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


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes from `fd` (a regular file: reads end at its end)."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
