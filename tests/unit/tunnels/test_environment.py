"""Where a clearml-session child runs: the same clearml.conf, the shim first on PATH, private
state files, logs named by start time."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from tray_app.core.tunnels.environment import ChildEnvironment, find_executable


async def test_the_child_reads_the_trays_clearml_conf_and_finds_the_shim_first(
    tmp_path: Path,
) -> None:
    if shutil.which("ssh") is None or os.name != "posix":
        pytest.skip("the shim wraps OpenSSH's ssh in a POSIX shell script")
    env = ChildEnvironment(
        tmp_path / "data",
        config_file=lambda: "~/conf/clearml.conf",
        base_env=lambda: {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert not env.shim_in_use
    assert "CLEARML_CONFIG_FILE" in env.env() and env.env()["PATH"] == "/usr/bin:/bin"
    await env.prepare()
    child = env.env({"CLEARML_TRAY_LOGIN_MARKER": "/m"})
    assert env.shim_in_use
    assert child["PATH"].split(os.pathsep)[0] == str(tmp_path / "data" / "ssh-shim")
    assert child["CLEARML_CONFIG_FILE"] == f"{os.environ['HOME']}/conf/clearml.conf"
    assert child["CLEARML_TRAY_LOGIN_MARKER"] == "/m" and child["PYTHONUNBUFFERED"] == "1"


async def test_no_shim_when_asked_for_none_and_no_config_file_of_the_trays(
    tmp_path: Path,
) -> None:
    env = ChildEnvironment(tmp_path / "data", shim=False, base_env=lambda: {"PATH": "/bin"})
    await env.prepare()
    assert not env.shim_in_use and env.env() == {"PATH": "/bin", "PYTHONUNBUFFERED": "1"}


def test_state_files_are_private_and_logs_carry_the_start_time(tmp_path: Path) -> None:
    env = ChildEnvironment(tmp_path / "data", shim=False)
    state = env.state_file("launch-1")
    assert state.name == "launch-1.json"
    if os.name == "posix":
        assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert re.fullmatch(r"\d{8}-\d{6}-launch-1\.log", env.log_path("launch-1").name)


def test_the_cli_is_found_beside_the_interpreter_first(tmp_path: Path) -> None:
    found = find_executable()
    assert found is not None and Path(found).parent == Path(sys.executable).parent
    assert find_executable("no-such-program-at-all") is None
    assert ChildEnvironment(tmp_path, executable="/x/clearml-session").executable() == (
        "/x/clearml-session"
    )
