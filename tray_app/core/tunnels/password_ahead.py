"""The tray hands clearml-session's ssh the session password ahead: the CLI skips its 5 s wait.

clearml-session spends ~5 of its ~6 s to a tunnel waiting, after typing the password, for a
second password prompt that would mean a wrong one. It waits only when ssh prompts; when ssh
gets the password from an askpass helper instead, ssh says it is logged in (the shim's
LocalCommand line) and the CLI goes on. So, before the CLI starts, the tray puts a marker file
and a one-time token in its environment (`hold`); while the CLI starts (about a second) it
reads the password from the task (`runtime._ssh_password`, where the CLI reads it too). When the
CLI says which user, host and port its ssh logs in to (its "Starting SSH tunnel" line), the
token is granted that password for that login only (`session_passwords`, in memory), a note
beside the marker tells the shim to use our helper, and the marker goes: the CLI's ssh, which
waited on it, runs.

The ssh stays the CLI's own: it holds the TCP connection and the port forwards, so the CLI's
liveness check (it looks at its ssh's sockets every 3 s) passes and nothing but the CLI's
children carries the tunnel. Whatever cannot help — no password known, host keys pinned by the
server (the CLI then checks a fingerprint it must see prompted), an OpenSSH without
SSH_ASKPASS_REQUIRE, a server that is slow to answer — releases the marker at once: the CLI's
ssh then prompts as it always did, never later than it would have without the tray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tray_app.core.redact import register_secret
from tray_app.core.tunnels.askpass_words import (
    ASKPASS_SOCKET_ENV,
    ASKPASS_TOKEN_ENV,
    LOGIN_MARKER_ENV,
)
from tray_app.core.tunnels.session_passwords import SessionPasswords
from tray_app.core.tunnels.ssh_config import SshConfig
from tray_app.core.tunnels.ssh_master import askpass_note, login_marker

log = logging.getLogger(__name__)

# The CLI's ssh waits at most ssh_master.LOGIN_WAIT_S on the marker; the password is usually
# there long before the CLI has started (one request, tens of ms).
HAND_OVER_TIMEOUT_S = 3.0


class ServerSide(Protocol):
    """What the hand-over needs from the ClearML server (SessionService implements it)."""

    async def ssh_password(self, session_id: str) -> str: ...

    async def host_keys_pinned(self) -> bool: ...


@dataclass(slots=True)
class Hold:
    """One CLI's ssh, held back until the tray knows whether it has the password for it."""

    marker: Path
    token: str = field(repr=False)
    socket: str = ""
    fetch: asyncio.Future[str] | None = field(default=None, repr=False)
    session_id: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {LOGIN_MARKER_ENV: str(self.marker), ASKPASS_TOKEN_ENV: self.token}
        if self.socket:
            env[ASKPASS_SOCKET_ENV] = self.socket
        return env

    @property
    def note(self) -> Path:
        return askpass_note(self.marker)


class PasswordAhead:
    def __init__(
        self,
        *,
        server: Callable[[], ServerSide | None],
        passwords: SessionPasswords,
        ssh_config: Callable[[], SshConfig] = SshConfig,
        usable: Callable[[], bool] = lambda: True,
        socket: Callable[[], str] = lambda: "",
    ) -> None:
        self._server = server
        self._passwords = passwords
        self._ssh_config = ssh_config
        # The shim is on the CLI's PATH and its OpenSSH uses askpass on a terminal (8.4+).
        self._usable = usable
        self._socket = socket  # where the askpass helper reaches this tray
        self._handed: set[str] = set()  # sessions whose CLI's ssh got the password this run

    async def hold(self, key: str, session_id: str | None = None) -> Hold | None:
        """Before the CLI of child `key` starts: the hold whose `env` makes its ssh wait (None:
        nothing will be tried). For an attach (`session_id`), the password is asked for now."""
        if not self._usable() or self._server() is None:
            return None
        config = self._ssh_config()
        marker = login_marker(config.control_dir, key)

        def touch() -> None:
            config.ensure_dirs()
            askpass_note(marker).unlink(missing_ok=True)  # an earlier run's, never used
            marker.touch()

        try:
            await asyncio.to_thread(touch)
        except OSError as exc:
            log.info("no password ahead of clearml-session: %s", exc.strerror)
            return None
        hold = Hold(marker, self._passwords.reserve(), self._socket())
        if session_id:
            self._fetch(hold, session_id)
        return hold

    def _fetch(self, hold: Hold, session_id: str) -> None:
        if hold.fetch is None:
            hold.session_id = session_id
            hold.fetch = asyncio.ensure_future(self._password(session_id))
            # Retrieved here too: a child that ends before its ssh starts never awaits it.
            hold.fetch.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _password(self, session_id: str) -> str:
        server = self._server()
        if server is None:
            return ""
        pinned, password = await asyncio.gather(
            server.host_keys_pinned(), server.ssh_password(session_id)
        )
        if pinned:
            log.info("the server pins session host keys: clearml-session checks them itself")
            return ""
        return password

    async def hand_over(self, hold: Hold, session_id: str, user: str, host: str, port: int) -> bool:
        """The CLI starts its ssh to `user`@`host`:`port`: grant it the password, then let it
        go (the marker goes in any case). True when the ssh will use it."""
        try:
            self._fetch(hold, session_id)
            assert hold.fetch is not None
            async with asyncio.timeout(HAND_OVER_TIMEOUT_S):
                password = await asyncio.shield(hold.fetch)
            if not password:
                log.info("no password ahead of clearml-session for %s: none known", session_id)
                return False
            register_secret(password)
            if not self._passwords.grant(hold.token, password, user=user, host=host, port=port):
                return False  # the child ended meanwhile
            await asyncio.to_thread(_touch_private, hold.note)
        except Exception as exc:  # any failure: the CLI's ssh prompts, as it always did
            log.info("no password ahead of clearml-session for %s: %s", session_id, _why(exc))
            return False
        finally:
            with contextlib.suppress(OSError):  # the CLI's ssh goes on now
                await asyncio.to_thread(hold.marker.unlink, True)
        self._handed.add(session_id)
        log.info("session password handed to clearml-session's ssh (%s@%s:%s)", user, host, port)
        return True

    def release(self, hold: Hold) -> None:
        """The child ended (or nothing will be handed over): nothing of its hold is left, and
        an ssh still waiting on the marker prompts at once."""
        if hold.fetch is not None and not hold.fetch.done():
            hold.fetch.cancel()
        self._passwords.revoke(hold.token)
        for path in (hold.marker, hold.note):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        self._handed.discard(hold.session_id)

    def sessions(self) -> set[str]:
        """Sessions whose CLI's ssh got the password from this run, while their child runs."""
        return set(self._handed)

    def forget(self) -> None:
        """Quit: no grant is left to answer."""
        self._passwords.revoke_all()
        self._handed.clear()


def _touch_private(path: Path) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the server did not answer in time"
    return type(exc).__name__
