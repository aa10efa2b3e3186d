"""Password-less connect: a ControlMaster opened with our askpass helper, reused by plain ssh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.ssh_server import running_ssh_server

from tray_app.core.settings.secrets import SecretStore, session_password_key
from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig
from tray_app.core.tunnels.ssh_master import (
    askpass_env,
    askpass_launcher,
    check_argv,
    exit_argv,
    master_argv,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal: ssh may only use our askpass helper
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )


def test_master_with_askpass_then_batch_mode_ssh_needs_no_password(isolated_home: Path) -> None:
    session_id = "0123456789abcdef0123456789abcdef"
    with running_ssh_server(password="p4ss]w0rd with spaces") as server:
        SecretStore().set(session_password_key(session_id), server.password)
        config = SshConfig(isolated_home)
        config.ensure_include()
        control = str(config.control_dir / "%C")
        alias = config.add(HostEntry(session_id, server.port, server.user, control_path=control))
        user_config = isolated_home / ".ssh" / "config"
        helper = askpass_launcher(config.managed.parent)
        env = askpass_env(dict(os.environ), helper, session_password_key(session_id))

        opened = _run(master_argv(alias, user_config), env)
        assert opened.returncode == 0, opened.stderr
        assert server.logins == ["root"]
        assert _run(check_argv(alias, user_config), env).returncode == 0

        plain = {k: v for k, v in os.environ.items() if not k.startswith("SSH_ASKPASS")}
        reused = _run(
            ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, "echo", "ok"], plain
        )
        assert reused.returncode == 0, reused.stderr
        assert reused.stdout.strip() == "ok"
        assert server.logins == ["root"]  # no second login: the master was reused

        assert _run(exit_argv(alias, user_config), env).returncode == 0
        again = _run(
            ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, "echo", "ok"], plain
        )
        assert again.returncode != 0  # without the master, BatchMode cannot log in


def test_askpass_without_a_stored_password_fails_cleanly(isolated_home: Path) -> None:
    helper = askpass_launcher(isolated_home)
    env = askpass_env(dict(os.environ), helper, session_password_key("f" * 32))
    result = _run([str(helper)], env)
    assert result.returncode == 1
    assert result.stdout == "" and "no stored password" in result.stderr
