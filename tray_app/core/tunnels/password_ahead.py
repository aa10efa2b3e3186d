"""The tray hands clearml-session's ssh the session password ahead: the CLI skips its 5 s wait.

clearml-session spends ~5 of its ~6 s to a tunnel waiting, after typing the password, for a
second password prompt that would mean a wrong one. It waits only when ssh prompts; when ssh
gets the password from an askpass helper instead, the CLI sees a shell prompt at once and goes
on. So while the CLI starts (about a second), the tray reads the password from the task
(`runtime._ssh_password`, where the CLI reads it too), stores it in the keyring, and leaves the
keyring entry's name in a note next to a marker file; the CLI's ssh (the shim in
`ssh_master`) waits while the marker exists, then, once, runs with our askpass helper.

The ssh stays the CLI's own: it holds the TCP connection and the port forwards, so the CLI's
liveness check (it looks at its ssh's sockets every 3 s) passes and nothing but the CLI's
children carries the tunnel. Anything that does not fit — no password known, host keys pinned
by the server (the CLI then checks a fingerprint it must see prompted) — only means the CLI's
ssh prompts as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tray_app.core.redact import register_secret
from tray_app.core.server.models import Session
from tray_app.core.settings.secrets import SecretStore, session_password_key
from tray_app.core.tunnels.ssh_config import SshConfig
from tray_app.core.tunnels.ssh_master import (
    LOGIN_MARKER_ENV,
    askpass_note,
    login_marker,
)

log = logging.getLogger(__name__)

HAND_OVER_TIMEOUT_S = 10.0


class ServerSide(Protocol):
    """What the hand-over needs from the ClearML server (SessionService implements it)."""

    async def ssh_password(self, session_id: str) -> str: ...

    async def host_keys_pinned(self) -> bool: ...


class PasswordAhead:
    def __init__(
        self,
        *,
        server: Callable[[], ServerSide | None],
        secrets: SecretStore,
        ssh_config: Callable[[], SshConfig] = SshConfig,
        shim_in_use: Callable[[], bool] = lambda: True,
    ) -> None:
        self._server = server
        self._shim_in_use = shim_in_use  # no shim on the CLI's PATH: nobody would use it
        self._secrets = secrets
        self._ssh_config = ssh_config
        self._stored: set[str] = set()  # sessions whose password this run put in the keyring

    async def hold(self, session: Session) -> dict[str, str]:
        """Before `clearml-session --attach` starts: the environment that makes its ssh wait
        for `hand_over` (empty when none will be tried). `hand_over` must follow."""
        if not (session.public_address and session.ssh_port) or self._server() is None:
            return {}
        return await self._hold(login_marker(self._ssh_config().control_dir, session.id))

    async def hold_launch(self, key: str) -> dict[str, str]:
        """The same for a new session, whose id is known only once the CLI created it: the
        reducer asks for the hand-over (`LoginAhead`) when the CLI starts its tunnel."""
        if self._server() is None:
            return {}
        return await self._hold(self._ssh_config().control_dir / f"login-{key}.pending")

    async def _hold(self, marker: Path) -> dict[str, str]:
        if not self._shim_in_use():
            return {}
        config = self._ssh_config()

        def touch() -> None:
            config.ensure_dirs()
            askpass_note(marker).unlink(missing_ok=True)  # an earlier run's, never used
            marker.touch()

        try:
            await asyncio.to_thread(touch)
        except OSError as exc:
            log.info("no password ahead of clearml-session: %s", exc.strerror)
            return {}
        return {LOGIN_MARKER_ENV: str(marker)}

    async def hand_over(self, session_id: str, marker: Path) -> bool:
        """Store the password of `session_id` for the CLI's ssh, which waits while `marker`
        exists; the marker goes in any case. True when the ssh will use it."""
        server = self._server()
        try:
            if server is None:
                return False
            async with asyncio.timeout(HAND_OVER_TIMEOUT_S):
                return await self._store(session_id, marker, server)
        except Exception as exc:  # any failure: the CLI's ssh prompts, as it always did
            log.info("no password ahead of clearml-session for %s: %s", session_id, _why(exc))
            return False
        finally:
            with contextlib.suppress(OSError):  # the CLI's ssh goes on now
                await asyncio.to_thread(marker.unlink, True)

    async def let_go(self, marker: Path) -> None:
        """Nothing will be handed over: the CLI's ssh waiting on `marker` prompts at once."""
        with contextlib.suppress(OSError):
            await asyncio.to_thread(marker.unlink, True)

    async def _store(self, session_id: str, marker: Path, server: ServerSide) -> bool:
        if await server.host_keys_pinned():
            log.info("the server pins session host keys: clearml-session checks them itself")
            return False
        password = await server.ssh_password(session_id)
        if not password:
            return False
        register_secret(password)
        name = session_password_key(session_id)

        def store() -> None:
            self._secrets.set(name, password)
            note = askpass_note(marker)
            note.write_text(name)  # a keyring entry's name, not the secret
            note.chmod(0o600)

        await asyncio.to_thread(store)
        self._stored.add(session_id)
        log.info("session password handed to clearml-session's ssh (keyring entry %s)", name)
        return True

    async def forget(self, session_ids: set[str] | None = None) -> None:
        """The tunnels of these sessions (None: all) ended: their passwords leave the keyring."""
        ending = set(self._stored) if session_ids is None else self._stored & session_ids
        self._stored -= ending
        for session_id in ending:
            with contextlib.suppress(Exception):  # no keyring: nothing was stored
                await asyncio.to_thread(self._secrets.delete, session_password_key(session_id))

    def sessions(self) -> set[str]:
        """Sessions whose password this run stored for their CLI."""
        return set(self._stored)

    def unused(self, in_use: set[str]) -> set[str]:
        """Sessions whose password this run stored although none of `in_use` needs it."""
        return self._stored - in_use


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it took too long"
    return type(exc).__name__
