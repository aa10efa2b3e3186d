"""Connect never waits on the keyring, in every state a user's keyring may be in.

The real tray (its instance socket listening), the emulator with its agent and SSH endpoints,
the real `clearml-session --attach`, the real OpenSSH client, and a real GNOME Keyring on the
run's D-Bus bus in each state users have it:

- unlocked (a desktop login unlocked it);
- locked over the Secret Service API, as an auto-login desktop leaves it: a read or a write
  waits for the unlock prompt (gcr-prompter, on the test's X server) that nobody answers;
- no login collection yet: the first use waits for the prompt that would create one;
- no Secret Service at all: a bus where nothing provides or can start it.

In each, Connect reaches `ssh -o BatchMode=yes <alias> echo ok` without any prompt, and nothing
of the session password lands in the keyring or a file; a fixed-password preset launches when
its password can be read and otherwise says clearly why it cannot (nothing starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends.SecretService import Keyring as SecretServiceKeyring
from support.emulator import EmulatorHandle
from support.secret_service import (
    BACKEND,
    name_owner_pid,
    no_secret_service_bus,
    running_secret_service,
    use_backend,
)
from test_connect_e2e import (  # the same tray, helpers and cleanup as the connect test
    _close_instance_sockets,  # noqa: F401  (an autouse fixture)
    _editor_on_path,
    _files_holding,
    _guard_children,
    _tray,
    _until,
)

from tray_app.core.server.session_ref import connectable
from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.tunnels import launch as launch_mod
from tray_app.core.tunnels.ssh_config import SshConfig, host_alias

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STATES = ["unlocked", "locked", "no login collection", "no Secret Service"]
FIXED = Preset(name="fixed gpu", queue="sessions", password_policy=PasswordPolicy.FIXED)
FIXED_PASSWORD = "fixed-preset-pw-7781"
PROMPTER = "org.gnome.keyring.SystemPrompter"


def _lock_the_login_collection() -> None:
    """As the desktop does at screen lock or an auto-login leaves it: over the Secret Service
    API, not by stopping the daemon."""
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        collection.lock()
        assert collection.is_locked()
    finally:
        connection.close()


@contextlib.contextmanager
def keyring_in_state(
    state: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    if state == "no login collection":
        with running_secret_service(home, unlock=False), use_backend(SecretServiceKeyring()):
            yield
        return
    with running_secret_service(home), use_backend(SecretServiceKeyring()):
        # The user stored the preset's password on an earlier day.
        assert SecretStore().set(FIXED.password_keyring_key(), FIXED_PASSWORD) == "keyring"
        if state == "unlocked":
            yield
            return
        if state == "locked":
            _lock_the_login_collection()
            yield
            return
    with no_secret_service_bus(tmp_path / "bus") as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        with use_backend(SecretServiceKeyring()):
            yield


def _end_prompter() -> None:
    """The unlock (or create) prompt the keyring opened for the preset's read: nobody answers
    it in a test; it goes with the test (its process found by its D-Bus name)."""
    pid = name_owner_pid(PROMPTER)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize("state", STATES)
async def test_connect_reaches_a_prompt_free_ssh_whatever_the_keyring(
    state: str,
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    emu: EmulatorHandle = emulator_factory(sessions=4, agent_tick=0.3)
    client_env = clearml_client_env(emu)
    _guard_children(monkeypatch, client_env)
    record = _editor_on_path(tmp_path, monkeypatch, "ms-vscode-remote.remote-ssh")
    SshConfig().ensure_include()  # agreed on an earlier connect
    monkeypatch.setattr(launch_mod, "KEYRING_WAIT_S", 3.0)
    with keyring_in_state(state, isolated_home, tmp_path, monkeypatch):
        app = _tray(client_env)
        notices: list[tuple[str, str, str]] = []
        real_notify = app.notifier.notify

        def notify(kind: str, title: str, body: str, *args: Any, **kw: Any) -> bool:
            notices.append((kind, title, body))
            return real_notify(kind, title, body, *args, **kw)

        monkeypatch.setattr(app.notifier, "notify", notify)
        try:
            await app.start()
            await _until(lambda: bool(connectable(app.poller.snapshot)), "a running session")
            session = connectable(app.poller.snapshot)[0]
            app.controller.handle("connect", session.id)
            await _until(
                lambda: record.exists() and "--new-window" in record.read_text(),
                "the editor on the session",
                60,
            )
            alias = host_alias(session.id)
            done = await asyncio.to_thread(
                subprocess.run,
                ["ssh", "-F", str(isolated_home / ".ssh" / "config"), "-o", "BatchMode=yes",
                 alias, "echo", "ok"],
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
            tunnel = app.tunnels.tunnel_for(session.id)
            assert tunnel is not None
            password = app.tunnels.password(tunnel.key)
            assert password and _files_holding(isolated_home, password) == []

            # A fixed-password preset: launched with its password, or told why not.
            key = await app.launch(FIXED)
            if state == "unlocked":
                assert key is not None
            else:
                assert key is None
                (failed,) = [n for n in notices if n[1] == "Session not started"]
                assert failed[2].startswith(
                    "The preset “fixed gpu” uses a fixed password, which could not be read "
                    "from the keyring: "
                )
                reasons = {
                    "locked": "did not answer within a few seconds",
                    "no login collection": "did not answer within a few seconds",
                    "no Secret Service": "no keyring service",
                }
                assert reasons[state] in failed[2], failed[2]
        finally:
            await app.quit(shutdown_remote=False)
            _end_prompter()
    assert client_env.network_attempts() == []
