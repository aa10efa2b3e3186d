"""A session behind a jump host: the jump host never sees the session password.

A second real SSH server (asyncssh) stands in for a bastion with password authentication; it
records every password anyone tries on it. The user's ssh config sends the session's machine
(and, in the second test, the tray's own Host alias) through it with ProxyJump. Real OpenSSH,
our real shim and askpass helper, and the tray's answering side (its `InstanceRequests` and
`SessionPasswords` on a real socket) run the logins:

- clearml-session's ssh (the shim, handed the password ahead): logged in to the session through
  a jump host that takes the user's key; the jump host is asked for nothing;
- the same through a jump host that takes passwords only: the login fails, and the session
  password reached the jump host zero times (an earlier version's helper answered its prompt
  three times, and would lock the user out there);
- the tray's master login for the editor, through the real tray (its instance socket
  listening) and a `Host clearml-*` ProxyJump of the user's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from support.ssh_server import SshServer, running_ssh_server

from benchmarks.answering_tray import answering_tray
from tray_app.core.tunnels.ssh_master import LOGGED_IN_LINE, write_ssh_shim

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client"),
]

SESSION_PASSWORD = "session-pw-NEVER-on-the-jump-4711"
JUMP_USER = "jumper"


@dataclass
class JumpHost:
    port: int
    tried: list[tuple[str, str]] = field(default_factory=list)  # (user, password) attempts
    key_logins: list[str] = field(default_factory=list)  # per key offered and signed


@contextmanager
def running_jump_host(key: Path | None) -> Iterator[JumpHost]:
    """A bastion on 127.0.0.1 that forwards to loopback; password auth (never the right
    password here), and key auth for `key`'s public half when given."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    jump = JumpHost(port)
    authorized = asyncssh.import_public_key(key.with_suffix(".pub").read_text()) if key else None
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            jump.tried.append((username, password))
            return False

        def kbdint_auth_supported(self) -> bool:
            return False

        def public_key_auth_supported(self) -> bool:
            return authorized is not None

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            ok = authorized is not None and key.public_data == authorized.public_data
            if ok:
                jump.key_logins.append(username)
            return ok

        def connection_requested(
            self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
        ) -> bool:
            return dest_host.startswith("127.")  # ssh -W: loopback only

    async def start() -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        holder["server"] = await asyncssh.create_server(
            Server, "127.0.0.1", port, server_host_keys=[host_key]
        )
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(15), "the jump host did not start"
    try:
        yield jump
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _user_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_jump"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    return key


def _config(tmp_path: Path, jump: JumpHost, key: Path | None, pattern: str) -> Path:
    """The user's ssh config: `pattern` goes through the bastion."""
    config = tmp_path / "ssh_config"
    identity = f"  IdentityFile {key}\n  IdentitiesOnly yes\n" if key else ""
    config.write_text(
        f"Host bastion\n  HostName 127.0.0.1\n  Port {jump.port}\n  User {JUMP_USER}\n"
        f"{identity}  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        # Passwords first, as some bastions ask: where a password could be typed, it would be.
        "  PreferredAuthentications password,keyboard-interactive,publickey\n"
        f"Host {pattern}\n  ProxyJump bastion\n"
    )
    return config


def _clis_ssh(
    tmp_path: Path, target: SshServer, config: Path, socket_path: str, token: str
) -> subprocess.CompletedProcess[str]:
    """clearml-session's first ssh as the tray starts it: the shim, with the note that the
    password was handed over, the token and the socket in its environment; no terminal."""
    folder = write_ssh_shim(tmp_path / "data")
    assert folder is not None
    marker = tmp_path / "login-attach-1.pending"  # already gone: handed over
    marker.with_suffix(".askpass").touch(mode=0o600)
    env = {
        **os.environ,
        "CLEARML_TRAY_LOGIN_MARKER": str(marker),
        "CLEARML_TRAY_ASKPASS_TOKEN": token,
        "CLEARML_TRAY_ASKPASS_SOCKET": socket_path,
    }
    argv = [str(folder / "ssh"), "-F", str(config), "-C", f"root@{target_host(target)}",
            "-p", str(target.port), "-o", "UserKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=no", "echo", "ok"]  # fmt: skip
    return subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        start_new_session=True,
    )  # fmt: skip


TARGET_HOST = "127.0.0.2"


def target_host(target: SshServer) -> str:
    return TARGET_HOST


def test_the_clis_ssh_logs_in_through_a_key_jump_host_which_sees_no_password(
    tmp_path: Path,
) -> None:
    key = _user_key(tmp_path)
    with (
        running_jump_host(key) as jump,
        running_ssh_server(password=SESSION_PASSWORD, host=TARGET_HOST) as target,
        answering_tray() as tray,
    ):
        config = _config(tmp_path, jump, key, TARGET_HOST)
        token = tray.passwords.new(
            SESSION_PASSWORD, user="root", host=TARGET_HOST, port=target.port
        )
        done = _clis_ssh(tmp_path, target, config, tray.socket, token)
        # ssh says it is logged in (what the CLI waits for), then the command runs.
        assert (done.returncode, done.stdout.splitlines()) == (0, [LOGGED_IN_LINE, "ok"]), (
            done.stderr
        )
        assert target.logins == ["root"] and set(jump.key_logins) == {JUMP_USER}
        assert jump.tried == []  # asked for no password at all
        # The helper was asked once, by the session's own ssh; its jump ssh had no token.
        assert [str(m["prompt"]).strip() for m in tray.asked] == [f"(root@{TARGET_HOST}) Password:"]
        assert len(tray.passwords) == 0


def test_a_password_only_jump_host_never_gets_the_session_password(tmp_path: Path) -> None:
    with (
        running_jump_host(None) as jump,
        running_ssh_server(password=SESSION_PASSWORD, host=TARGET_HOST) as target,
        answering_tray() as tray,
    ):
        config = _config(tmp_path, jump, None, TARGET_HOST)
        token = tray.passwords.new(
            SESSION_PASSWORD, user="root", host=TARGET_HOST, port=target.port
        )
        done = _clis_ssh(tmp_path, target, config, tray.socket, token)
        assert done.returncode != 0  # the jump host wants a password nobody may give it
        assert all(password != SESSION_PASSWORD for _, password in jump.tried)
        assert jump.tried == [] and target.logins == []
        assert tray.asked == [] and len(tray.passwords) == 1  # nobody asked for it


async def test_the_trays_own_login_goes_through_the_users_jump_host_and_gives_it_nothing(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `Host clearml-*` ProxyJump in ~/.ssh/config (say, a `Host *` bastion rule): the tray's
    master login for the editor runs its jump ssh without the askpass variables."""
    import argparse
    import sys

    from tray_app.app import TrayApplication
    from tray_app.core.tunnels.model import TunnelInfo, TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig
    from tray_app.qt.single_instance import SingleInstance

    stand_in = tmp_path / "bin" / "code"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!{sys.executable}\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    key = _user_key(tmp_path)
    with (
        running_jump_host(key) as jump,
        running_ssh_server(password=SESSION_PASSWORD) as tunnel_end,  # the CLI's local port
    ):
        SshConfig().ensure_include()
        user_config = isolated_home / ".ssh" / "config"
        bastion = _config(tmp_path, jump, key, "clearml-*").read_text()
        user_config.write_text(user_config.read_text() + bastion)
        args = argparse.Namespace(
            config_file=str(tmp_path / "none.conf"), demo=False, show=False, debug=False,
            command=None,
        )  # fmt: skip
        app = TrayApplication(args)
        instance = SingleInstance(app.requests.handle)
        assert instance.listen()
        try:
            session_id = "0123456789abcdef0123456789abcdef"
            info = TunnelInfo(
                session_id, session_id, TunnelState.READY, local_ssh_port=tunnel_end.port,
                user="root",
            )  # fmt: skip
            app.hosts.tunnel_up(info, SESSION_PASSWORD)
            await app.hosts.prepare_host(info)
            await app.controller.wait_idle()
            assert "clearml-01234567" in app.hosts.masters
            assert tunnel_end.logins == ["root"] and set(jump.key_logins) == {JUMP_USER}
            assert jump.tried == []
            echo = await asyncio.to_thread(
                subprocess.run,
                ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", "clearml-01234567",
                 "echo", "ok"],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert (echo.returncode, echo.stdout.strip()) == (0, "ok"), echo.stderr
        finally:
            await app.quit()
            instance.close()
