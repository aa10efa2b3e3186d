"""The installed app, tested like the venv one: the .deb's clearml-tray on a real desktop.

The package built once per run (tests/packaging/conftest.py) is unpacked, and its
`clearml-tray` runs as a user's desktop starts it: a PATH of system folders only (no venv, no
separately installed clearml-session), on Xvfb with a tray host (trayer), dunst and an unlocked
GNOME Keyring on the run's D-Bus bus, against the demo server with its agent and SSH endpoints.
`clearml-tray connect <short id>` (a second start, forwarded to the running tray) must end with
the editor called on the session's Host alias and `ssh -o BatchMode=yes clearml-<id8> echo ok`
answering: the bundled clearml-session built the tunnel, its ssh got the password from the
bundled askpass entry, and the master login did too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support.desktop import Window, docked_icon, screenshot, trayer, wait_for
from support.dunst import running_dunst
from support.emulator import EmulatorHandle, reachable_own_session
from support.secret_service import SecretService

from tray_app.core.settings.settings import Settings, save_settings
from tray_app.core.tunnels.ssh_config import SshConfig

pytestmark = [pytest.mark.packaging, pytest.mark.desktop, pytest.mark.timeout(600)]

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def _app_env(home: Path) -> dict[str, str]:
    """What a desktop session gives an app it starts: no venv, no test helpers on PATH."""
    keep = ("DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "LANG")
    keep += ("CTRAY_TEST_RUN",)  # the leak check's marker: what this test starts is seen
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=str(home),
        USER=os.environ.get("USER", "root"),
        PATH=SYSTEM_PATH,
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    return env


def test_the_installed_app_connects_and_ssh_needs_no_password(
    extracted: Path,
    emulator_factory: Callable[..., EmulatorHandle],
    isolated_home: Path,
    real_keyring: SecretService,
    tmp_path: Path,
) -> None:
    if shutil.which("ssh") is None or shutil.which("trayer") is None:
        pytest.skip("needs the OpenSSH client and trayer (apt-get install openssh-client trayer)")
    emu = emulator_factory(sessions=3, agent_tick=0.3)
    conf = emu.write_config(isolated_home / "clearml.conf")
    calls = tmp_path / "editor-calls.jsonl"
    editor = tmp_path / "code"  # the editor, named in Settings: nothing of ours is on PATH
    editor.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {calls}\n")
    editor.chmod(0o755)
    save_settings(Settings(editor_command=str(editor), open_editor_when_ready=True), [])
    SshConfig().ensure_include()  # agreed on an earlier connect
    env = _app_env(isolated_home)
    env.pop("PYTHON_KEYRING_BACKEND", None)  # the bundle finds GNOME Keyring by itself

    selftest = subprocess.run(
        [str(extracted), "self-test"], env=env, capture_output=True, text=True, timeout=120
    )
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert "keyring.backends.SecretService.Keyring" in selftest.stdout  # the bundle has it

    with trayer() as panel, running_dunst(tmp_path / "dunst"):
        tray = subprocess.Popen(
            [str(extracted), "--debug", "--config-file", str(conf)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "tray-stderr.txt", "w"),  # noqa: SIM115
        )
        try:
            icon = wait_for(lambda: docked_icon(panel), 60, "the installed tray's icon to dock")
            assert isinstance(icon, Window)
            session_id = reachable_own_session(emu)
            forwarded = subprocess.run(
                [str(extracted), "connect", session_id[:8]],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert forwarded.returncode == 0, forwarded.stdout + forwarded.stderr
            alias = f"clearml-{session_id[:8]}"
            wait_for(
                lambda: calls.exists() and alias in calls.read_text(), 120, "the editor called"
            )
            assert calls.read_text().splitlines()[0] == f"vscode-remote://ssh-remote+{alias}/root"
            user_config = isolated_home / ".ssh" / "config"

            def ssh_answers() -> bool:
                done = subprocess.run(
                    ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, "echo", "ok"],
                    env=env, capture_output=True, text=True, timeout=60,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
                return done.returncode == 0 and done.stdout.strip() == "ok"

            wait_for(ssh_answers, 60, "ssh -o BatchMode=yes to answer through the tunnel")
            screenshot(tmp_path / "installed-app-connected.png")
            log = _tray_log(isolated_home)
            assert "session password handed to clearml-session's ssh" in log, log[-3000:]
            assert f"ssh master connection for {alias} is up" in log
            # Nothing of the password at rest: neither in the keyring nor next to the tray.
            assert real_keyring.stored() == {}
        finally:
            tray.send_signal(signal.SIGTERM)
            try:
                tray.wait(30)
            except subprocess.TimeoutExpired:
                tray.kill()
                tray.wait(10)
    assert tray.returncode == 0, (tmp_path / "tray-stderr.txt").read_text()[-3000:]


def _tray_log(home: Path) -> str:
    logs = sorted((home / ".local" / "state" / "clearml-tray").rglob("*.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs)
