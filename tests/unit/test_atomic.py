"""atomic_write_bytes: replace-by-rename, private by default, fsync unless told otherwise."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tray_app.core import atomic


def test_write_replaces_and_keeps_a_private_mode(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "f"
    atomic.atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    atomic.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["f"]  # no temp file left


def test_not_durable_skips_fsync_but_still_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    path = tmp_path / "f"
    atomic.atomic_write_bytes(path, b"fast", durable=False)
    assert path.read_bytes() == b"fast" and synced == []
    atomic.atomic_write_bytes(path, b"safe")
    assert path.read_bytes() == b"safe" and len(synced) == 2  # the file, then its directory
