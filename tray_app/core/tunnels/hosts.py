"""A ready tunnel's Host block and login: `ssh clearml-<id8>` works, and never asks.

`SessionHosts` owns what this run wrote for its tunnels: the Host blocks in our ssh config
(Include'd from ~/.ssh/config once the user agreed), the master connections that log in ahead
of the editor with the session password (our askpass helper asks the tray, which holds the
password in memory only: never argv, env, a file or a keyring), and the lock that serializes
ssh-config writes. It asks the user only through the ports: the Include question is awaited,
never a modal dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tray_app.core.ports import (
    SECRET_CLIPBOARD_S,
    Ask,
    Desktop,
    Notify,
    Question,
    Runner,
    Spawn,
    confirm,
)
from tray_app.core.tunnels.model import TunnelInfo
from tray_app.core.tunnels.session_passwords import SessionPasswords
from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig, host_alias
from tray_app.core.tunnels.ssh_master import (
    MASTER_ENV,
    askpass_env,
    askpass_launcher,
    exit_argv,
    master_argv,
    master_supported,
    pending_marker,
    proxy_command,
    resolved_argv,
    resolved_options,
    wait_command,
    write_wait_script,
)

log = logging.getLogger(__name__)

LOGIN_TRIES = 3  # a login through a tunnel just rebuilt may meet an sshd not back yet
LOGIN_RETRY_S = 2.0


@dataclass(frozen=True, slots=True)
class _Block:
    port: int
    generation: int


class SessionHosts:
    def __init__(
        self,
        *,
        ask: Ask,
        notify: Notify,
        desktop: Desktop,
        runner: Runner,
        spawn: Spawn,
        passwords: SessionPasswords,
        ssh_config: Callable[[], SshConfig] = SshConfig,
        env: Callable[[], dict[str, str]] = lambda: dict(os.environ),
        socket: Callable[[], str] = lambda: "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._ask = ask
        self._notify = notify
        self._desktop = desktop
        self._runner = runner
        self._spawn = spawn
        self._grants = passwords
        self._ssh_config = ssh_config
        self._env = env
        self._socket = socket  # where the askpass helper reaches this tray
        self._sleep = sleep
        self.masters: dict[str, Path] = {}  # alias → config file its master was opened with
        self._blocks: dict[str, _Block] = {}  # session id → the tunnel its block was written for
        self._passwords: dict[str, str] = {}  # session id → its SSH password (memory only)
        self._logins: set[str] = set()  # aliases whose master login is under way
        self._lock = asyncio.Lock()  # ssh config writes: ready and Connect arrive together
        self._include_question: asyncio.Future[bool] | None = None
        # "Cancel" to the Include question this run: the flow it was asked for goes on without
        # asking again (the notice's Connect button, or an explicit click, asks once more).
        self._include_declined = False

    def host_generation(self, session_id: str) -> int:
        """Which coming-up of its tunnel the session's Host block was written for (0: none)."""
        block = self._blocks.get(session_id)
        return block.generation if block else 0

    @property
    def logins_pending(self) -> bool:
        """A master login is under way (ssh for its alias waits for it)."""
        return bool(self._logins)

    def tunnel_up(self, info: TunnelInfo, password: str) -> None:
        """A tunnel the user wants came up (again): its Host block and login, before anyone
        asks for them."""
        if info.session_id and password:
            self._passwords[info.session_id] = password
        self._spawn(self.prepare_host(info))

    def copy_ssh(self, info: TunnelInfo) -> None:
        """`ssh clearml-<id8>`: works as it is, over the tunnel, with no password prompt."""

        async def copy() -> None:
            alias = await self.prepare_host(info, explicit=True)
            if alias is None:
                return
            self._desktop.copy(f"ssh {alias}")
            self._notify.notify("info", "SSH command copied", f"ssh {alias}")

        self._spawn(copy())

    def keep_only(self, live: set[str]) -> None:
        """Sessions without a live tunnel lose their Host block, master and password."""
        gone = set(self._blocks) - live
        for session_id in set(self._passwords) - live:
            del self._passwords[session_id]
        if gone:
            for session_id in gone:
                self._blocks.pop(session_id, None)
            self._spawn(self.remove_hosts(gone))

    # --- Host block and login -------------------------------------------------------------------
    async def prepare_host(self, info: TunnelInfo, explicit: bool = False) -> str | None:
        """The tunnel's Host block in our ssh config (Include'd from ~/.ssh/config); its alias.

        Written once per tunnel: a reconnect (a new generation) rewrites it with a fresh host
        key file and logs in again, since the old master went down with the old connection.
        `explicit`: the user clicked for it now (Copy SSH command, Open in VS Code): the Include
        question is asked even if it was turned down earlier in this run.
        """
        if not (info.session_id and info.local_ssh_port):
            return None
        config = self._ssh_config()
        if explicit:
            self._include_declined = False
        if not await self._include_agreed(config, "Opening the session in VS Code"):
            return None
        async with self._lock:
            return await self._write_block(info, config)

    async def include_up_front(self, purpose: str, again: Callable[[], None] | None = None) -> bool:
        """Asked the moment a Connect or a Launch needs the Include line (not seconds later,
        in the middle of the tunnel coming up): True when it is there or was just added.
        `purpose` says what it is for ("Connect in VS Code to “train (6074a10f)”"); `again`
        is what the notice's Connect button does after a Cancel (asks once more)."""
        self._include_declined = False
        return await self._include_agreed(self._ssh_config(), purpose, again)

    async def _include_agreed(
        self, config: SshConfig, purpose: str, again: Callable[[], None] | None = None
    ) -> bool:
        """Ask once (the question is shared by everyone who needs the answer meanwhile)."""
        try:
            diff = await asyncio.to_thread(config.include_pending)
        except OSError as exc:
            self._notify.notify(
                "error", "Could not read your SSH config", os_error_words(exc), critical=True
            )
            return False
        if not diff:
            return True
        if self._include_declined:
            return False  # just turned down for the same flow: its notice offers to ask again
        if self._include_question is None or self._include_question.done():
            self._include_question = asyncio.ensure_future(
                self._ask_include(diff, config, purpose, again)
            )
        return await asyncio.shield(self._include_question)

    async def _ask_include(
        self, diff: str, config: SshConfig, purpose: str, again: Callable[[], None] | None
    ) -> bool:
        exists = await asyncio.to_thread(config.user_config.exists)
        where = (
            f"at the top of {config.user_config} (a backup is kept; nothing else changes)"
            if exists
            else f"to a new {config.user_config}"
        )
        question = Question(
            "Let VS Code reach your ClearML sessions",
            f"{purpose}: VS Code (Remote-SSH), ssh and your terminal find ClearML sessions by "
            f"their host names once one Include line is added {where}. This is asked once.",
            ("Add the line", "Cancel"),
            detail=diff,
        )
        if await confirm(self._ask, question):
            try:
                await asyncio.to_thread(config.ensure_include)
            except OSError as exc:
                self._notify.notify(
                    "error", "Could not change your SSH config", os_error_words(exc), critical=True
                )
                return False
            return True
        self._include_declined = True
        # Information, not a failure: it expires like any notice, and its button asks again.
        self._notify.notify(
            "info",
            "SSH config not changed",
            f"VS Code cannot open sessions until {config.user_config} includes {config.managed}.",
            (("Connect", again),) if again is not None else (),
        )
        return False

    async def _write_block(self, info: TunnelInfo, config: SshConfig) -> str | None:
        assert info.session_id and info.local_ssh_port
        alias = host_alias(info.session_id)
        block = _Block(info.local_ssh_port, info.generation)
        if self._blocks.get(info.session_id) == block:
            return alias  # written a moment ago (ready and Connect arrive together)
        stale_master = self.masters.pop(alias, None)
        if stale_master is not None:
            # Its connection went through the previous tunnel: gone, or about to be.
            await self._runner.run(exit_argv(alias, stale_master), self._env(), 10)
        password = self._passwords.get(info.session_id)
        # One socket per session alias (%n: the host as typed, clearml-<id8>). %C hashes the
        # resolved host, port and user, which two sessions behind the same reused local port
        # share: the second login would then find the first one's socket and run unshared.
        control = str(config.control_dir / "%n") if master_supported() else ""
        # The login runs in the background; until it is done, ssh for this alias waits for it
        # (the Match exec in the block), so the editor can be started at once.
        login = bool(control and password)
        wait = wait_command(config.control_dir, alias) if control else ""
        entry = HostEntry(
            info.session_id, info.local_ssh_port, info.user or "root", "127.0.0.1", control, wait
        )

        def write() -> None:
            if wait:
                write_wait_script(config.control_dir)
            if login:
                pending_marker(config.control_dir, alias).touch()
            config.add(entry, fresh_host_key=True)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            self._notify.notify(
                "error", "Could not write the SSH config", os_error_words(exc), critical=True
            )
            return None
        log.info("ssh config: Host %s → localhost:%s", alias, info.local_ssh_port)
        self._blocks[info.session_id] = block
        if login and alias not in self._logins:
            self._logins.add(alias)
            self._spawn(self._open_master(info, alias, config))
        elif not control and password:
            self._offer_password(
                password,
                "Session password copied",
                "This system's ssh cannot share a connection: paste the password when asked "
                f"(it stays in the clipboard for {SECRET_CLIPBOARD_S:.0f} seconds).",
                error=False,
            )
        return alias

    async def _open_master(self, info: TunnelInfo, alias: str, config: SshConfig) -> None:
        """Authenticate once (askpass asks the tray) so that the editor's ssh never asks.

        A login through a tunnel that was just (re)built can fail while the machine's sshd
        comes back (a server restart): it is tried again a few times, ssh for the alias still
        waiting, and only a login that keeps failing is said; a newer tunnel of the session
        makes its own login, and this one gives up without a word.
        """
        block = self._blocks.get(info.session_id or "")
        try:
            for attempt in range(1, LOGIN_TRIES + 1):
                if await self._log_in(info, alias, config, last=attempt == LOGIN_TRIES):
                    return
                await self._sleep(LOGIN_RETRY_S)
                if self._blocks.get(info.session_id or "") != block:
                    log.info("ssh login for %s: a newer tunnel logs in instead", alias)
                    return
        finally:
            self._logins.discard(alias)
            with contextlib.suppress(OSError):  # ssh waiting on it goes on now
                await asyncio.to_thread(pending_marker(config.control_dir, alias).unlink, True)

    async def _log_in(
        self, info: TunnelInfo, alias: str, config: SshConfig, last: bool = True
    ) -> bool:
        """One try; True when done (logged in, or nothing more to try). `last`: a failure is
        said to the user (the password put in the clipboard)."""
        password = self._passwords.get(info.session_id or "")
        if not password or not info.session_id or not info.local_ssh_port:
            return True
        try:
            helper = await asyncio.to_thread(askpass_launcher, config.managed.parent)
        except OSError as exc:
            log.warning("ssh login for %s not prepared: %s", alias, exc)
            self._offer_password(
                password,
                "Could not prepare the SSH login",
                f"{os_error_words(exc)} The session password is in the clipboard for "
                f"{SECRET_CLIPBOARD_S:.0f} seconds: paste it when the editor asks.",
                error=True,
            )
            return True
        # How ssh resolves the alias: its HostName (what the prompt names) and any proxy a
        # `Host *` of the user's gives it, which must not see the askpass variables.
        probe_env = {**self._env(), MASTER_ENV: "1"}  # the Match exec must not wait for us
        _, resolved = await self._runner.run(
            resolved_argv(alias, config.user_config), probe_env, 10
        )
        options = resolved_options(resolved)
        setsid = shutil.which("setsid") if sys.platform.startswith("linux") else None
        proxy = proxy_command(options, config_file=str(config.user_config), setsid=setsid)
        token = self._grants.new(
            password,
            user=info.user or "root",
            host=alias,
            port=info.local_ssh_port,
            prompt_host=options.get("hostname") or "127.0.0.1",
        )
        env = askpass_env(self._env(), helper, token, self._socket())
        argv = master_argv(
            alias,
            config.user_config,
            port=info.local_ssh_port,
            options=["-o", f"ProxyCommand={proxy}"] if proxy else (),
        )
        # Off any terminal the tray was started from: an OpenSSH before 8.4 (no
        # SSH_ASKPASS_REQUIRE) would prompt there instead of asking our helper.
        try:
            code, errors = await self._runner.run([setsid, *argv] if setsid else argv, env)
        finally:
            self._grants.revoke(token)
        if code == 0:
            self.masters[alias] = config.user_config
            log.info("ssh master connection for %s is up", alias)
            return True
        log.warning("ssh master for %s failed (%s): %s", alias, code, errors.strip()[-300:])
        if not last:
            return False
        self._offer_password(
            password,
            "Could not log in ahead of the editor",
            "The session password is in the clipboard for "
            f"{SECRET_CLIPBOARD_S:.0f} seconds: paste it when the editor asks.",
            error=True,
        )
        return True

    def _offer_password(self, password: str, title: str, text: str, error: bool) -> None:
        self._desktop.copy_secret(password)
        self._notify.notify("error" if error else "info", title, text)

    async def remove_hosts(self, session_ids: set[str] | None) -> None:
        """Remove these sessions' blocks, masters and passwords (None: every block of ours)."""
        config = self._ssh_config()
        async with self._lock:
            try:
                if session_ids is None:  # at start: what a run that did not quit cleanly left
                    await asyncio.to_thread(_clear_pending_markers, config.control_dir)
                    removed = await asyncio.to_thread(config.remove_aliases, None)
                    if removed:
                        log.info("ssh config: removed %d stale Host blocks", removed)
                    return
                for session_id in session_ids:
                    alias = host_alias(session_id)
                    self._blocks.pop(session_id, None)
                    config_file = self.masters.pop(alias, None)
                    if config_file is not None:
                        await self._runner.run(exit_argv(alias, config_file), self._env(), 10)
                    await asyncio.to_thread(config.remove, session_id)
                    log.info("ssh config: Host %s removed (its tunnel ended)", alias)
            except OSError as exc:
                log.warning("ssh config: could not remove Host blocks: %s", exc)

    async def close(self) -> None:
        """Quit: no master, no Host block of this run."""
        for alias, config_file in list(self.masters.items()):
            await self._runner.run(exit_argv(alias, config_file), self._env(), 10)
        self.masters.clear()
        await self.remove_hosts(set(self._blocks))


def _clear_pending_markers(control_dir: Path) -> None:
    """Markers and password notes that a crashed run left: ssh must not wait on them."""
    for pattern in ("*.pending", "*.askpass"):
        for marker in control_dir.glob(pattern) if control_dir.is_dir() else ():
            marker.unlink(missing_ok=True)


def os_error_words(exc: OSError) -> str:
    """An OSError in words: what failed and where, without Python's repr."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or 'the system refused'}{where}."
