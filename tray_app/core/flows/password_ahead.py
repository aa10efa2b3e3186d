"""The tray logs in to a session's machine ahead of clearml-session: the CLI needs no password.

clearml-session spends ~5 of its ~6 s to a tunnel waiting, after typing the password, for a
second password prompt that would mean a wrong one. While the CLI starts (about a second), the
tray opens one OpenSSH master connection to the machine the CLI will reach (the session's
address, SSH port and user, as the CLI reads them), logged in by the askpass helper from the
keyring; the CLI's ssh (the shim in `core.ssh_master`) waits for that login (a marker file
named in the CLI's environment), rides on it, gets a shell prompt at once, and the CLI reports
the tunnel about a second after it started.

Anything that does not fit — no password known, host keys pinned by the server (the CLI checks
those itself), no address yet, the login refused — only means the CLI logs in itself, as
before. The login ends by itself seconds after the CLI's ssh is gone (ControlPersist), and at
once when the tunnel ends or the tray quits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tray_app.core.models import Session
from tray_app.core.ports import Runner
from tray_app.core.redact import register_secret
from tray_app.core.secrets import SecretStore, session_password_key
from tray_app.core.ssh_config import SshConfig
from tray_app.core.ssh_master import (
    LOGIN_MARKER_ENV,
    askpass_env,
    askpass_launcher,
    direct_exit_argv,
    direct_master_argv,
    login_marker,
    master_supported,
)

log = logging.getLogger(__name__)

LOGIN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Machine:
    """Where clearml-session's ssh goes for a session: its user, address and SSH port."""

    user: str
    host: str
    port: int

    @staticmethod
    def of(session: Session) -> Machine | None:
        if not (session.public_address and session.ssh_port):
            return None
        return Machine("root", session.public_address, session.ssh_port)


class ServerSide(Protocol):
    """What the login needs from the ClearML server (SessionService implements it)."""

    async def ssh_password(self, session_id: str) -> str: ...

    async def host_keys_pinned(self) -> bool: ...


class DirectLogin:
    def __init__(
        self,
        *,
        runner: Runner,
        server: Callable[[], ServerSide | None],
        env: Callable[[], Mapping[str, str]],
        secrets: Callable[[], SecretStore] = SecretStore,
        ssh_config: Callable[[], SshConfig] = SshConfig,
    ) -> None:
        self._runner = runner
        self._server = server
        self._env = env
        self._secrets = secrets
        self._ssh_config = ssh_config
        self._open: dict[str, Machine] = {}  # session id → the machine the tray is logged in to

    async def hold(self, session: Session) -> dict[str, str]:
        """Before the CLI starts: the environment that makes its ssh wait for `open` (empty
        when no login will be tried). `open` must follow; it lets the ssh go in any case."""
        if Machine.of(session) is None or self._server() is None or not master_supported():
            return {}
        config = self._ssh_config()
        marker = login_marker(config.control_dir, session.id)

        def touch() -> None:
            config.ensure_dirs()
            marker.touch()

        try:
            await asyncio.to_thread(touch)
        except OSError as exc:
            log.info("no login ahead of clearml-session: %s", exc.strerror)
            return {}
        return {LOGIN_MARKER_ENV: str(marker)}

    async def open(self, session: Session) -> bool:
        """Log in to the session's machine (True when the CLI's ssh will find the login)."""
        marker = login_marker(self._ssh_config().control_dir, session.id)
        return await self.open_machine(session.id, Machine.of(session), marker)

    async def open_machine(self, session_id: str, machine: Machine | None, marker: Path) -> bool:
        """Log in to `machine` for the CLI of `session_id`, whose ssh waits while `marker`
        exists; the marker goes in any case."""
        server = self._server()
        try:
            if machine is None or server is None or not master_supported():
                return False
            async with asyncio.timeout(LOGIN_TIMEOUT_S):
                return await self._log_in(session_id, machine, server)
        except Exception as exc:  # any failure: the CLI logs in by itself, as it always did
            log.info("no login ahead of clearml-session for %s: %s", session_id, _why(exc))
            return False
        finally:
            with contextlib.suppress(OSError):  # the CLI's ssh goes on now
                await asyncio.to_thread(marker.unlink, True)

    async def _log_in(self, session_id: str, machine: Machine, server: ServerSide) -> bool:
        if await server.host_keys_pinned():
            log.info("the server pins session host keys: clearml-session checks them itself")
            return False
        password = await server.ssh_password(session_id)
        if not password:
            return False
        register_secret(password)
        config = self._ssh_config()
        name = session_password_key(session_id)
        known_hosts = config.known_hosts_for(f"direct-{session_id[:8]}")

        def prepare() -> Path:
            config.ensure_dirs()  # the askpass launcher and the known hosts live there
            known_hosts.unlink(missing_ok=True)  # this login's key only, as the CLI trusts
            self._secrets().set(name, password)
            return askpass_launcher(config.managed.parent)

        helper = await asyncio.to_thread(prepare)
        argv = direct_master_argv(
            machine.user, machine.host, machine.port, config.control_dir, known_hosts
        )
        code, errors = await self._runner.run(
            argv, askpass_env(self._env(), helper, name), LOGIN_TIMEOUT_S
        )
        if code != 0:
            log.info("login ahead of clearml-session refused (%s): %s", code, errors[-300:])
            return False
        self._open[session_id] = machine
        log.info("logged in to %s:%s ahead of clearml-session", machine.host, machine.port)
        return True

    async def close(self, session_ids: set[str] | None = None) -> None:
        """End the logins of these sessions (None: all); the tunnel over them goes too."""
        config = self._ssh_config()
        for session_id in list(self._open if session_ids is None else session_ids):
            machine = self._open.pop(session_id, None)
            if machine is None:
                continue
            argv = direct_exit_argv(machine.user, machine.host, machine.port, config.control_dir)
            with contextlib.suppress(Exception):
                await self._runner.run(argv, self._env(), 10)

    def sessions(self) -> set[str]:
        return set(self._open)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it took too long"
    return type(exc).__name__
