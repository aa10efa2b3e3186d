"""The runtime directory is ours even when XDG_RUNTIME_DIR is unset and another local user
pre-created /tmp/runtime-<uid> (tray_app/core/runtime_dir.py). Tests run as root: another
user's ownership is made with chown to `nobody`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tray_app.core.runtime_dir import private_runtime_dir

NOBODY = 65534


def _is_private(path: Path) -> bool:
    info = path.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def test_xdg_runtime_dir_is_used_when_set(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    got = private_runtime_dir("app", env={"XDG_RUNTIME_DIR": str(xdg)}, cache=tmp_path / "c")
    assert got == xdg / "app" and _is_private(got)


def test_without_xdg_a_fresh_tmp_runtime_dir_is_created_private(tmp_path: Path) -> None:
    got = private_runtime_dir("app", env={}, tmp=tmp_path, cache=tmp_path / "c")
    assert got == tmp_path / f"runtime-{os.getuid()}" / "app"
    assert _is_private(got) and _is_private(got.parent)


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user's needs root")
@pytest.mark.parametrize("mode", [0o777, 0o755, 0o700])
def test_a_tmp_runtime_dir_pre_created_by_another_user_is_not_used(tmp_path: Path, mode: int):
    squatted = tmp_path / f"runtime-{os.getuid()}"
    squatted.mkdir()
    squatted.chmod(mode)
    os.chown(squatted, NOBODY, NOBODY)
    cache = tmp_path / "home" / ".cache" / "app"
    got = private_runtime_dir("app", env={}, tmp=tmp_path, cache=cache)
    assert got == cache / "run" and _is_private(got)
    assert not (squatted / "app").exists()


def test_a_symlink_planted_as_the_runtime_dir_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    (tmp_path / f"runtime-{os.getuid()}").symlink_to(elsewhere)
    cache = tmp_path / "c"
    got = private_runtime_dir("app", env={}, tmp=tmp_path, cache=cache)
    assert got == cache / "run"


def test_an_own_but_group_writable_tmp_runtime_dir_is_not_used(tmp_path: Path) -> None:
    loose = tmp_path / f"runtime-{os.getuid()}"
    loose.mkdir()
    loose.chmod(0o777)
    got = private_runtime_dir("app", env={}, tmp=tmp_path, cache=tmp_path / "c")
    assert got == tmp_path / "c" / "run"
