"""The SSH_ASKPASS helper against a real GNOME Keyring, started by a real ssh.

The tray keeps the session password in the user's Secret Service; ssh starts the helper as a
separate process, which must read it from there over D-Bus. Also: a locked keyring and a
desktop without any keyring service give clear messages, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from keyring.backends.SecretService import Keyring as SecretServiceKeyring
from support.secret_service import (
    BACKEND,
    SecretService,
    no_secret_service_bus,
    running_secret_service,
    use_backend,
)
from support.ssh_server import SshServer, running_ssh_server

from tray_app.core.settings.secrets import FILE, KEYRING, SecretStore, session_password_key
from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig
from tray_app.core.tunnels.ssh_master import (
    askpass_env,
    askpass_launcher,
    exit_argv,
    master_argv,
    write_ssh_shim,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client"),
]

SESSION_ID = "0123456789abcdef0123456789abcdef"
SECRET_NAME = session_password_key(SESSION_ID)


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal: ssh may only use our askpass helper
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def _log_in(home: Path, server: SshServer) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The tray's master login for the session, with our askpass helper; also its exit argv."""
    config = SshConfig(home)
    config.ensure_include()
    control = str(config.control_dir / "%C")
    alias = config.add(HostEntry(SESSION_ID, server.port, server.user, control_path=control))
    user_config = home / ".ssh" / "config"
    helper = askpass_launcher(config.managed.parent)
    env = askpass_env(dict(os.environ), helper, SECRET_NAME)
    return _run(master_argv(alias, user_config), env), exit_argv(alias, user_config)


def test_askpass_reads_the_session_password_from_gnome_keyring_for_a_real_ssh(
    real_keyring: SecretService, isolated_home: Path
) -> None:
    with running_ssh_server(password="p4ss]w0rd with spaces") as server:
        store = SecretStore()
        assert store.backend_name == BACKEND and not store.is_fallback
        assert store.set(SECRET_NAME, server.password) == KEYRING
        # In the keyring daemon (read back over D-Bus), and in no file.
        assert real_keyring.stored() == {SECRET_NAME: server.password}
        assert not store.fallback_path.exists()
        assert server.password not in store.index_path.read_text()

        opened, exit_cmd = _log_in(isolated_home, server)
        assert opened.returncode == 0, opened.stderr
        assert server.logins == ["root"]
        assert _run(exit_cmd, dict(os.environ)).returncode == 0


def test_a_locked_keyring_makes_askpass_say_so_and_the_login_fail(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bus of our own where no unlock prompt can be started (as over SSH or in a bare session):
    # the daemon cannot ask for the password, so the keyring stays locked.
    with no_secret_service_bus(tmp_path / "bus") as address, running_ssh_server() as server:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
        with running_secret_service(isolated_home), use_backend(SecretServiceKeyring()):
            assert SecretStore().set(SECRET_NAME, server.password) == KEYRING
        # The daemon again, as after a new login where nothing unlocked the keyring.
        with running_secret_service(isolated_home, unlock=False):
            opened, _ = _log_in(isolated_home, server)
    assert opened.returncode != 0
    assert (
        f"clearml-tray askpass: The secret '{SECRET_NAME}' could not be read from the system "
        "keyring: the keyring is locked. Unlock it" in opened.stderr
    )
    assert "Traceback" not in opened.stderr
    assert server.logins == []


def test_without_a_keyring_service_the_password_goes_to_the_visible_file_and_ssh_works(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with no_secret_service_bus(tmp_path / "bus") as address, running_ssh_server() as server:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
        with use_backend(SecretServiceKeyring()):
            store = SecretStore()
            assert store.set(SECRET_NAME, server.password) == FILE
            assert store.is_fallback and store.warning is not None
            assert (
                "no keyring service (such as GNOME Keyring or KWallet) runs on the D-Bus "
                "session bus" in store.warning
            )
            assert str(store.fallback_path) in store.warning
            opened, exit_cmd = _log_in(isolated_home, server)
            assert opened.returncode == 0, opened.stderr
            assert server.logins == ["root"]
            assert _run(exit_cmd, dict(os.environ)).returncode == 0


def _shim_ssh(home: Path, server: SshServer, *extra: str) -> subprocess.CompletedProcess[str]:
    """clearml-session's first ssh, as the tray starts it: the shim, told (a note beside its
    marker) which keyring entry holds the password; no terminal to prompt on."""
    folder = write_ssh_shim(home / "data")
    assert folder is not None
    marker = home / "login-01234567.pending"  # already gone: the tray has handed it over
    (home / "login-01234567.askpass").write_text(SECRET_NAME)
    env = {**os.environ, "CLEARML_TRAY_LOGIN_MARKER": str(marker)}
    argv = [str(folder / "ssh"), "-p", str(server.port), f"{server.user}@127.0.0.1",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", *extra,
            "echo", "ok"]  # fmt: skip
    return _run(argv, env)


def test_the_clis_ssh_logs_in_with_the_keyring_password_and_never_prompts(
    real_keyring: SecretService, isolated_home: Path
) -> None:
    with running_ssh_server(password="p4ss]w0rd with spaces") as server:
        assert SecretStore().set(SECRET_NAME, server.password) == KEYRING
        done = _shim_ssh(isolated_home, server)
        assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
        assert server.logins == ["root"]
        assert server.password not in done.stderr + done.stdout
        assert not (isolated_home / "login-01234567.askpass").exists()  # used once

        # The helper answers password prompts only: never a key's passphrase with it.
        helper = askpass_launcher(isolated_home / "data" / "ssh-shim")
        env = {**os.environ, "CLEARML_TRAY_ASKPASS_KEY": SECRET_NAME}
        asked = _run([str(helper), "root@127.0.0.1's password: "], env)
        assert (asked.returncode, asked.stdout) == (0, server.password + "\n")
        passphrase = _run([str(helper), "Enter passphrase for key '/root/.ssh/id_ed25519': "], env)
        assert passphrase.returncode == 1 and passphrase.stdout == ""
        assert "not a password prompt" in passphrase.stderr

        # A wrong password costs one try, at once: the CLI then prompts as it always did.
        assert SecretStore().set(SECRET_NAME, "not the password") == KEYRING
        refused = _shim_ssh(isolated_home, server)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        assert server.logins == ["root"]
