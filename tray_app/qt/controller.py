"""User actions → calls on the core (async HTTP) or the tunnels; results → signals.

Every action arrives as `(MenuAction, session id or key)` from the menu, a notification button,
the hotkey's quick-pick or a second instance. Network calls run as tasks; nothing here blocks
the Qt thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

from tray_app.core.ports import SECRET_CLIPBOARD_S, Desktop
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.models import LogLine, Session, Snapshot
from tray_app.core.server.sessions import SessionService
from tray_app.core.tasks import Tasks
from tray_app.core.tunnels import ConnectFlow, TunnelRegistry
from tray_app.core.tunnels.registry import tunnel_jupyter_url
from tray_app.core.untrusted import safe_http_url
from tray_app.core.view.actions import MenuAction
from tray_app.core.view.menu import ssh_command
from tray_app.core.wording import session_title

log = logging.getLogger(__name__)


class Controller(QObject):
    message = Signal(str, str, bool)  # title, text, is_error
    log_loaded = Signal(str, str, object)  # session id, title, list[LogLine]
    # What the composition root connects to windows it owns.
    settings_requested = Signal()
    about_requested = Signal()
    onboarding_requested = Signal()
    new_session_requested = Signal()
    demo_requested = Signal()
    log_folder_requested = Signal()
    quit_requested = Signal()
    refresh_requested = Signal()
    follow_log_requested = Signal(str)  # tunnel key
    keep_alive_requested = Signal(str)  # session id
    import_presets_requested = Signal()
    export_presets_requested = Signal()
    quick_pick_requested = Signal()  # the menu's "N more… (search)" row
    credentials_requested = Signal()  # "Enter ClearML keys…"
    cancel_requested = Signal(str)  # a launch or attach coming up (its tunnel key)
    launch_preset_requested = Signal(str)  # a preset's name (the Presets submenu)
    intent = Signal(str)  # session id the user pointed at (its submenu opened): Connect may follow

    def __init__(
        self,
        snapshot: Callable[[], Snapshot | None],
        *,
        connection: ServerConnection,
        tunnels: TunnelRegistry,
        connect: ConnectFlow,
        desktop: Desktop,
        tasks: Tasks,
    ) -> None:
        super().__init__()
        self._snapshot = snapshot
        self._connection = connection
        self._tunnels = tunnels
        self._connect = connect
        self._desktop = desktop
        self._tasks = tasks

    # --- dispatch ------------------------------------------------------------------------
    def handle(self, action: MenuAction | str, session_id: str | None = None) -> None:
        try:
            action = MenuAction(action)
        except ValueError:
            log.warning("unknown action %s", action)
            return
        simple: dict[MenuAction, SignalInstance] = {
            MenuAction.SETTINGS: self.settings_requested,
            MenuAction.ABOUT: self.about_requested,
            MenuAction.ONBOARDING: self.onboarding_requested,
            MenuAction.NEW_SESSION: self.new_session_requested,
            MenuAction.START_DEMO: self.demo_requested,
            MenuAction.OPEN_LOG_FOLDER: self.log_folder_requested,
            MenuAction.QUIT: self.quit_requested,
            MenuAction.REFRESH: self.refresh_requested,
            MenuAction.IMPORT_PRESETS: self.import_presets_requested,
            MenuAction.EXPORT_PRESETS: self.export_presets_requested,
            MenuAction.QUICK_PICK: self.quick_pick_requested,
            MenuAction.CREDENTIALS: self.credentials_requested,
        }
        if action in simple:
            simple[action].emit()
            return
        if session_id is None:
            log.warning("action %s needs a session", action)
            return
        handlers: dict[MenuAction, Callable[[str], None]] = {
            MenuAction.CONNECT: self.connect_session,
            MenuAction.OPEN_JUPYTER: self.open_jupyter,
            MenuAction.OPEN_TERMINAL: lambda sid: self.spawn(self._connect.open_terminal(sid)),
            MenuAction.COPY_SSH: self.copy_ssh_command,
            MenuAction.COPY_DIRECT_SSH: self.copy_direct_ssh_command,
            MenuAction.OPEN_WEB: self.open_web,
            MenuAction.SHOW_LOG: lambda sid: self.spawn(self._show_log(sid)),
            MenuAction.STOP: lambda sid: self.spawn(self._stop(sid)),
            MenuAction.DELETE: lambda sid: self.spawn(self._delete(sid)),
            MenuAction.RECONNECT: self._tunnels.reconnect,
            MenuAction.DISCONNECT: self._tunnels.disconnect,
            MenuAction.SHUTDOWN_TUNNEL: self._tunnels.shutdown,
            MenuAction.FOLLOW_LOG: self.follow_log_requested.emit,
            MenuAction.CANCEL_LAUNCH: self.cancel_requested.emit,
            MenuAction.COPY_PASSWORD: self.copy_password,
            MenuAction.KEEP_ALIVE: self.keep_alive_requested.emit,
            MenuAction.LAUNCH_PRESET: self.launch_preset_requested.emit,
            MenuAction.INTENT: self.intent.emit,
        }
        handlers[action](session_id)

    # --- actions -------------------------------------------------------------------------
    def connect_session(self, session_id: str) -> None:
        self._connect.connect(session_id, self._name(session_id))

    def open_jupyter(self, session_id: str) -> None:
        """The tunnel's local JupyterLab, else the session's own address; never another place:
        the server's `jupyter_url` is written by whoever owns the task."""
        tunnel = self._tunnels.tunnel_for(session_id)
        session = self._session(session_id)
        offered = (tunnel.jupyter_url if tunnel else None) or (
            session.jupyter_url if session else ""
        )
        url = tunnel_jupyter_url(tunnel) if tunnel else None
        if url is None and session is not None and session.jupyter_url:
            url = safe_http_url(session.jupyter_url, session.public_address or "")
        if url:
            self._desktop.open_url(url)
        elif offered:
            log.warning("JupyterLab address of %s refused: %r", session_id, offered[:200])
            self.message.emit(
                "JupyterLab not opened",
                "The session's JupyterLab address does not point at its own machine over http(s).",
                True,
            )
        else:
            self.message.emit("JupyterLab", "This session has no JupyterLab address yet.", True)

    def copy_ssh_command(self, session_id: str) -> None:
        """`ssh clearml-<id8>` over a ready tunnel (no password asked), else the direct one."""
        if not self._connect.copy_ssh(session_id):
            self.copy_direct_ssh_command(session_id)

    def copy_direct_ssh_command(self, session_id: str) -> None:
        """`ssh -p PORT user@address`: straight to the machine, asks for the session password."""
        session = self._session(session_id)
        command = ssh_command(session) if session else None
        if not command and session is not None and session.public_address and session.ssh_port:
            log.warning("ssh command of %s refused: unsafe user, address or port", session_id)
            self.message.emit(
                "SSH command not copied",
                "The session's SSH user, address or port holds characters that are not safe in "
                "a command.",
                True,
            )
            return
        if not command:
            self.message.emit("SSH", "This session has not published an SSH address yet.", True)
            return
        self._desktop.copy(command)
        self.message.emit("SSH command copied", command, False)

    def copy_password(self, key: str) -> None:
        """The session's SSH password, for editors that ask for it (never shown or logged)."""
        password = self._tunnels.password(key)
        if not password:
            self.message.emit("Session password", "This tunnel has no known password.", True)
            return
        self._desktop.copy_secret(password)
        self.message.emit(
            "Session password copied",
            f"Paste it where the editor asks; it leaves the clipboard in "
            f"{SECRET_CLIPBOARD_S:.0f} seconds.",
            False,
        )

    def open_web(self, session_id: str) -> None:
        session = self._session(session_id)
        if session and session.web_url:
            self._desktop.open_url(session.web_url)

    # --- async work ----------------------------------------------------------------------
    async def _show_log(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            lines: list[LogLine] = await service.console_log(session_id)
        except ClearMLError as exc:
            log.warning("log of %s not loaded: %s", session_id, exc)
            self.message.emit(f"Log of {name}", str(exc), True)
            return
        self.log_loaded.emit(session_id, f"Log — {name}", lines)

    async def _stop(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            result = await service.stop(session_id)
        except ClearMLError as exc:
            log.warning("stop %s failed: %s", session_id, exc)
            self.message.emit(f"Could not stop {name}", str(exc), True)
            return
        log.info("stop %s (%s): %s", session_id, name, result)
        if result == "stopped":
            self.message.emit(f"{name} stopped", "The session is stopped.", False)
        else:
            self.message.emit(f"Stopping {name}", "Its worker is shutting it down.", False)
        self.refresh_requested.emit()

    async def _delete(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            await service.delete(session_id)
        except ClearMLError as exc:
            log.warning("delete %s failed: %s", session_id, exc)
            self.message.emit(f"Could not delete {name}", str(exc), True)
            return
        log.info("deleted %s (%s)", session_id, name)
        self.message.emit(f"{name} deleted", "The session and its log are gone.", False)
        self.refresh_requested.emit()

    # --- helpers -------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coro)

    async def wait_idle(self) -> None:
        """Wait for every running action (tests, and Quit)."""
        await self._tasks.wait_idle()

    def _require_service(self) -> SessionService | None:
        service = self._connection.service
        if service is None:
            self.message.emit("ClearML", "No ClearML server is configured.", True)
        return service

    def _session(self, session_id: str) -> Session | None:
        snapshot = self._snapshot()
        return snapshot.by_id(session_id) if snapshot else None

    def _name(self, session_id: str) -> str:
        """The session as messages name it: its name and short id (names repeat: the CLI's
        default is "Interactive Session")."""
        session = self._session(session_id)
        return session_title(session.name if session else "", session_id)
