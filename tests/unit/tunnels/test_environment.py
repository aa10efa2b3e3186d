"""Where a clearml-session child runs: the same clearml.conf, the shim first on PATH, private
state files, logs named by start time."""

from __future__ import annotations

import asyncio
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
    assert "CLEARML_CONFIG_FILE" in env.env()
    assert env.env()["PATH"] == "/usr/bin:/bin:/usr/sbin:/sbin"
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
    assert not env.shim_in_use
    assert env.env() == {"PATH": "/bin:/usr/bin:/usr/sbin:/sbin", "PYTHONUNBUFFERED": "1"}


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


def test_settings_clearml_session_wins_and_a_bad_one_is_said_in_words(tmp_path: Path) -> None:
    other = tmp_path / "my-clearml-session"
    chosen = [str(other)]
    env = ChildEnvironment(tmp_path, configured=lambda: chosen[0])
    assert env.command() is None
    assert env.problem == (
        f"The clearml-session set in Settings ({other}) is not an executable file."
    )
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert env.command() == (str(other),) and env.problem == ""
    chosen[0] = ""  # back to the one found
    assert env.command() == (find_executable(),)


def test_a_bundle_runs_its_own_clearml_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frozen (PyInstaller), the executable is the tray: its hidden entry is the CLI."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    env = ChildEnvironment(tmp_path, base_env=lambda: {"PATH": "/nowhere"})
    assert env.command() == (sys.executable, "_clearml-session")
    from tray_app.core.tunnels.ssh_master import askpass_command

    assert askpass_command() == [sys.executable, "_askpass"]


def test_an_app_started_from_finder_still_finds_the_tools(tmp_path: Path) -> None:
    """launchd gives an app /usr/bin:/bin:/usr/sbin:/sbin: Homebrew's and pip's folders are
    added (when they exist), nothing is taken away."""
    from tray_app.core.tunnels.environment import desktop_path

    (tmp_path / "opt" / "homebrew" / "bin").mkdir(parents=True)
    bare = "/usr/bin:/bin:/usr/sbin:/sbin"
    added = desktop_path(bare, "darwin", home=str(tmp_path))
    assert added.startswith(bare + ":")
    assert f"{tmp_path}/.local/bin" not in added  # not there: not added
    assert desktop_path("/x:/usr/bin", "linux") == "/x:/usr/bin:/bin:/usr/sbin:/sbin"


async def test_a_system_without_which_gets_one_for_the_cli_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clearml-session finds ssh with `which ssh`: where there is none, the shim folder (first
    on the CLI's PATH) has one, and the log says why."""
    import logging
    import subprocess

    ssh = shutil.which("ssh")
    if ssh is None or os.name != "posix":
        pytest.skip("the shim wraps OpenSSH's ssh in a POSIX shell script")
    bare = tmp_path / "bin"  # a PATH with ssh and sh, but no `which`
    bare.mkdir()
    for tool in ("ssh", "sh", "sleep", "grep", "rm", "cat"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    from tray_app.core.tunnels import environment

    monkeypatch.setattr(environment, "desktop_path", lambda path: path)  # only `bare`
    env = ChildEnvironment(tmp_path / "data", base_env=lambda: {"PATH": str(bare)})
    with caplog.at_level(logging.WARNING):
        await env.prepare()
    assert "this system has no `which`" in caplog.text
    child = env.env()
    done = await asyncio.to_thread(
        subprocess.run,
        ["which", "ssh"],
        env=child,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    shim = tmp_path / "data" / "ssh-shim"
    assert (done.returncode, done.stdout.strip()) == (0, str(shim / "ssh"))


async def test_an_openssh_without_askpass_require_hands_nothing_over_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    if os.name != "posix":
        pytest.skip("a POSIX shell script stands in for ssh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "ssh"
    old.write_text("#!/bin/sh\necho 'OpenSSH_8.2p1 Ubuntu-4ubuntu0.5, OpenSSL 1.1.1f' >&2\n")
    old.chmod(0o755)
    env = ChildEnvironment(tmp_path / "data", base_env=lambda: {"PATH": f"{bin_dir}:/usr/bin:/bin"})
    with caplog.at_level(logging.WARNING):
        await env.prepare()
    assert env.ssh_version == (8, 2) and env.shim_in_use and not env.hand_over_possible
    assert "OpenSSH 8.2 has no SSH_ASKPASS_REQUIRE (8.4+)" in caplog.text


async def test_state_files_a_killed_run_left_are_removed_at_start(tmp_path: Path) -> None:
    env = ChildEnvironment(tmp_path / "data", shim=False)
    left = env.state_file("launch-3")
    left.write_text('{"password": "fixed-pw-left-behind"}')
    await env.prepare()
    assert not left.exists()
