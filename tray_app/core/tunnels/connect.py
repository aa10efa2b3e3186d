"""Connect in VS Code, as one Qt-free workflow: tunnel → Host block → master login → editor.

`ConnectFlow` owns everything on that path: the Host blocks this run wrote, the master
connections, the Remote-SSH check cache and the lock that serializes ssh-config writes. It talks
to the user only through the ports (`core.ports`): a question is awaited, never a modal dialog,
so the event loop keeps running while the user thinks (a modal `exec()` inside a coroutine once
wedged the whole tray on the first connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tray_app.core.ports import Ask, Desktop, Notify, Question, Runner, Spawn, confirm
from tray_app.core.server.models import Session, Snapshot
from tray_app.core.server.session_ref import resolve
from tray_app.core.settings.secrets import SecretStore, session_password_key
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.editors import (
    REMOTE_SSH,
    Editor,
    fallback_url,
    find_editor,
    has_remote_ssh,
    install_extension_argv,
    list_extensions_argv,
    needs_extension_check,
    open_argv,
    remote_folder,
    terminal_argv,
)
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.password_ahead import PasswordAhead
from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig, host_alias
from tray_app.core.tunnels.ssh_master import (
    LOGIN_MARKER_ENV,
    askpass_env,
    askpass_launcher,
    exit_argv,
    master_argv,
    master_supported,
    pending_marker,
    wait_command,
    write_wait_script,
)

log = logging.getLogger(__name__)

ENDED = (TunnelState.CLOSED, TunnelState.FAILED)
ASK_AGAIN_AFTER_S = 60.0  # a declined Remote-SSH install is offered again on a later Connect


class TunnelSource(Protocol):
    """The launcher, as this flow sees it."""

    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def attach(
        self,
        session_id: str,
        label: str = "",
        *,
        prewarm: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> str: ...

    def promote(self, key: str) -> TunnelInfo | None: ...

    def show_progress(self, key: str) -> None: ...

    def password(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Block:
    port: int
    generation: int


class ConnectFlow:
    def __init__(
        self,
        tunnels: TunnelSource,
        *,
        ask: Ask,
        notify: Notify,
        desktop: Desktop,
        runner: Runner,
        spawn: Spawn,
        settings: Callable[[], Settings],
        secrets: Callable[[], SecretStore] = SecretStore,
        ssh_config: Callable[[], SshConfig] = SshConfig,
        env: Callable[[], dict[str, str]] = lambda: dict(os.environ),
        password_ahead: PasswordAhead | None = None,
        session: Callable[[str], Session | None] = lambda session_id: None,
    ) -> None:
        self._tunnels = tunnels
        self._ask = ask
        self._notify = notify
        self._desktop = desktop
        self._runner = runner
        self._spawn = spawn
        self._settings = settings
        self._secrets = secrets
        self._ssh_config = ssh_config
        self._env = env
        self._ahead = password_ahead
        self._session = session
        self._attaching: dict[str, bool] = {}  # session id → still "ahead of a click" (prewarm)
        self.masters: dict[str, Path] = {}  # alias → config file its master was opened with
        self._blocks: dict[str, _Block] = {}  # session id → the tunnel its block was written for
        self._logins: set[str] = set()  # aliases whose master login is under way
        self._lock = asyncio.Lock()  # ssh config writes: ready and Connect arrive together
        self._include_question: asyncio.Future[bool] | None = None
        self._remote_ssh_ok: set[tuple[str, ...]] = set()
        self._remote_ssh_declined: dict[tuple[str, ...], float] = {}  # editor → when "Not now"
        self._remote_ssh_checks: dict[tuple[str, ...], asyncio.Future[bool]] = {}

    def host_generation(self, session_id: str) -> int:
        """Which coming-up of its tunnel the session's Host block was written for (0: none)."""
        block = self._blocks.get(session_id)
        return block.generation if block else 0

    @property
    def logins_pending(self) -> bool:
        """A master login is under way (ssh for its alias waits for it)."""
        return bool(self._logins)

    # --- entry points (menu, notification buttons, hotkey, second instance) -----------------
    def tunnel_for(self, session_id: str) -> TunnelInfo | None:
        tunnels = [t for t in self._tunnels.tunnels().values() if t.session_id == session_id]
        live = [t for t in tunnels if t.state not in ENDED]
        candidates = live or tunnels
        return candidates[0] if candidates else None

    def connect(self, session_id: str, label: str = "") -> None:
        """Open the editor on the session: now if its tunnel is up, else once it is."""
        tunnel = self.tunnel_for(session_id)
        if tunnel is not None and tunnel.prewarmed and tunnel.state not in ENDED:
            # Opened when the user pointed at the session: most of the wait is already behind.
            tunnel = self._tunnels.promote(tunnel.key) or tunnel
            if tunnel.state != TunnelState.READY:
                self.check_editor_soon()  # it opens the editor itself once ready
                return
        if tunnel is not None and tunnel.state == TunnelState.READY:
            self.open_editor(tunnel)
        elif tunnel is not None and tunnel.state not in ENDED:
            self._tunnels.show_progress(tunnel.key)
        else:
            self.attach(session_id, label)

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> None:
        """Start `clearml-session --attach`, its ssh handed the password ahead (the CLI then
        skips its 5 s wait: its tunnel is up ~5 s sooner). `prewarm`: nobody clicked
        yet; a Connect meanwhile makes it the user's."""
        if session_id in self._attaching:
            if not prewarm:
                self._attaching[session_id] = False
            return
        self._attaching[session_id] = prewarm
        self._spawn(self._attach(session_id, label))

    async def _attach(self, session_id: str, label: str) -> None:
        session = self._session(session_id)
        ahead = self._ahead if session is not None else None
        env: dict[str, str] = {}
        try:
            if ahead is not None and session is not None:
                env = await ahead.hold(session)
        finally:
            prewarm = self._attaching.pop(session_id, False)
        try:
            # The CLI starts now; its ssh waits for the password below (fetched while the
            # CLI starts), so the two overlap.
            self._tunnels.attach(session_id, label, prewarm=prewarm, env=env)
        except FileNotFoundError:
            if not prewarm:
                self._notify.notify(
                    "error",
                    "Cannot connect",
                    "clearml-session is not installed next to the tray nor on PATH "
                    "(pip install clearml-session).",
                    critical=True,
                )
        finally:
            if env and ahead is not None and session is not None:
                marker = Path(env[LOGIN_MARKER_ENV])
                self._spawn(ahead.hand_over(session_id, marker))
        if not prewarm:
            self.check_editor_soon()

    def connect_ref(self, snapshot: Snapshot, ref: str) -> tuple[bool, str]:
        """Connect to a session named by its id or a unique start of it (`list`'s short id);
        (accepted, what to tell whoever asked)."""
        found = resolve(snapshot, ref)
        if found.session_id is None:
            return False, found.error
        self.connect(found.session_id, found.label)
        return True, f"Connecting to {found.label or found.session_id[:8]}."

    def tunnel_up(self, info: TunnelInfo) -> None:
        """The launcher's ready hook: the Host block and the login, before anyone asks."""
        self._spawn(self.prepare_host(info))

    def open_editor(self, info: TunnelInfo) -> None:
        self._spawn(self._open_editor(info))

    def open_terminal(self, session_id: str) -> None:
        self._spawn(self._open_terminal(session_id))

    def login_ahead(self, info: TunnelInfo, marker: Path) -> None:
        """A new session's CLI is about to log in to its machine (its ssh waits on `marker`):
        the tray hands that ssh the password, so the CLI skips its wait (see `attach`)."""
        if self._ahead is None or not info.session_id:
            self._spawn(asyncio.to_thread(marker.unlink, True))
            return
        self._spawn(self._ahead.hand_over(info.session_id, marker))

    def copy_ssh(self, info: TunnelInfo) -> None:
        """`ssh clearml-<id8>`: works as it is, over the tunnel, with no password prompt."""

        async def copy() -> None:
            alias = await self.prepare_host(info)
            if alias is None:
                return
            self._desktop.copy(f"ssh {alias}")
            self._notify.notify("info", "SSH command copied", f"ssh {alias}")

        self._spawn(copy())

    def tunnels_changed(self) -> None:
        """A session whose tunnel has ended loses its Host block, master and stored password."""
        live = {
            t.session_id
            for t in self._tunnels.tunnels().values()
            if t.session_id and t.state not in ENDED
        }
        gone = set(self._blocks) - live
        if gone:
            for session_id in gone:
                self._blocks.pop(session_id, None)
            self._spawn(self.remove_hosts(gone))
        if self._ahead is not None:
            unused = self._ahead.sessions() - live - set(self._attaching)
            if unused:
                self._spawn(self._ahead.forget(unused))

    # --- Host block and login -------------------------------------------------------------------
    async def prepare_host(self, info: TunnelInfo) -> str | None:
        """The tunnel's Host block in our ssh config (Include'd from ~/.ssh/config); its alias.

        Written once per tunnel: a reconnect (a new generation) rewrites it with a fresh host
        key file and logs in again, since the old master went down with the old connection.
        """
        if not (info.session_id and info.local_ssh_port):
            return None
        config = self._ssh_config()
        if not await self._include_agreed(config):
            return None
        async with self._lock:
            return await self._write_block(info, config)

    async def _include_agreed(self, config: SshConfig) -> bool:
        """Ask once (the question is shared by everyone who needs the answer meanwhile)."""
        try:
            diff = await asyncio.to_thread(config.include_pending)
        except OSError as exc:
            self._notify.notify(
                "error", "Could not read your SSH config", _os_error(exc), critical=True
            )
            return False
        if not diff:
            return True
        if self._include_question is None or self._include_question.done():
            self._include_question = asyncio.ensure_future(self._ask_include(diff, config))
        return await asyncio.shield(self._include_question)

    async def _ask_include(self, diff: str, config: SshConfig) -> bool:
        exists = await asyncio.to_thread(config.user_config.exists)
        where = (
            f"at the top of {config.user_config} (a backup is kept; nothing else changes)"
            if exists
            else f"to a new {config.user_config}"
        )
        question = Question(
            "Connect in VS Code",
            f"To let VS Code Remote-SSH reach your sessions, one Include line is added {where}.",
            ("Add the line", "Cancel"),
            detail=diff,
        )
        if await confirm(self._ask, question):
            try:
                await asyncio.to_thread(config.ensure_include)
            except OSError as exc:
                self._notify.notify(
                    "error", "Could not change your SSH config", _os_error(exc), critical=True
                )
                return False
            return True
        self._notify.notify(
            "error",
            "SSH config not changed",
            f"Editors will not find the host until {config.user_config} includes {config.managed}.",
            critical=True,
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
        password = self._tunnels.password(info.key)
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
                "error", "Could not write the SSH config", _os_error(exc), critical=True
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
                "This system's ssh cannot share a connection: paste the password when asked.",
                error=False,
            )
        return alias

    async def _open_master(self, info: TunnelInfo, alias: str, config: SshConfig) -> None:
        """Authenticate once (askpass reads the keyring) so that the editor's ssh never asks."""
        try:
            await self._log_in(info, alias, config)
        finally:
            self._logins.discard(alias)
            with contextlib.suppress(OSError):  # ssh waiting on it goes on now
                await asyncio.to_thread(pending_marker(config.control_dir, alias).unlink, True)

    async def _log_in(self, info: TunnelInfo, alias: str, config: SshConfig) -> None:
        password = self._tunnels.password(info.key)
        if not password or not info.session_id:
            return
        name = session_password_key(info.session_id)
        try:
            await asyncio.to_thread(self._secrets().set, name, password)
            helper = await asyncio.to_thread(askpass_launcher, config.managed.parent)
        except Exception as exc:  # a locked or absent keyring says so in its own words
            log.warning("ssh login for %s not prepared: %s", alias, exc)
            self._offer_password(
                password,
                "Could not prepare the SSH login",
                "The keyring could not keep the session password; it is in the clipboard: "
                "paste it when the editor asks.",
                error=True,
            )
            return
        env = askpass_env(self._env(), helper, name)
        code, errors = await self._runner.run(master_argv(alias, config.user_config), env)
        if code == 0:
            self.masters[alias] = config.user_config
            log.info("ssh master connection for %s is up", alias)
            return
        log.warning("ssh master for %s failed (%s): %s", alias, code, errors.strip()[-300:])
        self._offer_password(
            password,
            "Could not log in ahead of the editor",
            "The session password is in the clipboard: paste it when the editor asks.",
            error=True,
        )

    def _offer_password(self, password: str, title: str, text: str, error: bool) -> None:
        self._desktop.copy(password)
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
                    with contextlib.suppress(Exception):  # a locked keyring: next start
                        await asyncio.to_thread(self._secrets().remove_stale_session_passwords)
                    return
                for session_id in session_ids:
                    alias = host_alias(session_id)
                    self._blocks.pop(session_id, None)
                    config_file = self.masters.pop(alias, None)
                    if config_file is not None:
                        await self._runner.run(exit_argv(alias, config_file), self._env(), 10)
                    await asyncio.to_thread(config.remove, session_id)
                    with contextlib.suppress(Exception):  # no keyring: nothing was stored
                        await asyncio.to_thread(
                            self._secrets().delete, session_password_key(session_id)
                        )
                    log.info("ssh config: Host %s removed (its tunnel ended)", alias)
            except OSError as exc:
                log.warning("ssh config: could not remove Host blocks: %s", exc)

    async def close(self) -> None:
        """Quit: no question stays open, no master, no Host block of this run."""
        self._ask.cancel_all()
        for alias, config_file in list(self.masters.items()):
            await self._runner.run(exit_argv(alias, config_file), self._env(), 10)
        self.masters.clear()
        if self._ahead is not None:
            await self._ahead.forget()
        await self.remove_hosts(set(self._blocks))

    # --- editor and terminal --------------------------------------------------------------------
    async def _open_editor(self, info: TunnelInfo) -> None:
        alias = await self.prepare_host(info)
        if alias is None:
            return
        folder = remote_folder(info.user or "root", info.remote_folder)
        editor = await asyncio.to_thread(find_editor, self._settings().editor_command)
        if editor is None:
            self._desktop.open_url(fallback_url(alias, folder))
            return
        if not await self.ensure_remote_ssh(editor) and editor.argv in self._remote_ssh_declined:
            # A window that can only show "cannot open ssh-remote" helps nobody.
            self._notify.notify(
                "info",
                f"{editor.name} was not opened",
                "It needs the Remote - SSH extension to open the session; Connect again to "
                "install it, or use Copy SSH command.",
            )
            return
        argv = open_argv(editor, alias, folder)
        log.info("opening %s: %s", editor.name, " ".join(argv))
        if not self._desktop.start_detached(argv):
            self._notify.notify(
                "error",
                f"Could not start {editor.name}",
                f"{argv[0]} did not start. Check the editor command in Settings.",
                critical=True,
            )

    def check_editor_soon(self) -> None:
        """While a tunnel comes up, check the editor's extensions, so that the editor opens
        the moment the session is ready instead of after `--list-extensions` (a second or so)."""

        async def check() -> None:
            editor = await asyncio.to_thread(find_editor, self._settings().editor_command)
            if editor is not None:
                await self.ensure_remote_ssh(editor)

        self._spawn(check())

    async def ensure_remote_ssh(self, editor: Editor) -> bool:
        """Check the editor's extensions once per run; offer to install Remote-SSH if missing.

        The editor is opened either way: without the extension it shows its own error, and the
        user may have a Remote-SSH build we do not know by id. A check under way is joined, not
        repeated; one that failed or was declined is done again next time.
        """
        if not needs_extension_check(editor) or editor.argv in self._remote_ssh_ok:
            return True
        declined = self._remote_ssh_declined.get(editor.argv)
        if declined is not None and time.monotonic() - declined < ASK_AGAIN_AFTER_S:
            return False  # just answered "Not now" (the early check): do not ask twice
        running = self._remote_ssh_checks.get(editor.argv)
        if running is None:
            running = asyncio.ensure_future(self._check_remote_ssh(editor))
            self._remote_ssh_checks[editor.argv] = running
            running.add_done_callback(lambda _t: self._remote_ssh_checks.pop(editor.argv, None))
        return await asyncio.shield(running)

    async def _check_remote_ssh(self, editor: Editor) -> bool:
        code, listed = await self._runner.run(list_extensions_argv(editor), self._env())
        if code != 0:
            log.warning("%s --list-extensions failed (%s): %s", editor.name, code, listed[-300:])
            return False
        if has_remote_ssh(editor, listed):
            self._remote_ssh_ok.add(editor.argv)
            return True
        extension = REMOTE_SSH[editor.kind]
        question = Question(
            "Connect in VS Code",
            f"{editor.name} needs the Remote - SSH extension ({extension}) to open a session. "
            "Install it now?",
            ("Install", "Not now"),
        )
        if not await confirm(self._ask, question):
            log.info("Remote-SSH install declined for %s", editor.name)
            self._remote_ssh_declined[editor.argv] = time.monotonic()
            return False
        self._remote_ssh_declined.pop(editor.argv, None)
        self._notify.notify(
            "info", "Installing Remote - SSH", f"Into {editor.name}; the session opens after it."
        )
        code, output = await self._runner.run(install_extension_argv(editor), self._env(), 300)
        if code == 0:
            log.info("installed %s into %s", extension, editor.name)
            self._remote_ssh_ok.add(editor.argv)
            self._notify.notify("info", "Remote - SSH installed", f"In {editor.name}.")
            return True
        log.warning("installing %s failed (%s): %s", extension, code, output[-500:])
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {code}"
        self._notify.notify(
            "error", "Remote - SSH was not installed", f"{editor.name} said: {last}", critical=True
        )
        return False

    async def _open_terminal(self, session_id: str) -> None:
        """The user's terminal running `ssh <alias>` over the session's tunnel."""
        tunnel = self.tunnel_for(session_id)
        if tunnel is None or tunnel.state != TunnelState.READY:
            self._notify.notify("info", "Terminal", "Connect the session first.")
            return
        alias = await self.prepare_host(tunnel)
        if alias is None:
            return
        argv = terminal_argv(alias)
        if argv is None:
            self._desktop.copy(f"ssh {alias}")
            self._notify.notify(
                "error",
                "No terminal program found",
                f"“ssh {alias}” is in the clipboard. Set $TERMINAL to choose a terminal.",
            )
            return
        log.info("opening a terminal: %s", " ".join(argv))
        if not self._desktop.start_detached(argv):
            self._notify.notify(
                "error", "Could not start the terminal", f"{argv[0]} did not start.", critical=True
            )


def _clear_pending_markers(control_dir: Path) -> None:
    """Markers and password notes that a crashed run left: ssh must not wait on them."""
    for pattern in ("*.pending", "*.askpass"):
        for marker in control_dir.glob(pattern) if control_dir.is_dir() else ():
            marker.unlink(missing_ok=True)


def _os_error(exc: OSError) -> str:
    """An OSError in words: what failed and where, without Python's repr."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or 'the system refused'}{where}."
